import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import WebSocket from 'ws';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { metric } from '../upstreams/faulty-upstream.ts';

async function admin(g: TestGateway, method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await request(`${g.adminUrl}${path}`, { method: method as 'GET', headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.statusCode, body: (await r.body.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

test('GET /admin/upstreams shows targets, weights, health, circuit state, in-flight and ejections; GET /admin/upstreams/:name one of them', async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  const g = await startGateway(`
upstreams:
  chat:
    balance: weighted
    targets: [ { url: ${blue.url}, weight: 100 }, { url: ${green.url}, weight: 0 } ]
    health: { path: /health, interval: 50ms, timeout: 1s }
    circuitBreaker: { failures: 5, resetAfter: 10s }
    passiveHealth: { failures: 3 }
    retry: { attempts: 1, budget: 10% }
    fallback: other
    critical: false
  other: { targets: [ ${green.url}/api ] }
routes:
  - { match: { path: /v1/slow }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); await blue.close(); await green.close(); });
  await eventually(async () => (await admin(g, 'GET', '/admin/upstreams/chat')).body.targets.every((x: { health: { checks: number } }) => x.health.checks > 0), 3000);

  const slow = request(`${g.url}/v1/slow?ms=1200`);
  await eventually(async () => (await admin(g, 'GET', '/admin/upstreams/chat')).body.targets[0].inflight === 1, 2000);
  const list = await admin(g, 'GET', '/admin/upstreams');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.map((u: { name: string }) => u.name), ['chat', 'other']);
  const chat = list.body[0];
  assert.equal(chat.balance, 'weighted');
  assert.equal(chat.status, 'healthy');
  assert.equal(chat.critical, false);
  assert.deepEqual(chat.fallback, ['other']);
  assert.equal(chat.circuit.state, 'closed');
  assert.deepEqual([chat.retry.attempts, chat.retry.budget], [1, '10%']);
  assert.deepEqual(chat.targets[0], {
    ...chat.targets[0], index: 0, url: blue.url, weight: 100, role: 'serving', state: 'up', inflight: 1,
    passive: { ejected: false, ejectedUntil: null, ejections: 0, consecutiveFailures: 0 },
  });
  assert.equal(chat.targets[0].health.healthy, true);
  assert.equal(chat.targets[0].health.lastStatus, 200);
  assert.equal(chat.targets[0].circuit.state, 'closed');
  assert.deepEqual([chat.targets[1].role, chat.targets[1].weight], ['standby', 0]);
  assert.equal(list.body[1].targets[0].url, `${green.url}/api`, 'the base path is part of a target');
  assert.equal((await (await slow).body.json() as { slept: number }).slept, 1200);
  assert.equal((await admin(g, 'GET', '/admin/upstreams/nope')).status, 404);
});

test('POST /admin/upstreams/:name/weights: by URL or by index; bad input is refused with a reason; the token protects it', async (t) => {
  const a = await startDemoServer({ name: 'a' });
  const b = await startDemoServer({ name: 'b' });
  const g = await startGateway(`
admin: { token: s3cret-admin-token }
upstreams:
  svc: { balance: weighted, targets: [ { url: ${a.url}, weight: 100 }, { url: ${b.url}, weight: 0 } ] }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(async () => { await g.close(); await a.close(); await b.close(); });
  const tok = 's3cret-admin-token';
  assert.equal((await admin(g, 'POST', '/admin/upstreams/svc/weights', { weights: [0, 100] })).status, 401);
  assert.equal((await admin(g, 'POST', '/admin/upstreams/svc/weights', { weights: [0, 100] }, 'wrong')).status, 401);

  const byIndex = await admin(g, 'POST', '/admin/upstreams/svc/weights', { weights: [0, 100] }, tok);
  assert.equal(byIndex.status, 200);
  assert.deepEqual(byIndex.body.targets.map((x: { weight: number }) => x.weight), [0, 100]);
  const byUrl = await admin(g, 'POST', '/admin/upstreams/svc/weights', { weights: { [`${a.url}/`]: 30 } }, tok);
  assert.deepEqual(byUrl.body.targets.map((x: { weight: number }) => x.weight), [30, 100], 'unnamed targets keep their weight');

  const bad = async (body: unknown, status: number, re: RegExp) => {
    const r = await admin(g, 'POST', '/admin/upstreams/svc/weights', body, tok);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match(r.body.detail, re);
  };
  await bad({ weights: { 'http://127.0.0.1:1': 5 } }, 400, /Unknown target "http:\/\/127\.0\.0\.1:1"; known: /);
  await bad({ weights: [1] }, 400, /one weight per target \(2\)/);
  await bad({ weights: [1, -1] }, 400, /weights\[1\] must be an integer/);
  await bad({ weights: [1.5, 1] }, 400, /integer/);
  await bad({ nope: 1 }, 400, /Expected/);
  await bad('{not json', 400, /not valid JSON/);
  await bad({ weights: [0, 0] }, 409, /nothing could serve/);
  assert.equal((await admin(g, 'POST', '/admin/upstreams/zzz/weights', { weights: [1] }, tok)).status, 404);
  assert.deepEqual((await admin(g, 'GET', '/admin/upstreams/svc', undefined, tok)).body.targets.map((x: { weight: number }) => x.weight), [30, 100], 'refused changes change nothing');

  const m = await (await request(`${g.adminUrl}/metrics`, { headers: { authorization: `Bearer ${tok}` } })).body.text();
  assert.equal(metric(m, 'gatehouse_upstream_target_weight', { upstream: 'svc', target: b.url }), 100);
  assert.ok(g.logs.some((l) => l.msg === 'upstream weights changed' && l.upstream === 'svc'));
  assert.ok(!g.rawLogs().includes(tok), 'the admin token never reaches a log line');
});

test('blue-green switch through the admin API under continuous load: zero failed requests, in-flight requests finish on blue, new ones go to green', async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  const g = await startGateway(`
upstreams:
  chat: { balance: weighted, targets: [ { url: ${blue.url}, weight: 100 }, { url: ${green.url}, weight: 0 } ] }
routes:
  - { match: { path: /v1, prefix: true }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); await blue.close(); await green.close(); });

  const seen: Array<{ at: number; service: string }> = [];
  const failures: string[] = [];
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const at = performance.now();
      try {
        const r = await request(`${g.url}/v1/echo`);
        const body = (await r.body.json()) as { service: string };
        if (r.statusCode !== 200) failures.push(`status ${r.statusCode}`);
        seen.push({ at, service: body.service });
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  await new Promise((r) => setTimeout(r, 300));
  const inflight = request(`${g.url}/v1/slow?ms=400`); // on blue when the switch happens
  await new Promise((r) => setTimeout(r, 100));
  const switched = await admin(g, 'POST', '/admin/upstreams/chat/weights', { weights: { [blue.url]: 0, [green.url]: 100 } });
  const switchedAt = performance.now();
  assert.equal(switched.status, 200);
  await new Promise((r) => setTimeout(r, 500));
  const backSentAt = performance.now();
  const back = await admin(g, 'POST', '/admin/upstreams/chat/weights', { weights: [100, 0] });
  const backAt = performance.now();
  assert.equal(back.status, 200);
  await new Promise((r) => setTimeout(r, 500));
  stop = true;
  await Promise.all(workers);
  const slow = await inflight;
  assert.equal(slow.statusCode, 200, 'the request in flight on blue during the switch completed');
  await slow.body.dump();

  assert.deepEqual(failures, [], 'no client saw a failure');
  assert.ok(seen.length > 30, `load kept flowing (${seen.length} requests)`);
  // requests sent after the switch's answer and before the switch back was sent
  const between = seen.filter((s) => s.at > switchedAt && s.at < backSentAt);
  const after = seen.filter((s) => s.at > backAt);
  assert.ok(between.length > 3 && between.every((s) => s.service === 'green'), 'requests sent after the switch all went to green');
  assert.ok(after.length > 3 && after.every((s) => s.service === 'blue'), 'and after switching back, to blue');
  t.diagnostic(`blue-green: ${seen.length} requests, ${failures.length} failures; ${between.length} on green between the switches`);
});

test('a WebSocket tunnel opened before a blue-green switch keeps working; new tunnels go to the new colour', async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  const g = await startGateway(`
upstreams:
  rt: { balance: weighted, targets: [ { url: ${blue.url}, weight: 100 }, { url: ${green.url}, weight: 0 } ] }
routes:
  - { match: { path: /ws/echo }, upstream: rt, auth: public, websocket: true }
`);
  t.after(async () => { await g.close(); await blue.close(); await green.close(); });
  const open = (url: string) => new Promise<{ ws: WebSocket; hello: { hello: string } }>((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', (d) => resolve({ ws, hello: JSON.parse(String(d)) }));
    ws.once('error', reject);
  });
  const echo = (ws: WebSocket, msg: string) => new Promise<string>((resolve) => { ws.once('message', (d) => resolve(String(d))); ws.send(msg); });
  const wsUrl = g.url.replace('http', 'ws') + '/ws/echo';
  const first = await open(wsUrl);
  assert.equal(first.hello.hello, 'blue');
  assert.equal((await admin(g, 'POST', '/admin/upstreams/rt/weights', { weights: [0, 100] })).status, 200);
  assert.equal(await echo(first.ws, 'still there?'), 'still there?');
  const second = await open(wsUrl);
  assert.equal(second.hello.hello, 'green');
  first.ws.close();
  second.ws.close();
});

test('GET /admin/config masks secrets: admin token, JWT and captcha secrets, key hashes, credentials in URLs', async (t) => {
  const g = await startGateway(`
admin: { token: adm1n-t0ken-value }
state: { store: memory, redis: { url: "redis://user:r3dis-pass@127.0.0.1:6379" } }
auth:
  jwt: [ { name: main, secret: jwt-hs256-secret-value-that-is-long-enough, algorithms: [HS256] } ]
consumers: [ { id: acme, keys: ["sha256:${'a'.repeat(64)}"] } ]
captcha:
  login: { provider: turnstile, secret: capt-secret-value }
upstreams:
  svc: { targets: [ "http://svcuser:svc-pass@127.0.0.1:9" ] }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(() => g.close());
  const r = await request(`${g.adminUrl}/admin/config`, { headers: { authorization: 'Bearer adm1n-t0ken-value' } });
  assert.equal(r.statusCode, 200);
  const text = await r.body.text();
  for (const secret of ['adm1n-t0ken-value', 'r3dis-pass', 'jwt-hs256-secret', 'capt-secret-value', 'a'.repeat(64), 'svc-pass']) assert.ok(!text.includes(secret), `${secret} is masked`);
  const body = JSON.parse(text);
  assert.equal(body.generation, 1);
  assert.match(body.hash, /^[0-9a-f]{16}$/);
  assert.ok(!Number.isNaN(Date.parse(body.loadedAt)));
  const cfg = body.config;
  assert.equal(cfg.admin.token, '***');
  assert.equal(cfg.state.redis.url, 'redis://user:***@127.0.0.1:6379');
  assert.equal(cfg.upstreams.svc.targets[0].url, 'http://svcuser:***@127.0.0.1:9');
  const ups = await (await request(`${g.adminUrl}/admin/upstreams`, { headers: { authorization: 'Bearer adm1n-t0ken-value' } })).body.text();
  assert.ok(!ups.includes('svc-pass') && !ups.includes('svcuser'), 'the upstream view shows origins, never credentials');
});
