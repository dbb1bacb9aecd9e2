// GET /admin/events (the dashboard's live feed), the dashboard's static files and the admin listener's origin check,
// over real sockets; the percentile arithmetic on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { quantile, TrafficWindow } from '../../src/admin/traffic.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { DASHBOARD_CSP } from '../../src/admin/dashboard.ts';
import { startGateway, call, eventually } from '../helpers.ts';

/** Reads `event: snapshot` payloads off an open stream as they arrive. */
async function subscribe(url: string, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  const r = await request(url, { headers, signal: ac.signal });
  const snapshots: Array<Record<string, any>> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const raw: string[] = [];
  const arrivals: number[] = [];
  let buf = '';
  const done = (async () => {
    try {
      for await (const chunk of r.body) {
        buf += String(chunk);
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: (.*)$/m.exec(block);
          if (/^event: snapshot$/m.test(block) && data) { raw.push(data[1]); arrivals.push(Date.now()); snapshots.push(JSON.parse(data[1])); }
        }
      }
    } catch { /* aborted */ }
  })();
  return { status: r.statusCode, headers: r.headers, snapshots, raw, arrivals, close: async () => { ac.abort(); await done; } };
}

test('GET /admin/events: one snapshot a second, the same bytes for every subscriber, one at once after an admin change; the token guards it', async (t) => {
  const blue = await startDemoServer({ name: 'blue' });
  const green = await startDemoServer({ name: 'green' });
  const g = await startGateway(`
admin: { token: events-h15a-token }
upstreams:
  chat: { balance: weighted, targets: [ { url: ${blue.url}, weight: 100 }, { url: ${green.url}, weight: 0 } ] }
routes:
  - { name: chat, match: { path: /chat }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); await blue.close(); await green.close(); });
  const auth = { authorization: 'Bearer events-h15a-token' };

  const refused = await call(`${g.adminUrl}/admin/events`);
  assert.equal(refused.status, 401);

  const a = await subscribe(`${g.adminUrl}/admin/events`, auth);
  const b = await subscribe(`${g.adminUrl}/admin/events`, auth);
  t.after(async () => { await a.close(); await b.close(); });
  assert.equal(a.status, 200);
  assert.match(String(a.headers['content-type']), /^text\/event-stream/);
  await eventually(() => a.snapshots.length >= 3 && b.snapshots.length >= 3, 6000);
  // Computed once, sent to both: b joined after a, so match by the snapshot's time.
  const shared = b.raw.filter((x) => a.raw.includes(x));
  assert.ok(shared.length >= 2, `the same snapshots reach both subscribers (${shared.length} shared)`);
  const s = a.snapshots[a.snapshots.length - 1];
  assert.deepEqual(s.routes.map((r: { name: string }) => r.name), ['chat']);
  assert.deepEqual(s.upstreams[0].targets.map((x: { weight: number }) => x.weight), [100, 0]);
  assert.equal(s.generation.id, 1);

  // Traffic: rate, percentiles and 4xx from the metrics the request path already keeps.
  for (let i = 0; i < 10; i++) await call(`${g.url}/chat`);
  await call(`${g.url}/missing`);
  await eventually(() => {
    const last = a.snapshots[a.snapshots.length - 1];
    const chat = last.traffic.routes.find((r: { route: string }) => r.route === 'chat');
    const none = last.traffic.routes.find((r: { route: string }) => r.route === 'none');
    return chat?.window.requests === 10 && chat.p99Ms > 0 && chat.rps > 0 && none?.window.status4xx === 1;
  }, 5000);

  // An admin change is pushed at once, not at the next tick: three changes in quick succession bring three
  // snapshots (each with its weights), where the once-a-second tick alone would bring at most one or two.
  const start = Date.now();
  for (const weights of [[0, 100], [50, 50], [10, 90]]) {
    const seen = a.snapshots.length;
    const w = await call(`${g.adminUrl}/admin/upstreams/chat/weights`, { method: 'POST', headers: auth, body: JSON.stringify({ weights }) });
    assert.equal(w.status, 200);
    await eventually(() => a.snapshots.slice(seen).some((x) => x.upstreams[0].targets[1].weight === weights[1]), 3000);
  }
  const elapsed = Date.now() - start;
  const during = a.arrivals.filter((x) => x >= start).length;
  assert.ok(during >= 3 && during > Math.floor(elapsed / 1000) + 1, `${during} snapshots in ${elapsed} ms`);
  assert.ok(!a.raw.join('').includes('events-h15a-token'), 'the token is in no snapshot');
});

test('the dashboard page and assets: served without the token, with the strict CSP; nothing else is served under /ui/', async (t) => {
  const g = await startGateway(`
admin: { token: page-h15a-token }
upstreams:
  api: { targets: [ http://127.0.0.1:9 ] }
routes:
  - { match: { path: /x }, upstream: api, auth: public }
`);
  t.after(() => g.close());
  const page = await call(`${g.adminUrl}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-security-policy'], DASHBOARD_CSP);
  assert.match(page.text, /<meta name="gatehouse-auth" content="token">/);
  assert.ok(!page.text.includes('page-h15a-token'));
  assert.ok(!/<script>|<style>| style=| on[a-z]+=/i.test(page.text), 'no inline script, style or handler');
  for (const [file, type] of [['app.js', /^text\/javascript/], ['app.css', /^text\/css/], ['icon.svg', /^image\/svg\+xml/]] as const) {
    const r = await call(`${g.adminUrl}/ui/${file}`);
    assert.equal(r.status, 200, file);
    assert.match(String(r.headers['content-type']), type);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
  const total = (await Promise.all(['/', '/ui/app.js', '/ui/app.css', '/ui/icon.svg'].map((p) => call(`${g.adminUrl}${p}`)))).reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  assert.ok(total < 60_000, `the whole dashboard is ${total} bytes`);
  for (const p of ['/ui/index.html', '/ui/..%2fserver.ts', '/ui/%2e%2e%2fhttp.ts', '/ui/server.ts']) {
    assert.equal((await call(`${g.adminUrl}${p}`)).status, 404, p);
  }
  // Dot segments are resolved before routing: this is /admin/server.ts, an admin path (token first).
  assert.equal((await call(`${g.adminUrl}/ui/../admin/server.ts`)).status, 401);
  // Without a token the page says so, and the main listener's `/` is not the dashboard.
  const open = await startGateway('upstreams: { api: { targets: [ http://127.0.0.1:9 ] } }\nroutes: [ { match: { path: /x }, upstream: api, auth: public } ]');
  t.after(() => open.close());
  assert.match((await call(`${open.adminUrl}/`)).text, /content="none"/);
  assert.equal((await call(`${open.url}/`)).status, 404);
});

test('the admin listener refuses requests a browser sends from a page of another origin; same-origin and tool requests pass', async (t) => {
  const g = await startGateway(`
upstreams:
  svc: { balance: weighted, targets: [ { url: http://127.0.0.1:9, weight: 100 }, { url: http://127.0.0.1:10, weight: 0 } ] }
routes:
  - { match: { path: /x }, upstream: svc, auth: public }
`);
  t.after(() => g.close());
  const host = new URL(g.adminUrl).host;
  const post = (headers: Record<string, string>) => call(`${g.adminUrl}/admin/upstreams/svc/weights`, { method: 'POST', headers, body: '{"weights":[0,100]}' });
  const evil = await post({ origin: 'https://evil.example', 'content-type': 'text/plain' });
  assert.equal(evil.status, 403);
  assert.equal(evil.json().code, 'forbidden');
  assert.equal((await post({ origin: 'null' })).status, 403);
  assert.equal((await call(`${g.adminUrl}/admin/config`, { headers: { origin: 'http://localhost:1' } })).status, 403);
  const weights = async () => (await call(`${g.adminUrl}/admin/upstreams/svc`)).json().targets.map((x: { weight: number }) => x.weight);
  assert.deepEqual(await weights(), [100, 0], 'nothing changed');
  assert.equal((await post({ origin: `http://${host}` })).status, 200, 'the dashboard itself (same origin)');
  assert.equal((await post({ origin: 'https://gw.example', 'x-forwarded-host': 'gw.example' })).status, 200, 'behind a proxy that rewrites Host');
  assert.equal((await post({})).status, 200, 'curl sends no Origin');
  assert.equal((await call(`${g.adminUrl}/healthz`, { headers: { origin: 'https://evil.example' } })).status, 200, 'health probes are not affected');
});

test('quantile: linear inside the bucket that holds the rank, the last finite bound past it', () => {
  const bounds = [0.01, 0.1, 1, Infinity];
  assert.ok(Math.abs(quantile(0.5, bounds, [0, 10, 10, 10]) - 0.055) < 1e-9);
  assert.equal(quantile(0.5, bounds, [10, 10, 10, 10]), 0.005);
  assert.ok(Math.abs(quantile(0.99, bounds, [0, 90, 100, 100]) - 0.91) < 1e-9);
  assert.equal(quantile(0.99, bounds, [0, 0, 0, 5]), 1);
  assert.ok(Number.isNaN(quantile(0.5, bounds, [0, 0, 0, 0])));
});

test('TrafficWindow: rate, percentiles and 4xx over the window from cumulative metrics; memory bounded however often it samples', async () => {
  const m = new Metrics({ defaultMetrics: false });
  const w = new TrafficWindow(m.registry, 10_000);
  m.observeRequest('chat', 'GET', 200, 0.02);
  const first = await w.sample(0);
  assert.equal(first[0].window.requests, 0, 'the first sample has nothing to compare with');
  assert.equal(first[0].total.requests, 1);
  for (let i = 0; i < 9; i++) m.observeRequest('chat', 'GET', 200, 0.02);
  m.observeRequest('chat', 'GET', 404, 0.002);
  const [r] = await w.sample(2000);
  assert.deepEqual([r.route, r.window.requests, r.window.status4xx, r.rps], ['chat', 10, 1, 5]);
  assert.ok(r.p50Ms! > 10 && r.p50Ms! <= 25, `p50 ${r.p50Ms} in the 10-25 ms bucket`);
  assert.ok(r.p99Ms! > 10 && r.p99Ms! <= 25, `p99 ${r.p99Ms}`);
  // An admin-change storm: a snapshot every 2 ms for 20 s keeps at most ~2 samples a second of window.
  for (let t = 2002; t < 22_000; t += 2) await w.sample(t);
  const kept = (w as unknown as { samples: unknown[] }).samples.length;
  assert.ok(kept <= 22, `${kept} samples kept`);
  const [late] = await w.sample(22_000);
  assert.equal(late.window.requests, 0, 'nothing in the last 10 s');
  assert.equal(late.total.requests, 11);
});
