// Money budgets across three `gatehouse start` processes sharing one Redis: the 402 comes at exactly the request
// the documented arithmetic says (docs/ai-traffic.md "Money budgets"), streamed and non-streamed alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { Redis } from 'ioredis';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { periodOf } from '../../src/state/store.ts';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.ts';
import { startLlmStub } from '../support/llm-stub.ts';

/** A chat body of exactly 400 bytes: its prompt is estimated at 400 / 4 = 100 tokens. */
function body(stream: boolean): string {
  const base = { model: 'gpt-4o', max_tokens: 500, stream, messages: [{ role: 'user', content: '' }] };
  const pad = 400 - Buffer.byteLength(JSON.stringify(base));
  base.messages[0].content = 'x'.repeat(pad);
  const s = JSON.stringify(base);
  assert.equal(Buffer.byteLength(s), 400);
  return s;
}

test('a cost budget reaches 402 at exactly the documented arithmetic, over streamed and non-streamed calls, across 3 replicas with Redis', async (t) => {
  const stub = await startLlmStub('openai', 'openai');
  const prefix = `ghcost-${randomBytes(3).toString('hex')}:`;
  const yaml = `
server: { listen: 127.0.0.1:0, environment: development }
admin: { listen: 127.0.0.1:0 }
observability: { log: { level: info, format: json, accessLog: false } }
state: { store: redis, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${prefix}", timeout: 5s, onError: closed } }
pricing:
  currency: USD
  models:
    gpt-4o-2024-08-06: { input: 2.5, output: 10 }      # per million tokens
upstreams:
  openai: { provider: openai, apiKey: "\${OPENAI_KEY:-sk-e2e-provider-key}", targets: [ "${stub.url}" ] }
consumers:
  - { id: seq, plan: metered, keys: [ "${hashApiKey('key-seq')}" ] }
  - { id: par, plan: metered, keys: [ "${hashApiKey('key-par')}" ] }
plans:
  metered: { quota: { cost: { limit: 0.05, period: day } } }     # 50,000 micro-dollars
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    auth: apikey
    models: { gpt-4o: [ { upstream: openai, model: gpt-4o-2024-08-06 } ] }
    quota: { usage: cost }
`;
  const gws: ChildGateway[] = await Promise.all([0, 1, 2].map(() => startChildGateway(yaml)));
  const pools = gws.map((g) => new Pool(g.url, { connections: 16 }));
  const raw = new Redis('redis://127.0.0.1:6379');
  t.after(async () => {
    const keys = await raw.keys(`*${prefix}*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.kill()));
    await stub.close();
  });
  const send = async (i: number, key: string, stream: boolean) => {
    const r = await pools[i % 3].request({ path: '/v1/chat/completions', method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body(stream) });
    const text = await r.body.text();
    return { status: r.statusCode, text, headers: r.headers };
  };
  const micros = async (consumer: string) => Number(await raw.get(`{${prefix}q:${consumer}}:cost:${periodOf('day', Date.now()).id}`) ?? 0);

  // Each call reserves ceil(100 × 2.5 + 500 × 10) = 5,250 µ$ (prompt estimate 100 tokens, max_tokens 500) and
  // settles what the provider reports: 1,000 input + 500 output tokens = 2,500 + 5,000 = 7,500 µ$.
  // Call k is admitted while 7,500·k + 5,250 ≤ 50,000: k = 0..5, six calls; the seventh is refused.
  stub.usage = { input: 1000, output: 500 };
  const statuses: number[] = [];
  for (let k = 0; k < 8; k++) {
    const r = await send(k, 'key-seq', k % 2 === 1);
    statuses.push(r.status);
    if (r.status === 402) {
      const p = JSON.parse(r.text);
      assert.equal(p.code, 'quota_exceeded');
      assert.equal(p.quota, 'cost');
      assert.equal(p.currency, 'USD');
      assert.equal(p.limit, '0.05');
      assert.equal(p.usedMicros, 45_000);
      assert.equal(p.used, '0.045');
      assert.equal(p.requestedMicros, 5_250);
      assert.equal(p.resetAt, new Date(periodOf('day', Date.now()).end).toISOString());
      assert.match(p.detail, /daily cost budget \(0\.05 USD\) is used up; it resets at /);
      assert.ok(Number(r.headers['retry-after']) > 0);
    }
    // settlement happens as each exchange closes: wait for it before the next call decides
    if (r.status === 200) for (let i = 0; i < 100 && (await micros('seq')) !== 7_500 * (statuses.filter((s) => s === 200).length); i++) await new Promise((res) => setTimeout(res, 20));
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 402, 402]);
  assert.equal(await micros('seq'), 45_000, 'six calls at 7,500 µ$');
  assert.equal(stub.received.length, 6, 'the refused calls never reached the provider');

  // Concurrent calls from another consumer, when the provider reports what was reserved (100 + 500 tokens =
  // 5,250 µ$): floor(50,000 / 5,250) = 9 pass, whatever replica each lands on; never a micro-unit over.
  stub.usage = { input: 100, output: 500 };
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => send(i, 'key-par', i % 2 === 0)));
  assert.equal(results.filter((r) => r.status === 200).length, 9);
  assert.equal(results.filter((r) => r.status === 402).length, 21);
  let settled = 0;
  for (let i = 0; i < 100 && settled !== 47_250; i++) { settled = await micros('par'); if (settled !== 47_250) await new Promise((res) => setTimeout(res, 20)); }
  assert.equal(settled, 47_250);

  // GET /admin/usage reports cost beside tokens, per route and per upstream and model
  const u = await (await fetch(`${gws[0].adminUrl}/admin/usage?consumer=seq`)).json() as { totals: Record<string, Record<string, number | string>>; byModel: Array<Record<string, unknown>>; quotas: Array<Record<string, unknown>>; currency: string };
  assert.equal(u.totals.chat.cost_micros, 45_000);
  assert.equal(u.totals.chat.cost, '0.045');
  assert.equal(u.totals.chat.tokens, 9_000);
  assert.equal(u.currency, 'USD');
  assert.deepEqual(u.byModel.map((m) => [m.route, m.upstream, m.model, m.requests, m.cost_micros]), [['chat', 'openai', 'gpt-4o-2024-08-06', 6, 45_000]]);
  const q = u.quotas.find((x) => x.kind === 'cost')!;
  assert.deepEqual([q.used, q.limit, q.usedAmount, q.limitAmount], [45_000, 50_000, '0.045', '0.05']);
});
