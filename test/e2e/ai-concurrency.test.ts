// Concurrency leases across two `gatehouse start` processes sharing Redis: the count is one, a slot is freed when a
// client leaves mid-stream (not when the upstream would have finished), and a gateway killed with its streams open
// does not hold its slots for longer than state.leaseTtl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.ts';
import { startLlmStub } from '../support/llm-stub.ts';

const body = JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
const post = (url: string, signal?: AbortSignal) => request(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal });

test('concurrency limit 5: 50 concurrent streams never put more than 5 in flight at the stub; a client that leaves frees its slot; a killed gateway\'s leases expire', async (t) => {
  const stub = await startLlmStub('openai', 'openai');
  const prefix = `ghcc-${randomBytes(3).toString('hex')}:`;
  const yaml = `
server: { listen: 127.0.0.1:0, environment: development }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, format: json, accessLog: false } }
state: { store: redis, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${prefix}", timeout: 5s, onError: closed }, leaseTtl: 1s }
upstreams:
  openai: { provider: openai-compatible, targets: [ "${stub.url}" ], pool: { connections: 64 } }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    auth: public
    models: { gpt-4o: [ openai ] }
    concurrency: { limit: 5, by: route }
`;
  const gws: ChildGateway[] = await Promise.all([0, 1].map(() => startChildGateway(yaml)));
  const raw = new Redis('redis://127.0.0.1:6379');
  t.after(async () => {
    const keys = await raw.keys(`*${prefix}*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
    await Promise.all(gws.map((g) => g.kill()));
    await stub.close();
  });

  // --- 50 concurrent streams over two gateways; a refused one waits its Retry-After (as a client would) and retries
  stub.events = 4;
  stub.eventDelayMs = 40;
  let refused = 0;
  let policyHeader = '';
  const one = async (i: number) => {
    for (;;) {
      const r = await post(gws[i % 2].url);
      if (r.statusCode === 200) { const text = await r.body.text(); assert.match(text, /\[DONE\]/); return; }
      assert.equal(r.statusCode, 429);
      refused++;
      policyHeader = String(r.headers['ratelimit-policy']);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((await r.body.json() as { code: string }).code, 'concurrency_limited');
      await new Promise((res) => setTimeout(res, 50 + Math.random() * 100)); // a client may come back sooner than Retry-After
    }
  };
  await Promise.all(Array.from({ length: 50 }, (_, i) => one(i)));
  assert.equal(stub.completed, 50);
  assert.ok(stub.maxInFlight <= 5, `at most 5 streams at the stub at once (saw ${stub.maxInFlight})`);
  assert.equal(stub.maxInFlight, 5, 'and the limit was used');
  assert.ok(refused > 0);
  assert.equal(policyHeader, '"concurrency";q=5;qu="concurrent-requests"');
  // Released when each exchange ends at the gateway, which is a moment after the client read [DONE].
  const deadline = Date.now() + 1000;
  while ((await raw.zcard(`{${prefix}lease:r:chat}`)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await raw.zcard(`{${prefix}lease:r:chat}`), 0, 'every lease given back within a second of the last stream');

  // --- clients that leave mid-stream free their slots at once, not when the stream would have ended (~5 s)
  stub.reset();
  stub.events = 100;
  stub.eventDelayMs = 50;
  const leaving = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
    const ac = new AbortController();
    const r = await post(gws[i % 2].url, ac.signal);
    assert.equal(r.statusCode, 200);
    const it = r.body[Symbol.asyncIterator]();
    await it.next(); // the first event arrived: the stream runs
    return ac;
  }));
  const full = await post(gws[0].url);
  assert.equal(full.statusCode, 429, 'five streams hold all five slots');
  await full.body.dump();
  const t0 = Date.now();
  for (const ac of leaving) ac.abort();
  let admittedAfter = -1;
  for (let i = 0; i < 50; i++) {
    const r = await post(gws[1].url);
    if (r.statusCode === 200) { admittedAfter = Date.now() - t0; r.body.destroy(); break; }
    await r.body.dump();
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.ok(admittedAfter >= 0 && admittedAfter < 1000, `a slot came back within ${admittedAfter} ms of the clients leaving (their streams had ~5 s to go)`);
  await new Promise((res) => setTimeout(res, 200));
  assert.ok(stub.aborted >= 5, 'the upstream streams were cut too');

  // --- a gateway killed (SIGKILL) with five streams open: its leases expire within state.leaseTtl
  stub.reset();
  for (let i = 0; i < 100 && await raw.zcard(`{${prefix}lease:r:chat}`) > 0; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(await raw.zcard(`{${prefix}lease:r:chat}`), 0);
  const held = await Promise.all(Array.from({ length: 5 }, async () => {
    const r = await post(gws[0].url);
    assert.equal(r.statusCode, 200);
    const it = r.body[Symbol.asyncIterator]();
    await it.next();
    return r;
  }));
  gws[0].proc.kill('SIGKILL');
  await gws[0].exited;
  for (const r of held) r.body.destroy();
  const killedAt = Date.now();
  const blocked = await post(gws[1].url);
  assert.equal(blocked.statusCode, 429, 'the dead gateway\'s leases still count for a moment');
  await blocked.body.dump();
  let back = 0;
  for (let i = 0; i < 100; i++) {
    const r = await post(gws[1].url);
    if (r.statusCode === 200) { back = Date.now() - killedAt; r.body.destroy(); break; }
    await r.body.dump();
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(back > 0, 'the slots came back');
  assert.ok(back <= 2000, `within the 1 s lease TTL (plus a renewal period): ${back} ms`);
});
