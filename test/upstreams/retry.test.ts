import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers.ts';
import { startFaulty, refusedPort, metric, type FaultyUpstream } from './faulty-upstream.ts';

interface Answer { status: number; body: Record<string, unknown> | null; error?: string }

async function call(url: string, method = 'GET', body?: string): Promise<Answer> {
  const r = await request(url, { method: method as 'GET', body, headers: body !== undefined ? { 'content-type': 'application/json' } : {} });
  try {
    const text = await r.body.text();
    return { status: r.statusCode, body: text ? JSON.parse(text) : null };
  } catch (e) {
    return { status: r.statusCode, body: null, error: (e as Error).message };
  }
}

/** `bad` is tried first (weight 1000 against 1), `good` only when a retry excludes `bad`. */
async function pair(t: { after(fn: () => Promise<void>): void }, bad: FaultyUpstream, extra = '', route = ''): Promise<{ g: TestGateway; good: FaultyUpstream }> {
  const good = await startFaulty('good');
  const g = await startGateway(`
upstreams:
  svc:
    balance: weighted
    targets: [ { url: ${bad.url}, weight: 1000 }, { url: ${good.url}, weight: 1 } ]
    retry: { attempts: 2, backoff: 5ms, budget: 100% }
${extra}
routes:
  - { match: { path: /x }, upstream: svc, auth: public ${route} }
`);
  t.after(async () => { await g.close(); await bad.close(); await good.close(); });
  return { g, good };
}

test('connection refused: GETs and POSTs with a body are retried on another target (nothing was sent), and the body arrives whole', async (t) => {
  const port = await refusedPort();
  const good = await startFaulty('good');
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ http://127.0.0.1:${port}, ${good.url} ]
    retry: { attempts: 2, backoff: 5ms, budget: 100% }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await good.close(); });
  for (let i = 0; i < 6; i++) assert.equal((await call(`${g.url}/x`)).status, 200);
  const payload = JSON.stringify({ pad: 'x'.repeat(5000) });
  const post = await call(`${g.url}/x`, 'POST', payload);
  assert.equal(post.status, 200);
  assert.equal(post.body!.method, 'POST');
  assert.equal(post.body!.bodyBytes, payload.length, 'the body was not read by the refused attempt, so it went up whole');
  assert.equal(good.calls, 7);
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.ok(metric(m, 'gatehouse_upstream_retries_total', { upstream: 'svc' })! >= 3);
});

test('reset before the response: a bodyless idempotent request is retried; a POST, or any request whose body went up, is not', async (t) => {
  const bad = await startFaulty('bad', { mode: 'reset' });
  const { g, good } = await pair(t, bad);

  const get = await call(`${g.url}/x`);
  assert.equal(get.status, 200);
  assert.equal(get.body!.service, 'good');
  assert.deepEqual([bad.calls, good.calls], [1, 1]);

  const del = await call(`${g.url}/x`, 'DELETE');
  assert.equal(del.status, 200, 'DELETE is idempotent');

  const post = await call(`${g.url}/x`, 'POST');
  assert.equal(post.status, 502, 'a POST reached the upstream: it may have acted on it');
  assert.equal(post.body!.code, 'upstream_failed');

  const put = await call(`${g.url}/x`, 'PUT', JSON.stringify({ a: 1 }));
  assert.equal(put.status, 502, 'an idempotent PUT whose body was streamed cannot be replayed');
  assert.deepEqual(good.methods, ['GET', 'DELETE'], 'only the retried requests reached the other target');
});

test('reset mid-response: once response bytes reached the client there is no retry; the client connection is cut', async (t) => {
  const bad = await startFaulty('bad', { mode: 'reset-mid' });
  const { g, good } = await pair(t, bad);
  const r = await call(`${g.url}/x`);
  assert.equal(r.status, 200);
  assert.ok(r.error, 'the truncated body is an error for the client, never a complete-looking response');
  assert.equal(good.calls, 0);
});

test('hang (slow headers past the timeout): a GET is retried on another target; a POST with a body gets 504', async (t) => {
  const bad = await startFaulty('bad', { mode: 'hang' });
  const { g, good } = await pair(t, bad, '', ', timeout: 300ms');
  const t0 = performance.now();
  const get = await call(`${g.url}/x`);
  assert.equal(get.status, 200);
  assert.equal(get.body!.service, 'good');
  assert.ok(performance.now() - t0 >= 280, 'the retry came after the response timeout');
  const post = await call(`${g.url}/x`, 'POST', '{"a":1}');
  assert.equal(post.status, 504);
  assert.equal(post.body!.code, 'upstream_timeout');
  assert.equal(good.calls, 1);
});

test('5xx burst: a 502/503/504 answer is retried on another target for a GET (its body dropped), relayed as is for a POST', async (t) => {
  const bad = await startFaulty('bad', { mode: 'status', status: 503 });
  const { g, good } = await pair(t, bad);
  const get = await call(`${g.url}/x`);
  assert.equal(get.status, 200);
  assert.equal(get.body!.service, 'good');
  const post = await call(`${g.url}/x`, 'POST', '{}');
  assert.equal(post.status, 503);
  assert.equal(post.body!.service, 'bad', "the upstream's own answer, relayed");
  bad.status = 500;
  const five = await call(`${g.url}/x`);
  assert.equal(five.status, 500, '500 is not in retryOn by default');
  assert.equal(good.calls, 1);
});

test('full outage: the retry budget caps upstream calls near requests × (1 + budget), not × (1 + attempts)', async (t) => {
  const targets = await Promise.all(['a', 'b', 'c'].map((n) => startFaulty(n, { mode: 'reset' })));
  const g = await startGateway(`
upstreams:
  svc:
    targets: [ ${targets.map((u) => u.url).join(', ')} ]
    retry: { attempts: 2, budget: 20%, minRetries: 3, backoff: 1ms }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); for (const u of targets) await u.close(); });
  const requests = 40;
  for (let i = 0; i < requests; i++) assert.equal((await call(`${g.url}/x`)).status, 502);
  const calls = targets.reduce((n, u) => n + u.calls, 0);
  // without a budget: 40 × 3 = 120 calls; with 20%: at most 40 + 8
  assert.ok(calls <= requests * 1.2, `upstream calls ${calls} for ${requests} requests`);
  assert.ok(calls >= requests + 3, 'the minimum retries were still made');
  t.diagnostic(`full outage: ${requests} requests made ${calls} upstream calls (attempts: 2 without a budget would make ${requests * 3})`);
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m, 'gatehouse_upstream_retries_total', { upstream: 'svc' }), calls - requests);
  assert.ok(metric(m, 'gatehouse_upstream_retry_budget_exhausted_total', { upstream: 'svc' })! >= requests - 8);
  const admin = (await (await request(`${g.adminUrl}/admin/upstreams/svc`)).body.json()) as { retry: { window: { requests: number; retries: number } } };
  assert.deepEqual([admin.retry.window.requests, admin.retry.window.retries], [requests, calls - requests]);
});

test('without a retry policy nothing is retried', async (t) => {
  const bad = await startFaulty('bad', { mode: 'reset' });
  const good = await startFaulty('good');
  const g = await startGateway(`
upstreams:
  svc: { targets: [ ${bad.url}, ${good.url} ] }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await bad.close(); await good.close(); });
  assert.equal((await call(`${g.url}/x`)).status, 502);
  assert.deepEqual([bad.calls, good.calls], [1, 0]);
});
