import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { call, startGateway, type TestGateway } from '../helpers.ts';
import { ipPartition, ipv6Prefix64 } from '../../src/policies/rate-limit-keys.ts';

const hash = (k: string) => 'sha256:' + createHash('sha256').update(k).digest('hex');
const chatBody = JSON.stringify({ messages: [{ role: 'user', content: 'hello there' }] });

async function setup(t: { after(fn: () => Promise<void>): void }, routes: string, extra = ''): Promise<{ g: TestGateway; up: DemoServer }> {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(`
upstreams:
  chat: { targets: [ ${up.url} ] }
${extra}
routes:
${routes}
`);
  t.after(async () => { await g.close(); await up.close(); });
  return { g, up };
}


test('several tiers: headers on every answer, 429 with Retry-After, and a refused request consumes no tier', async (t) => {
  const { g } = await setup(t, `
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 2, window: 1s, by: ip }, { limit: 3, window: 1h, by: ip } ] }`);
  const a = await call(`${g.url}/echo`);
  assert.equal(a.status, 200);
  assert.equal(a.headers['ratelimit-policy'], '"1s";q=2;w=1, "1h";q=3;w=3600');
  assert.equal(a.headers['ratelimit'], '"1s";r=1;t=1, "1h";r=2;t=1200');
  assert.equal((await call(`${g.url}/echo`)).status, 200);
  const denied = await call(`${g.url}/echo`);
  assert.equal(denied.status, 429);
  assert.equal(denied.headers['content-type'], 'application/problem+json');
  assert.equal(denied.json().code, 'rate_limited');
  assert.deepEqual(denied.json().policies, ['1s']);
  assert.equal(denied.headers['retry-after'], '1');
  assert.equal(denied.headers['ratelimit'], '"1s";r=0;t=1');
  assert.equal(denied.headers['ratelimit-policy'], '"1s";q=2;w=1, "1h";q=3;w=3600');
  await new Promise((r) => setTimeout(r, 650));
  // The refused request took nothing from the hour tier: exactly one unit is left there.
  const third = await call(`${g.url}/echo`);
  assert.equal(third.status, 200);
  assert.match(String(third.headers['ratelimit']), /"1h";r=0;t=3600$/);
  await new Promise((r) => setTimeout(r, 650));
  const hour = await call(`${g.url}/echo`);
  assert.equal(hour.status, 429);
  assert.deepEqual(hour.json().policies, ['1h']);
  const ra = Number(hour.headers['retry-after']);
  assert.ok(ra > 1100 && ra <= 1200, `one unit of 3/h returns after ~1200 s: ${ra}`);
  assert.equal(hour.headers['ratelimit'], `"1h";r=0;t=${ra}`);
});

test('Retry-After follows the GCRA arithmetic (60/min: one request a second)', async (t) => {
  const { g } = await setup(t, `
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 60, window: 1m, by: route, cost: 20 } ] }`);
  for (let i = 0; i < 3; i++) assert.equal((await call(`${g.url}/echo`)).status, 200);
  const d = await call(`${g.url}/echo`);
  assert.equal(d.status, 429);
  const ra = Number(d.headers['retry-after']);
  assert.ok(ra >= 19 && ra <= 20, `cost 20 needs 20 units back, one per second: ${ra}`);
});

test('keyed by header: each tenant has its own bucket; requests without the header share one', async (t) => {
  const { g } = await setup(t, `
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1m, by: "header:x-tenant" } ] }`);
  assert.equal((await call(`${g.url}/echo`, { headers: { 'x-tenant': 'a' } })).status, 200);
  assert.equal((await call(`${g.url}/echo`, { headers: { 'x-tenant': 'a' } })).status, 429);
  assert.equal((await call(`${g.url}/echo`, { headers: { 'x-tenant': 'b' } })).status, 200);
  assert.equal((await call(`${g.url}/echo`)).status, 200);
  assert.equal((await call(`${g.url}/echo`)).status, 429);
});

test('IPv6 clients are keyed by their /64; IPv4 and IPv6 loopback are different clients', async (t) => {
  assert.equal(ipv6Prefix64('2001:db8:0:1:aaaa:bbbb:cccc:dddd'), '2001:db8:0:1::/64');
  assert.equal(ipv6Prefix64('2001:db8:0:1::7'), '2001:db8:0:1::/64');
  assert.equal(ipv6Prefix64('2001:DB8::1'), '2001:db8:0:0::/64');
  assert.equal(ipv6Prefix64('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(ipv6Prefix64('::ffff:192.0.2.1'), '0:0:0:0::/64');
  assert.equal(ipPartition('2001:db8:0:1:ffff::1'), ipPartition('2001:db8:0:1::2'));
  assert.notEqual(ipPartition('2001:db8:0:1::1'), ipPartition('2001:db8:0:2::1'));
  assert.equal(ipPartition('192.0.2.7'), 'ip:192.0.2.7');

  const up = await startDemoServer({ name: 'chat' });
  let g: TestGateway;
  try {
    g = await startGateway(`
server:
  listen: "[::]:0"
upstreams:
  chat: { targets: [ ${up.url} ] }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1m, by: ip } ] }
`);
  } catch (e) {
    await up.close();
    t.skip(`no IPv6 on this machine: ${(e as Error).message}`);
    return;
  }
  t.after(async () => { await g.close(); await up.close(); });
  assert.equal((await call(`http://127.0.0.1:${g.port}/echo`)).status, 200);
  assert.equal((await call(`http://127.0.0.1:${g.port}/echo`)).status, 429);
  assert.equal((await call(`http://[::1]:${g.port}/echo`)).status, 200, '::1 is another client');
  assert.equal((await call(`http://[::1]:${g.port}/echo`)).status, 429);
});

test('X-Forwarded-For from an untrusted peer does not change the key; from a trusted proxy it does', async (t) => {
  const { g } = await setup(t, `
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1m, by: ip } ] }`);
  assert.equal((await call(`${g.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 200);
  assert.equal((await call(`${g.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.2' } })).status, 429, 'spoofed XFF ignored');

  const up2 = await startDemoServer({ name: 'chat' });
  const g2 = await startGateway(`
server: { trustedProxies: [127.0.0.1] }
upstreams:
  chat: { targets: [ ${up2.url} ] }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public, rateLimit: [ { limit: 1, window: 1m, by: ip } ] }
`);
  t.after(async () => { await g2.close(); await up2.close(); });
  assert.equal((await call(`${g2.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 200);
  assert.equal((await call(`${g2.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.2' } })).status, 200, 'a trusted proxy names the client');
  assert.equal((await call(`${g2.url}/echo`, { headers: { 'x-forwarded-for': '198.51.100.2' } })).status, 429);
});

test('unit: tokens admits while tokens are left and charges the usage each response reports', async (t) => {
  const { g } = await setup(t, `
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat, auth: public, rateLimit: [ { limit: 50, window: 1h, by: ip, unit: tokens } ] }`);
  const statuses: number[] = [];
  let tokens = 0;
  let last = '';
  for (let i = 0; i < 9; i++) {
    const r = await call(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody });
    statuses.push(r.status);
    if (r.status === 200) { tokens += r.json().usage.total_tokens; last = String(r.headers['ratelimit']); }
    else { assert.equal(r.headers['ratelimit-policy'], '"tokens-1h";q=50;w=3600;qu="tokens"'); break; }
  }
  // 9 tokens per answer: admitted while any of the 50 are left, i.e. 6 answers (54 tokens), then 429.
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429]);
  assert.equal(tokens, 54);
  assert.match(last, /^"tokens-1h";r=5;/, 'the 6th was admitted with 5 tokens left');
});

test('plans: consumer tiers shared across routes; a route rule overrides a plan tier or adds one', async (t) => {
  const { g } = await setup(t, `
  - { name: a, match: { path: /a }, upstream: chat, auth: apikey }
  - { name: b, match: { path: /b }, upstream: chat, auth: apikey }
  - { name: wide, match: { path: /wide }, upstream: chat, auth: apikey, rateLimit: [ { limit: 5, window: 1m } ] }
  - { name: extra, match: { path: /extra }, upstream: chat, auth: apikey, rateLimit: [ { limit: 1, window: 1h, by: route } ] }
  - { name: open, match: { path: /open }, upstream: chat, auth: public }`, `
consumers:
  - { id: acme, plan: free, keys: ["${hash('key-acme')}"] }
  - { id: bob, plan: free, keys: ["${hash('key-bob')}"] }
  - { id: vip, plan: pro, keys: ["${hash('key-vip')}"] }
plans:
  free: { rateLimit: [ { limit: 2, window: 1m } ] }
  pro: { rateLimit: [ { limit: 100, window: 1m } ] }`);
  const as = (who: string) => ({ headers: { 'x-api-key': `key-${who}` } });
  const first = await call(`${g.url}/a`, as('acme'));
  assert.equal(first.status, 200);
  assert.equal(first.headers['ratelimit-policy'], '"1m";q=2;w=60');
  assert.equal((await call(`${g.url}/b`, as('acme'))).status, 200);
  assert.equal((await call(`${g.url}/a`, as('acme'))).status, 429, 'the plan tier is one budget across routes');
  assert.equal((await call(`${g.url}/a`, as('bob'))).status, 200, 'per consumer');
  assert.equal((await call(`${g.url}/a`, as('vip'))).headers['ratelimit-policy'], '"1m";q=100;w=60');
  // override: same (by, unit, window) as the plan's tier → that route's own 5/min bucket
  for (let i = 0; i < 5; i++) assert.equal((await call(`${g.url}/wide`, as('acme'))).status, 200, `wide #${i}`);
  assert.equal((await call(`${g.url}/wide`, as('acme'))).status, 429);
  // addition: the plan tier still applies next to the route's own
  const ex = await call(`${g.url}/extra`, as('bob'));
  assert.equal(ex.status, 200);
  assert.equal(ex.headers['ratelimit-policy'], '"1m";q=2;w=60, "1h";q=1;w=3600');
  assert.equal((await call(`${g.url}/extra`, as('vip'))).status, 429, 'by: route is shared by every consumer');
  assert.equal((await call(`${g.url}/open`)).headers['ratelimit'], undefined, 'a public route without rules has no limit');
  const status = g.gw.metrics.registry.getSingleMetric('gatehouse_rate_limited_total');
  assert.ok(status, 'rejections are counted');
});

test('configs that could never work do not load', async () => {
  const base = (routeExtra: string) => `
upstreams:
  chat: { targets: [ "http://127.0.0.1:1" ] }
routes:
  - { name: r, match: { path: /r }, upstream: chat, auth: public, ${routeExtra} }
`;
  await assert.rejects(startGateway(base('rateLimit: [ { limit: 5, window: 1m, by: ip, cost: 6 } ]')), /cost 6 is larger than the limit 5/);
  await assert.rejects(startGateway(base('rateLimit: [ { limit: 5, window: 1m } ]')), /no consumer to key on/);
  await assert.rejects(startGateway(base('websocket: true, quota: {}')), /not available on WebSocket routes/);
});
