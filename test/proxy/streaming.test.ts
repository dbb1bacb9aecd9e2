// Streams through the gateway: SSE event by event, client aborts reaching the upstream, upstream truncation reaching the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, fetch } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';

let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'chat' });
  g = await startGateway(`
upstreams:
  chat: { targets: [ ${up.url} ] }
defaults: { auth: public }
routes:
  - { name: chat-stream, match: { path: /v1/chat/stream, methods: [GET, POST] }, upstream: chat }
  - { name: truncate, match: { path: /truncate }, upstream: chat }
`);
});
after(async () => {
  await g.close();
  await up.close();
});

/** Splits SSE frames as bytes arrive, stamping each with its arrival time. */
async function readEvents(body: AsyncIterable<Uint8Array>): Promise<Array<{ at: number; data: string }>> {
  const out: Array<{ at: number; data: string }> = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      out.push({ at: performance.now(), data: buf.slice(0, i).replace(/^data: /, '') });
      buf = buf.slice(i + 2);
    }
  }
  assert.equal(buf, '', 'no partial event left over');
  return out;
}

test('SSE events arrive one by one, spaced like the upstream sends them (no buffering)', async () => {
  const n = 10;
  const delay = 50;
  const t0 = performance.now();
  const r = await request(`${g.url}/v1/chat/stream?n=${n}&delay=${delay}`);
  const headersAt = performance.now() - t0;
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream');
  assert.ok(headersAt < (n - 1) * delay, `headers came only after ${headersAt} ms`);
  const events = await readEvents(r.body);
  assert.equal(events.length, n + 2, 'n tokens, the usage event, [DONE]');
  assert.equal(events[n + 1].data, '[DONE]');
  assert.deepEqual(JSON.parse(events[n].data).usage.completion_tokens, n);
  for (let i = 0; i < n; i++) assert.equal(JSON.parse(events[i].data).choices[0].delta.content, `tok${i} `);

  const tokens = events.slice(0, n).map((e) => e.at);
  const spread = tokens[n - 1] - tokens[0];
  // The upstream spaces tokens by `delay`; a buffering proxy would deliver them together.
  assert.ok(spread >= (n - 1) * delay * 0.6, `events bunched together: spread ${spread.toFixed(1)} ms`);
  const gaps = tokens.slice(1).map((t, i) => t - tokens[i]);
  const spaced = gaps.filter((gap) => gap >= delay * 0.4).length;
  assert.ok(spaced >= (n - 1) / 2, `most gaps should be near ${delay} ms: ${gaps.map((x) => x.toFixed(0)).join(', ')}`);
});

test('a client abort mid-stream reaches the upstream promptly', async () => {
  const before = up.stats.streamsAborted;
  const completed = up.stats.streamsCompleted;
  const ac = new AbortController();
  const res = await fetch(`${g.url}/v1/chat/stream?n=1000&delay=20`, { signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.read();
  ac.abort();
  await reader.read().catch(() => undefined);
  await eventually(() => up.stats.streamsAborted === before + 1, 1500);
  assert.equal(up.stats.streamsCompleted, completed);
});

test('an upstream that cuts its body short reaches the client as an abort, not a clean short body', async () => {
  const r = await request(`${g.url}/truncate`);
  assert.equal(r.statusCode, 200);
  await assert.rejects(r.body.arrayBuffer(), 'reading the body must fail');
  const line = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.route === 'truncate')))!;
  assert.equal(line.error, 'upstream_failed');
});
