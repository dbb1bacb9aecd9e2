import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { call, eventually, startGateway } from '../helpers.ts';
import { startLlmStub } from '../support/llm-stub.ts';

const body = (stream: boolean) => JSON.stringify({ model: 'm', stream, messages: [] });

test('upstream maxInFlight: a plain route answers 429 naming the upstream policy; a model route passes a busy candidate over; plan and route limits per consumer', async (t) => {
  const a = await startLlmStub('a', 'openai');
  const b = await startLlmStub('b', 'openai');
  a.events = 20; a.eventDelayMs = 25;
  const yaml = `
consumers: [ { id: acme, plan: p, keys: [ "${hashApiKey('k-acme')}" ] }, { id: zed, plan: p, keys: [ "${hashApiKey('k-zed')}" ] } ]
plans: { p: { concurrency: { limit: 3 } } }
upstreams:
  a: { provider: openai-compatible, targets: [ "${a.url}" ], maxInFlight: 1 }
  b: { provider: openai-compatible, targets: [ "${b.url}" ] }
routes:
  - { name: plain, match: { path: /plain, methods: [POST] }, upstream: a, auth: public }
  - name: routed
    match: { path: /routed, methods: [POST] }
    auth: apikey
    models: { m: [ a, b ] }
    concurrency: { limit: 2, by: consumer }
`;
  const g = await startGateway(yaml);
  t.after(async () => { await g.close(); await a.close(); await b.close(); });
  const open = async (path: string, key?: string) => {
    const r = await request(`${g.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) }, body: body(true) });
    return r;
  };
  // one stream holds upstream a's only slot
  const first = await open('/plain');
  assert.equal(first.statusCode, 200);
  assert.match(String(first.headers['ratelimit-policy']), /"upstream-a";q=1;qu="concurrent-requests"/);
  const refused = await call(`${g.url}/plain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(false) });
  assert.equal(refused.status, 429);
  assert.equal(refused.json().code, 'concurrency_limited');
  assert.equal(refused.json().policy, 'upstream-a');
  assert.match(String(refused.headers['ratelimit-policy']), /"upstream-a";q=1/);
  // the model route skips the busy candidate: b answers
  const routed = await call(`${g.url}/routed`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k-acme' }, body: body(false) });
  assert.equal(routed.status, 200);
  assert.equal(b.received.length, 1);
  const line = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.route === 'routed')))!;
  assert.deepEqual((line.attempts as Array<{ result: string }>).map((x) => x.result), ['busy', 'ok']);
  await first.body.dump();
  // route limit 2 per consumer: a third concurrent stream of acme is refused, zed's is not
  b.events = 20; b.eventDelayMs = 25;
  const s1 = await open('/routed', 'k-acme');
  const s2 = await open('/routed', 'k-acme');
  const s3 = await call(`${g.url}/routed`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k-acme' }, body: body(false) });
  assert.equal(s3.status, 429);
  assert.match(String(s3.headers['ratelimit-policy']), /"concurrency";q=2;qu="concurrent-requests"/);
  assert.equal(s3.headers['retry-after'], '1');
  const z = await call(`${g.url}/routed`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k-zed' }, body: body(false) });
  assert.equal(z.status, 200);
  await s1.body.dump(); await s2.body.dump();
  // a reload keeps working (instruments registered once, leases kept)
  assert.equal(g.reload(yaml).ok, true);
  assert.equal((await call(`${g.url}/routed`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k-acme' }, body: body(false) })).status, 200);
});
