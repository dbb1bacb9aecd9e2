// Provider upstreams and model routing end to end: OpenAI- and Anthropic-shaped stub providers behind a real
// gateway, JSON and SSE; the official `openai` and `@anthropic-ai/sdk` clients against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { call, eventually, startGateway, type TestGateway } from '../helpers.ts';
import { startLlmStub, sseData, type LlmStub } from '../support/llm-stub.ts';

const PROVIDER_KEYS = { OPENAI_KEY: 'sk-provider-openai-7f3a', LOCAL_KEY: 'sk-provider-local-91c2', ANTHROPIC_KEY: 'sk-ant-provider-44de' };
const CLIENT_KEY = 'gh-client-key-acme-0001';

function config(stubs: Record<string, LlmStub>, extra = ''): string {
  return `
observability: { log: { level: info } }
consumers: [ { id: acme, keys: [ "${hashApiKey(CLIENT_KEY)}" ] } ]
upstreams:
  openai: { provider: openai, apiKey: "\${OPENAI_KEY}", targets: [ "${stubs.openai.url}" ] }
  local: { provider: openai-compatible, apiKey: "\${LOCAL_KEY}", targets: [ "${stubs.local.url}" ] }
  claude: { provider: anthropic, apiKey: "\${ANTHROPIC_KEY}", targets: [ "${stubs.claude.url}" ] }
${extra}
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    auth: apikey
    models:
      gpt-4o:
        - { upstream: openai, model: gpt-4o-2024-08-06 }
        - { upstream: local, model: llama-3.3-70b }
      "llama*": [ local ]
    failover: { on: [connect, 429, 5xx], cooldown: 1s }
  - name: messages
    match: { path: /v1/messages, methods: [POST] }
    auth: apikey
    models:
      claude-sonnet: [ { upstream: claude, model: claude-sonnet-4-20250514 } ]
`;
}

async function setup(t: { after(fn: () => Promise<void>): void }, extra = ''): Promise<{ g: TestGateway; s: Record<string, LlmStub> }> {
  const s = { openai: await startLlmStub('openai', 'openai'), local: await startLlmStub('local', 'openai'), claude: await startLlmStub('claude', 'anthropic') };
  const g = await startGateway(config(s, extra), { env: PROVIDER_KEYS });
  t.after(async () => { await g.close(); await Promise.all(Object.values(s).map((x) => x.close())); });
  return { g, s };
}

const chat = (g: TestGateway, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const access = (g: TestGateway) => g.logs.filter((l) => l.type === 'access');

test('model routing: the model picks the candidate, the name is rewritten in place, the rest of the body is byte for byte the client\'s (JSON and SSE, OpenAI and Anthropic)', async (t) => {
  const { g, s } = await setup(t);
  // an unusual but valid body: spacing, unicode escapes, a nested "model", key order
  const raw = '{ "messages" : [ {"role":"user","content":"caf\\u00e9 \\"model\\": 1"} ],\n  "model":"gpt-4o", "meta": {"model": "inner"}, "temperature": 0.10 }';
  const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' }, body: raw });
  assert.equal(r.statusCode, 200);
  const answer = await r.body.json() as { model: string; usage: { total_tokens: number } };
  assert.equal(answer.model, 'gpt-4o-2024-08-06');
  assert.equal(s.openai.received.length, 1);
  assert.equal(s.openai.received[0].raw, raw.replace('"model":"gpt-4o"', '"model":"gpt-4o-2024-08-06"'), 'only the value changed');
  assert.equal(s.openai.received[0].headers['content-length'], String(Buffer.byteLength(raw) + '-2024-08-06'.length));

  // a prefix pattern with no rewrite: the client's model goes through unchanged, to the local server
  const l = await chat(g, { model: 'llama-3.1-8b', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(l.status, 200);
  assert.equal(s.local.received[0].body.model, 'llama-3.1-8b');

  // SSE through the OpenAI-shaped route
  const st = await chat(g, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(st.status, 200);
  assert.match(String(st.headers['content-type']), /text\/event-stream/);
  const events = sseData(st.text);
  assert.equal(events[events.length - 1], '[DONE]');
  assert.equal((events[0] as { model: string }).model, 'gpt-4o-2024-08-06');

  // Anthropic shape, JSON and SSE
  for (const stream of [false, true]) {
    const a = await call(`${g.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': CLIENT_KEY, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify({ model: 'claude-sonnet', max_tokens: 64, stream, messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(a.status, 200, a.text);
    const last = s.claude.received[s.claude.received.length - 1];
    assert.equal(last.body.model, 'claude-sonnet-4-20250514');
    if (stream) assert.equal((sseData(a.text).find((e) => (e as { type?: string }).type === 'message_delta') as { usage: { output_tokens: number } }).usage.output_tokens, 500);
    else assert.equal(a.json().model, 'claude-sonnet-4-20250514');
  }

  // a model the route does not serve, a body without one, a duplicate model: refused before any provider is called
  const before = s.openai.received.length + s.local.received.length;
  const unknown = await chat(g, { model: 'gpt-5-turbo', messages: [] });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json().code, 'unknown_model');
  assert.equal((await chat(g, { messages: [] })).json().code, 'bad_request');
  const dup = await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' }, body: '{"model":"llama-1","messages":[],"model":"gpt-4o"}' });
  assert.equal(dup.status, 400);
  assert.match(dup.json().detail, /more than one top-level "model"/);
  assert.equal(s.openai.received.length + s.local.received.length, before);
});

test('the provider key is injected and the client\'s own credentials never reach the provider', async (t) => {
  const { g, s } = await setup(t);
  // a provider key of the client's own in x-api-key beside its gateway key disagrees with it: refused (issue 11 #6),
  // so it never reaches the provider either
  const refused = await chat(g, { model: 'gpt-4o', messages: [] }, { 'x-api-key': 'client-side-provider-key' });
  assert.equal(refused.status, 401);
  assert.equal(s.openai.received.length, 0);
  // the gateway key as a bearer token plus an org header of the client's own
  const r = await chat(g, { model: 'gpt-4o', messages: [] }, { 'openai-organization': 'org-client' });
  assert.equal(r.status, 200);
  const h = s.openai.received[0].headers;
  assert.equal(h.authorization, `Bearer ${PROVIDER_KEYS.OPENAI_KEY}`);
  assert.equal(h['x-api-key'], undefined);
  assert.equal(h['openai-organization'], undefined);
  const a = await call(`${g.url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude-sonnet', max_tokens: 8, messages: [] }) });
  assert.equal(a.status, 200);
  const ch = s.claude.received[0].headers;
  assert.equal(ch['x-api-key'], PROVIDER_KEYS.ANTHROPIC_KEY);
  assert.equal(ch.authorization, undefined);
  assert.equal(ch['anthropic-version'], '2023-06-01', 'set when the client did not');
  // no key of either side in a log line or the admin config
  const cfg = (await call(`${g.adminUrl}/admin/config`)).text;
  for (const k of [...Object.values(PROVIDER_KEYS), CLIENT_KEY]) {
    assert.ok(!g.rawLogs().includes(k), 'not in the logs');
    assert.ok(!cfg.includes(k), 'not in /admin/config');
  }
});

test('failover before the first byte: 429 and 503 move to the next candidate; each attempt is in the access log and metrics', async (t) => {
  const { g, s } = await setup(t);
  s.openai.failures.push({ status: 429, headers: { 'retry-after': '0' } });
  const r1 = await chat(g, { model: 'gpt-4o', messages: [{ role: 'user', content: 'a' }] });
  assert.equal(r1.status, 200);
  assert.equal(r1.json().model, 'llama-3.3-70b', 'answered by the second candidate');
  assert.equal(s.local.received[0].body.model, 'llama-3.3-70b', 'with its own model name');
  assert.equal(s.local.received[0].headers.authorization, `Bearer ${PROVIDER_KEYS.LOCAL_KEY}`, 'and its own key');
  assert.equal(s.openai.received[0].raw.replace('gpt-4o-2024-08-06', ''), s.local.received[0].raw.replace('llama-3.3-70b', ''), 'the same body otherwise');

  s.openai.failures.push({ status: 503 });
  const r2 = await chat(g, { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'b' }] });
  assert.equal(r2.status, 200);
  assert.ok(sseData(r2.text).some((e) => JSON.stringify(e).includes('local-0')), 'the stream came from the second candidate');

  // a connection that fails before any answer
  s.openai.failures.push({ destroy: true });
  const r3 = await chat(g, { model: 'gpt-4o', messages: [] });
  assert.equal(r3.status, 200);
  assert.equal(r3.json().model, 'llama-3.3-70b');

  const lines = (await eventually(() => { const a = access(g); return a.length >= 3 ? a : null; }))!;
  assert.deepEqual((lines[0].attempts as Array<{ upstream: string; result: string; status: number }>).map((a) => [a.upstream, a.result, a.status]), [['openai', 'http_429', 429], ['local', 'ok', 200]]);
  assert.deepEqual((lines[1].attempts as Array<{ result: string }>).map((a) => a.result), ['http_5xx', 'ok']);
  assert.deepEqual((lines[2].attempts as Array<{ result: string }>).map((a) => a.result), ['connect', 'ok']);
  assert.equal(lines[0].model, 'gpt-4o');
  const metrics = (await call(`${g.adminUrl}/metrics`)).text;
  assert.match(metrics, /gatehouse_model_attempts_total\{route="chat",upstream="openai",model="gpt-4o-2024-08-06",result="http_429"\} 1/);
  assert.match(metrics, /gatehouse_model_attempts_total\{route="chat",upstream="local",model="llama-3.3-70b",result="ok"\} 3/);
});

test('no failover once a byte reached the client: a stream cut after its first event is cut for the client too', async (t) => {
  const { g, s } = await setup(t);
  s.openai.failures.push({ cutAfterEvents: 1 });
  const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [] }) });
  assert.equal(r.statusCode, 200);
  let text = '';
  await assert.rejects(async () => { for await (const c of r.body) text += c; }, 'the client sees a broken stream, never a complete-looking one');
  assert.match(text, /openai-0/);
  assert.equal(s.local.received.length, 0, 'the second candidate was never asked');
  const line = await eventually(() => access(g)[0]);
  assert.equal((line.attempts as unknown[]).length, 1);
});

test('when the last candidate fails too, its own answer reaches the client; a candidate that is not in the failover list is not retried', async (t) => {
  const { g, s } = await setup(t);
  s.openai.failures.push({ status: 429, headers: { 'retry-after': '0' } });
  s.local.failures.push({ status: 429, headers: { 'retry-after': '7' } });
  const r = await chat(g, { model: 'gpt-4o', messages: [] });
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '7', 'the provider\'s answer, as it was');
  // 400 is not a failover status: answered as is
  s.openai.failures.push({ status: 400 });
  const bad = await chat(g, { model: 'gpt-4o', messages: [] });
  assert.equal(bad.status, 400);
  assert.equal(s.local.received.length, 1);
});

test('a cooling candidate is skipped until its Retry-After passes, across two gateways sharing Redis', async (t) => {
  const s = { openai: await startLlmStub('openai', 'openai'), local: await startLlmStub('local', 'openai'), claude: await startLlmStub('claude', 'anthropic') };
  const prefix = `ghai-${randomBytes(3).toString('hex')}:`;
  const state = `state: { store: redis, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${prefix}", timeout: 2s } }`;
  const g1 = await startGateway(config(s, state), { env: PROVIDER_KEYS });
  const g2 = await startGateway(config(s, state), { env: PROVIDER_KEYS });
  t.after(async () => { await g1.close(); await g2.close(); await Promise.all(Object.values(s).map((x) => x.close())); });

  s.openai.failures.push({ status: 429, headers: { 'retry-after': '2' } });
  const t0 = Date.now();
  assert.equal((await chat(g1, { model: 'gpt-4o', messages: [] })).json().model, 'llama-3.3-70b');
  assert.equal(s.openai.received.length, 1);
  // the other gateway never calls the cooling provider while the cooldown runs
  for (let i = 0; i < 3; i++) assert.equal((await chat(g2, { model: 'gpt-4o', messages: [] })).json().model, 'llama-3.3-70b');
  assert.equal(s.openai.received.length, 1, 'skipped while cooling');
  const skipped = await eventually(() => access(g2)[0]);
  assert.deepEqual((skipped.attempts as Array<{ result: string }>).map((a) => a.result), ['cooling', 'ok']);
  // once it has passed, it is the first choice again
  await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - t0))));
  assert.equal((await chat(g2, { model: 'gpt-4o', messages: [] })).json().model, 'gpt-4o-2024-08-06');
  assert.equal(s.openai.received.length, 2);
});

test('the official openai and @anthropic-ai/sdk clients work through the gateway, streaming included', async (t) => {
  const { g, s } = await setup(t);
  const openai = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${g.url}/v1`, maxRetries: 0 });
  const done = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(done.choices[0].message.content, 'answer from openai');
  assert.equal(done.usage?.total_tokens, 1500);
  const stream = await openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }], stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: unknown = null;
  for await (const chunk of stream) { text += chunk.choices[0]?.delta?.content ?? ''; if (chunk.usage) usage = chunk.usage; }
  assert.equal(text, 'openai-0 openai-1 openai-2 ');
  assert.deepEqual(usage, { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 });
  // the SDK's own headers went up, its key did not
  assert.equal(s.openai.received[1].headers.authorization, `Bearer ${PROVIDER_KEYS.OPENAI_KEY}`);
  // a refusal is an APIError the SDK understands
  await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: [] }), (e: unknown) => e instanceof OpenAI.APIError && e.status === 400);

  const anthropic = new Anthropic({ apiKey: CLIENT_KEY, baseURL: g.url, maxRetries: 0 });
  const msg = await anthropic.messages.create({ model: 'claude-sonnet', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
  assert.equal((msg.content[0] as { text: string }).text, 'answer from claude');
  assert.equal(msg.model, 'claude-sonnet-4-20250514');
  const ms = anthropic.messages.stream({ model: 'claude-sonnet', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
  let atext = '';
  ms.on('text', (d) => { atext += d; });
  const final = await ms.finalMessage();
  assert.equal(atext, 'claude-0 claude-1 claude-2 ');
  assert.equal(final.usage.output_tokens, 500);
  assert.equal(s.claude.received[1].headers['x-api-key'], PROVIDER_KEYS.ANTHROPIC_KEY);
});
