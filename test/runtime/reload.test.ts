// Hot reload over real sockets: a new generation is compiled beside the live one and swapped in; requests, SSE
// streams and WebSocket tunnels finish on the generation they started on; a bad file changes nothing; upstream
// state (health, circuits, weights) and policy caches survive reloads that leave them alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import WebSocket from 'ws';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, call } from '../helpers.ts';
import { startFaulty } from '../upstreams/faulty-upstream.ts';
import { deadPort } from '../support/raw-http.ts';

const routesA = (up: string) => `
upstreams:
  svc: { targets: [ ${up} ], timeout: 30s }
routes:
  - { name: echo, match: { path: /echo, prefix: true }, upstream: svc, auth: public }
  - { name: stream, match: { path: /v1/chat/stream, methods: [GET] }, upstream: svc, auth: public }
  - { name: ws, match: { path: /ws }, upstream: svc, auth: public, websocket: true }
`;
// B rebuilds the upstream (another timeout): its pool is replaced, and the old one drains with generation A.
const routesB = (up: string) => routesA(up).replace('timeout: 30s', 'timeout: 31s') + `  - { name: extra, match: { path: /extra }, upstream: svc, auth: public, rewrite: { path: /echo/extra } }\n`;

/** Reads an SSE response to its end: the data lines, and whether it ended cleanly. */
async function readSse(url: string): Promise<{ status: number; events: string[] }> {
  const r = await request(url);
  const events: string[] = [];
  let buf = '';
  for await (const chunk of r.body) {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) { events.push(buf.slice(0, i)); buf = buf.slice(i + 2); }
  }
  return { status: r.statusCode, events };
}

test('reload under continuous load: one reload a second for 10 s, alternating two configs, 0 failed requests; an SSE stream and a WebSocket opened before the first reload finish normally', async (t) => {
  const up = await startDemoServer({ name: 'svc' });
  const g = await startGateway(routesA(up.url));
  t.after(async () => { await g.close(); await up.close(); });

  // Opened before the first reload, both outlive all ten of them.
  const sse = readSse(`${g.url}/v1/chat/stream?n=22&delay=500`);
  const ws = new WebSocket(`ws://127.0.0.1:${g.port}/ws`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const echoes: string[] = [];
  ws.on('message', (m) => echoes.push(String(m)));
  let sent = 0;
  const pinger = setInterval(() => { ws.send(`ping-${sent++}`); }, 250);

  let stop = false;
  const failures: string[] = [];
  let ok = 0;
  const loop = async (id: number) => {
    while (!stop) {
      try {
        const r = await request(`${g.url}/echo/${id}`);
        await r.body.text();
        if (r.statusCode === 200) ok++;
        else failures.push(`status ${r.statusCode}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const loops = Array.from({ length: 4 }, (_, i) => loop(i));
  const results = [];
  for (let i = 1; i <= 10; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    results.push(g.reload(i % 2 === 1 ? routesB(up.url) : routesA(up.url)));
  }
  stop = true;
  await Promise.all(loops);
  clearInterval(pinger);

  assert.deepEqual(results.map((r) => r.ok), Array(10).fill(true), JSON.stringify(results.filter((r) => !r.ok)));
  assert.equal(g.gw.current.id, 11);
  assert.deepEqual(failures, [], `${failures.length} failed of ${ok + failures.length}`);
  assert.ok(ok > 200, `only ${ok} requests went through`);
  t.diagnostic(`${ok} requests during 10 reloads, 0 failed; reload took ${results.map((r) => r.durationMs).join(', ')} ms`);

  const stream = await sse;
  assert.equal(stream.status, 200);
  assert.equal(stream.events.length, 24, 'all 22 tokens, the usage event and [DONE]');
  assert.equal(stream.events.at(-1), 'data: [DONE]');
  await eventually(() => echoes.length === sent, 2000);
  assert.deepEqual(echoes, Array.from({ length: sent }, (_, i) => `ping-${i}`));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000);
  assert.equal(await closed, 1000);
  // The pools of the nine replaced upstreams were closed once their last exchange ended; only the live one remains.
  assert.equal(g.gw.current.upstreams.get('svc')!.closed, false);
});

test('a route added by a reload serves at once; a removed route answers 404 to new requests while a stream already on it completes', async (t) => {
  const up = await startDemoServer({ name: 'svc' });
  const g = await startGateway(routesA(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  assert.equal((await call(`${g.url}/extra`)).status, 404);

  const added = g.reload(routesB(up.url));
  assert.equal(added.ok, true);
  // The diff compares effective settings: the routes on svc inherit its new timeout, so they changed too.
  assert.deepEqual(added.changes!.routes, { added: ['extra'], removed: [], changed: ['echo', 'stream', 'ws'] });
  assert.deepEqual(added.changes!.upstreams, { added: [], removed: [], changed: ['svc'] });
  assert.notEqual(added.hash, added.previousHash);
  const extra = await call(`${g.url}/extra`);
  assert.equal(extra.status, 200);
  assert.equal(extra.json().path, '/echo/extra');

  const inflight = readSse(`${g.url}/v1/chat/stream?n=10&delay=100`);
  await new Promise((r) => setTimeout(r, 150));
  const removed = g.reload(routesB(up.url).replace(/ {2}- \{ name: stream,.*\n/, ''));
  assert.equal(removed.ok, true);
  assert.deepEqual(removed.changes!.routes.removed, ['stream']);
  const fresh = await call(`${g.url}/v1/chat/stream?n=1`);
  assert.equal(fresh.status, 404);
  assert.equal(fresh.json().code, 'not_found');
  const stream = await inflight;
  assert.equal(stream.events.length, 12, 'the stream that started on the removed route ran to its end');
  assert.equal(stream.events.at(-1), 'data: [DONE]');
});

test('an invalid file leaves the old config serving and reports every problem with its position (reload(), POST /admin/reload, metrics)', async (t) => {
  const up = await startDemoServer({ name: 'svc' });
  const g = await startGateway(routesA(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  const bad = routesA(up.url)
    .replace('{ name: echo, match: { path: /echo, prefix: true }', '{ name: echo, match: { path: /echo, prefx: true }')
    .replace('upstream: svc, auth: public, websocket', 'upstream: scv, auth: public, websocket');

  const r = g.reload(bad);
  assert.equal(r.ok, false);
  assert.equal(r.generation, 1);
  assert.equal(r.problems!.length, 2, r.problems!.join('\n'));
  assert.match(r.problems![0], /^test\.yaml:\d+:\d+ routes\[0\]\.match\.prefx: unknown key "prefx" \(did you mean "prefix"\?\)/);
  assert.match(r.problems![1], /^test\.yaml:\d+:\d+ routes\[2\]\.upstream: unknown upstream "scv" \(did you mean "svc"\?\)/);
  assert.equal((await call(`${g.url}/echo/still`)).status, 200);
  assert.equal(g.gw.current.id, 1);

  // The admin API reads the same file the runtime was started with: 422 problem+json, every problem listed.
  const viaAdmin = await call(`${g.adminUrl}/admin/reload`, { method: 'POST' });
  assert.equal(viaAdmin.status, 422);
  assert.equal(viaAdmin.headers['content-type'], 'application/problem+json');
  const p = viaAdmin.json();
  assert.equal(p.code, 'config_invalid');
  assert.equal(p.problems.length, 2);
  assert.match(p.requestId, /\S/);
  assert.equal(p.generation, 1);

  const metrics = await call(`${g.adminUrl}/metrics`);
  assert.match(metrics.text, /gatehouse_config_reloads_total\{result="failure"\} 2/);
  assert.match(metrics.text, /gatehouse_config_generation 1/);
  const failedLine = g.logs.find((l) => l.msg === 'config reload refused; the running config keeps serving');
  assert.ok(failedLine && Array.isArray(failedLine.problems) && (failedLine.problems as string[]).length === 2);

  // Fixed again: the admin reload succeeds and says what changed.
  g.setConfig(routesB(up.url));
  const good = await call(`${g.adminUrl}/admin/reload`, { method: 'POST' });
  assert.equal(good.status, 200);
  const body = good.json();
  assert.equal(body.ok, true);
  assert.equal(body.generation, 2);
  assert.deepEqual(body.changes.routes.added, ['extra']);
  const cfg = (await call(`${g.adminUrl}/admin/config`)).json();
  assert.equal(cfg.generation, 2);
  assert.equal(cfg.hash, body.hash);
  assert.match((await call(`${g.adminUrl}/metrics`)).text, /gatehouse_config_reloads_total\{result="success"\} 1/);
});

test('health and circuit state survive a reload that leaves their upstream alone; a changed upstream adopts them per target', async (t) => {
  const sick = await startFaulty('sick');
  sick.healthMode = 'fail';
  const dead = await deadPort();
  const ok = await startDemoServer({ name: 'ok' });
  const yaml = (extraTimeout = '') => `
upstreams:
  sick: { targets: [ ${sick.url} ], health: { path: /health, interval: 100ms, timeout: 300ms, unhealthyThreshold: 1 } }
  flaky: { targets: [ http://127.0.0.1:${dead} ], circuitBreaker: { failures: 2, resetAfter: 60s }${extraTimeout} }
  ok: { targets: [ ${ok.url} ] }
routes:
  - { name: sick, match: { path: /sick }, upstream: sick, auth: public }
  - { name: flaky, match: { path: /flaky }, upstream: flaky, auth: public }
  - { name: ok, match: { path: /ok }, upstream: ok, auth: public }
`;
  const g = await startGateway(yaml());
  t.after(async () => { await g.close(); await sick.close(); await ok.close(); });

  await eventually(() => g.gw.current.upstreams.get('sick')!.targets[0].healthy === false, 3000);
  for (let i = 0; i < 2; i++) assert.equal((await call(`${g.url}/flaky`)).status, 502);
  assert.equal((await call(`${g.url}/flaky`)).json().code, 'circuit_open');
  const sickBefore = g.gw.current.upstreams.get('sick')!;
  const checksBefore = sick.healthCalls;

  // An unrelated change: both upstreams are the same objects, their state untouched and no re-probe needed.
  const r1 = g.reload(yaml().replace('{ name: ok, match: { path: /ok }', '{ name: ok, match: { path: /okay }'));
  assert.equal(r1.ok, true);
  assert.equal(g.gw.current.upstreams.get('sick'), sickBefore);
  assert.equal(sickBefore.targets[0].healthy, false);
  assert.equal((await call(`${g.url}/sick`)).status, 503);
  assert.equal((await call(`${g.url}/flaky`)).json().code, 'circuit_open');
  assert.ok(sick.healthCalls - checksBefore <= 2, 'the health checker kept its schedule (no burst of new probes)');

  // The flaky upstream changed (a timeout): a new upstream object, which adopts its target's open circuit.
  const r2 = g.reload(yaml(', timeout: 5s'));
  assert.deepEqual(r2.changes!.upstreams.changed, ['flaky']);
  const flaky = await call(`${g.url}/flaky`);
  assert.equal(flaky.status, 503);
  assert.equal(flaky.json().code, 'circuit_open');
  assert.match(String(flaky.headers['retry-after']), /^\d+$/);
  assert.equal(g.gw.current.upstreams.get('sick')!.targets[0].healthy, false);
});

test('a weight set through the admin API survives a reload unless the file changes that weight', async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  const yaml = (greenWeight: number, timeout: string) => `
upstreams:
  app: { targets: [ { url: "${blue.url}", weight: 100 }, { url: "${green.url}", weight: ${greenWeight} } ], balance: weighted, timeout: ${timeout} }
routes: [ { name: app, match: { path: /app }, upstream: app, auth: public } ]
`;
  const g = await startGateway(yaml(0, '10s'));
  t.after(async () => { await g.close(); await blue.close(); await green.close(); });
  const set = await call(`${g.adminUrl}/admin/upstreams/app/weights`, { method: 'POST', body: JSON.stringify({ weights: [0, 100] }) });
  assert.equal(set.status, 200);
  g.reload(yaml(0, '11s')); // the upstream is rebuilt; the configured weights are as before
  assert.deepEqual(g.gw.current.upstreams.get('app')!.targets.map((x) => x.weight), [0, 100]);
  assert.equal((await call(`${g.url}/app`)).json().service, 'green');
  g.reload(yaml(50, '11s')); // the file now says something about green: the file wins for that target
  assert.deepEqual(g.gw.current.upstreams.get('app')!.targets.map((x) => x.weight), [0, 50]);
});

test("a JWKS provider's key cache survives a reload that leaves the provider as it was, and is replaced when it changes", async (t) => {
  const { keyPair, publicJwk, sign, startJwksServer } = await import('../auth/support.ts');
  const kp = keyPair('ec-256');
  const jwks = await startJwksServer([await publicJwk(kp, 'k1', 'ES256')], 'max-age=600');
  const up = await startDemoServer();
  const yaml = (route: string, cooldown = '30s') => `
auth: { jwt: [ { name: main, jwksUri: "${jwks.url}", algorithms: [ES256], jwksCache: { cooldown: ${cooldown} } } ] }
upstreams: { svc: { targets: [ ${up.url} ] } }
routes: [ { name: api, match: { path: ${route} }, upstream: svc, auth: jwt } ]
`;
  const g = await startGateway(yaml('/api'));
  t.after(async () => { await g.close(); await up.close(); await jwks.close(); });
  const get = async (path: string, sub: string) => (await call(`${g.url}${path}`, { headers: { authorization: `Bearer ${await sign(kp.privateKey, { alg: 'ES256', kid: 'k1', sub })}` } })).status;

  assert.equal(await get('/api', 'a'), 200);
  assert.equal(jwks.fetches, 1);
  assert.equal(g.reload(yaml('/v2/api')).ok, true);
  // A token never seen before is verified by the new generation with the keys the old one fetched.
  assert.equal(await get('/v2/api', 'b'), 200);
  assert.equal(jwks.fetches, 1, 'no refetch after a reload that left the provider alone');

  assert.equal(g.reload(yaml('/v2/api', '31s')).ok, true);
  assert.equal(await get('/v2/api', 'c'), 200);
  assert.equal(jwks.fetches, 2, 'a changed provider starts with a fresh cache');
});

test('the pool of a replaced upstream drains: it stays open while a stream that started on it runs, and closes when that stream ends', async (t) => {
  const up = await startDemoServer({ name: 'svc' });
  const g = await startGateway(routesA(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  const old = g.gw.current.upstreams.get('svc')!;
  const stream = readSse(`${g.url}/v1/chat/stream?n=8&delay=100`);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(g.reload(routesB(up.url)).ok, true);
  assert.notEqual(g.gw.current.upstreams.get('svc'), old);
  assert.equal(old.closed, false, 'still serving the stream');
  assert.equal((await call(`${g.url}/echo/new`)).status, 200);
  assert.equal((await stream).events.at(-1), 'data: [DONE]');
  await eventually(() => old.closed, 2000);
});
