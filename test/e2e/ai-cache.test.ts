// The response cache on a provider route: JSON kept as received, SSE recorded while it streams to the first
// client and replayed event by event to the next, Cache-Status on every answer, hits settle 0 tokens and 0 cost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { call, eventually, startGateway, type TestGateway } from '../helpers.ts';
import { startLlmStub, sseData, sseEvents, type LlmStub } from '../support/llm-stub.ts';

async function setup(t: { after(fn: () => Promise<void>): void }, cache = '{ ttl: 1m }'): Promise<{ g: TestGateway; stub: LlmStub }> {
  const stub = await startLlmStub('openai', 'openai');
  const g = await startGateway(`
pricing: { models: { gpt-4o: { input: 2, output: 8 } } }
upstreams:
  openai: { provider: openai, apiKey: "\${OPENAI_KEY}", targets: [ "${stub.url}" ] }
consumers:
  - { id: acme, plan: p, keys: [ "${hashApiKey('key-acme')}" ] }
  - { id: other, plan: p, keys: [ "${hashApiKey('key-other')}" ] }
plans: { p: { quota: { cost: { limit: 10, period: day }, requests: { limit: 1000, period: day } } } }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    auth: apikey
    models: { gpt-4o: [ openai ] }
    quota: { usage: cost }
    cache: ${cache}
`, { env: { OPENAI_KEY: 'sk-provider-key-cache' } });
  t.after(async () => { await g.close(); await stub.close(); });
  return { g, stub };
}

const ask = (g: TestGateway, body: unknown, key = 'key-acme', headers: Record<string, string> = {}) =>
  call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

test('JSON: a hit is the answer as received, marked with Cache-Status, private per consumer, and settles 0 tokens and 0 cost', async (t) => {
  const { g, stub } = await setup(t);
  const q = { model: 'gpt-4o', messages: [{ role: 'user', content: 'what is 2+2?' }] };
  const first = await ask(g, q);
  assert.equal(first.status, 200);
  assert.equal(first.headers['cache-status'], 'gatehouse; fwd=uri-miss');
  const second = await eventually(async () => { const r = await ask(g, q); return r.headers['cache-status'] !== 'gatehouse; fwd=uri-miss' ? r : null; });
  assert.match(String(second!.headers['cache-status']), /^gatehouse; hit; ttl=\d+$/);
  assert.equal(second!.text, first.text, 'byte for byte');
  assert.equal(second!.headers['content-type'], 'application/json');
  assert.notEqual(second!.headers['x-request-id'], first.headers['x-request-id']);
  assert.equal(stub.received.length, 1, 'the provider answered once');
  // another consumer's identical request is not served from acme's entry
  assert.equal((await ask(g, q, 'key-other')).headers['cache-status'], 'gatehouse; fwd=uri-miss');
  assert.equal(stub.received.length, 2);
  // a different body is a different entry; Cache-Control: no-store bypasses; no-cache forwards
  assert.equal((await ask(g, { ...q, temperature: 0 })).headers['cache-status'], 'gatehouse; fwd=uri-miss');
  assert.equal((await ask(g, q, 'key-acme', { 'cache-control': 'no-store' })).headers['cache-status'], 'gatehouse; fwd=bypass; detail=no-store');
  assert.equal((await ask(g, q, 'key-acme', { 'cache-control': 'no-cache' })).headers['cache-status'], 'gatehouse; fwd=request');
  // usage: the hit is a request with 0 tokens and 0 cost
  const u = await eventually(async () => { const r = (await call(`${g.adminUrl}/admin/usage?consumer=acme`)).json(); return r.totals.chat?.cache_hits === 1 ? r : null; });
  const misses = 4; // first, temperature, no-store, no-cache
  assert.equal(u.totals.chat.requests, misses + 1);
  assert.equal(u.totals.chat.tokens, misses * 1500);
  assert.equal(u.totals.chat.cost_micros, misses * (1000 * 2 + 500 * 8));
  const metrics = (await call(`${g.adminUrl}/metrics`)).text;
  assert.match(metrics, /gatehouse_cache_requests_total\{route="chat",result="hit"\} 1/);
});

test('SSE: recorded while streaming to the first client, replayed event by event to the next; a hit settles 0 tokens', async (t) => {
  const { g, stub } = await setup(t, '{ ttl: 1m, replay: timed }');
  stub.eventDelayMs = 60;
  const q = { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'tell me a story' }] };
  const first = await ask(g, q);
  assert.equal(first.status, 200);
  const expected = sseEvents(stub, 'gpt-4o').join('');
  assert.equal(first.text, expected);
  await eventually(async () => (await call(`${g.adminUrl}/metrics`)).text.includes('result="stored"} 1'));

  // the replay arrives as separate events, at about the pace they first came (timed replay)
  const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-api-key': 'key-acme', 'content-type': 'application/json' }, body: JSON.stringify(q) });
  assert.match(String(r.headers['cache-status']), /hit/);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  const arrivals: Array<{ at: number; text: string }> = [];
  const t0 = performance.now();
  for await (const c of r.body) arrivals.push({ at: performance.now() - t0, text: String(c) });
  const text = arrivals.map((a) => a.text).join('');
  assert.equal(text, expected, 'the same events, byte for byte');
  assert.deepEqual(sseData(text), sseData(expected));
  assert.ok(arrivals.length >= stub.events, `events came one by one (${arrivals.length} reads)`);
  assert.ok(arrivals[arrivals.length - 1].at >= 60 * (stub.events - 1) * 0.8, `paced like the original (${Math.round(arrivals[arrivals.length - 1].at)} ms)`);
  assert.equal(stub.received.length, 1);

  const u = await eventually(async () => { const x = (await call(`${g.adminUrl}/admin/usage?consumer=acme`)).json(); return x.totals.chat?.cache_hits === 1 ? x : null; });
  assert.equal(u.totals.chat.tokens, 1500, 'only the first (upstream) answer counts tokens');
  assert.equal(u.totals.chat.requests, 2);
});

test('never cached: errors, Set-Cookie, Cache-Control no-store/private from the upstream, a stream the client left', async (t) => {
  const { g, stub } = await setup(t);
  const q = (n: number) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: `q${n}` }] });
  stub.failures.push({ status: 500 });
  assert.equal((await ask(g, q(1))).status, 500);
  assert.equal((await ask(g, q(1))).headers['cache-status'], 'gatehouse; fwd=uri-miss', 'an error was not stored');
  for (const headers of [{ 'set-cookie': 'a=1' }, { 'cache-control': 'no-store' }, { 'cache-control': 'private, max-age=60' }] as Array<Record<string, string>>) {
    const n = stub.received.length;
    // a 200 with the header: the stub's failure hook answers with the status and headers given
    stub.failures.push({ status: 200, headers });
    assert.equal((await ask(g, q(n + 10))).status, 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await ask(g, q(n + 10))).headers['cache-status'], 'gatehouse; fwd=uri-miss', JSON.stringify(headers));
  }
  // a stream the first client abandoned is incomplete: not stored
  stub.eventDelayMs = 50;
  const s = { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'long' }] };
  const ac = new AbortController();
  const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-api-key': 'key-acme', 'content-type': 'application/json' }, body: JSON.stringify(s), signal: ac.signal });
  await r.body[Symbol.asyncIterator]().next();
  ac.abort();
  await new Promise((res) => setTimeout(res, 300));
  assert.equal((await ask(g, s)).headers['cache-status'], 'gatehouse; fwd=uri-miss');
});
