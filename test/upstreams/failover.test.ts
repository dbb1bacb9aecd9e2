import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, eventually } from '../helpers.ts';
import { startFaulty, refusedPort, metric } from './faulty-upstream.ts';

async function get(url: string) {
  const r = await request(url);
  return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as Record<string, unknown> };
}

test('fallback: when every target of an upstream is down, requests go to its fallback upstream', async (t) => {
  const primary = await startFaulty('primary');
  const backup = await startFaulty('backup');
  const g = await startGateway(`
upstreams:
  chat:
    targets: [ ${primary.url} ]
    health: { path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1 }
    fallback: chat-backup
  chat-backup: { targets: [ ${backup.url} ] }
routes:
  - { match: { path: /x }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); await primary.close(); await backup.close(); });
  assert.equal((await get(`${g.url}/x`)).body.service, 'primary');
  primary.healthMode = 'fail';
  await eventually(async () => (await get(`${g.url}/x`)).body.service === 'backup', 3000);
  const health = (await get(`${g.url}/healthz`)).body as { status: string; services: Record<string, { status: string; fallback?: string }> };
  assert.deepEqual(health.services.chat, { ...health.services.chat, status: 'degraded', fallback: 'chat-backup' }, 'served by its fallback: degraded, not down');
  assert.equal(health.status, 'degraded');
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.ok(metric(m, 'gatehouse_upstream_fallbacks_total', { upstream: 'chat', fallback: 'chat-backup' })! >= 1);
  primary.healthMode = 'ok';
  await eventually(async () => (await get(`${g.url}/x`)).body.service === 'primary', 3000);
});

test('degraded: when nothing can serve (fallback included), the client reads the configured message and status as problem+json, with no upstream call', async (t) => {
  const p1 = await refusedPort();
  const p2 = await refusedPort();
  const g = await startGateway(`
upstreams:
  voice:
    targets: [ http://127.0.0.1:${p1} ]
    circuitBreaker: { failures: 1, resetAfter: 30s }
    fallback: voice-backup
    degraded: { message: "Voice is temporarily unavailable; please retry shortly.", status: 503 }
  voice-backup:
    targets: [ http://127.0.0.1:${p2} ]
    circuitBreaker: { failures: 1, resetAfter: 30s }
  plain:
    targets: [ http://127.0.0.1:${p2} ]
    circuitBreaker: { failures: 1, resetAfter: 45s }
routes:
  - { match: { path: /voice }, upstream: voice, auth: public }
  - { match: { path: /backup }, upstream: voice-backup, auth: public }
  - { match: { path: /plain }, upstream: plain, auth: public }
`);
  t.after(() => g.close());
  assert.equal((await get(`${g.url}/backup`)).status, 502, 'the backup fails once: its circuit opens');
  assert.equal((await get(`${g.url}/voice`)).status, 502, 'the primary fails once: its circuit opens');
  const r = await get(`${g.url}/voice`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(r.body.detail, 'Voice is temporarily unavailable; please retry shortly.');
  assert.equal(r.body.code, 'circuit_open');
  assert.equal(r.body.type, 'urn:gatehouse:problem:circuit_open');
  assert.match(String(r.body.requestId), /^[0-9a-f-]{36}$/);
  assert.ok(Number(r.headers['retry-after']) >= 29 && Number(r.headers['retry-after']) <= 30);

  // without degraded: the generic message, still without an upstream call
  await get(`${g.url}/plain`);
  const plain = await get(`${g.url}/plain`);
  assert.equal(plain.status, 503);
  assert.equal(plain.body.code, 'circuit_open');
  assert.match(String(plain.body.detail), /paused until it recovers/);
  assert.ok(!String(plain.body.detail).includes('127.0.0.1'), 'no upstream internals in the message');
  const m = await (await request(`${g.adminUrl}/metrics`)).body.text();
  assert.equal(metric(m, 'gatehouse_upstream_unavailable_total', { upstream: 'voice', code: 'circuit_open' }), 1);
});

test('degraded with another status: the operator picks what clients see', async (t) => {
  const a = await startFaulty('a');
  const g = await startGateway(`
upstreams:
  search:
    targets: [ ${a.url} ]
    health: { path: /health, interval: 50ms, timeout: 500ms, unhealthyThreshold: 1 }
    degraded: { message: "Search is offline for maintenance.", status: 502 }
routes:
  - { match: { path: /s }, upstream: search, auth: public }
`);
  t.after(async () => { await g.close(); await a.close(); });
  a.healthMode = 'fail';
  await eventually(async () => (await get(`${g.url}/healthz`)).body.status === 'unhealthy', 3000);
  const r = await get(`${g.url}/s`);
  assert.equal(r.status, 502);
  assert.deepEqual([r.body.code, r.body.status, r.body.detail], ['upstream_unavailable', 502, 'Search is offline for maintenance.']);
  assert.equal(a.calls, 0);
});
