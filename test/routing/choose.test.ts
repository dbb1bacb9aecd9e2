import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { startStub, multipart, sha256, type Stub, type StubEcho } from '../e2e/stubs.ts';

// Seed 000: two hard-coded project ids on /v2/get-response-3dchatbot go to the remote-physio
// service's /v2/get-response-physio with a longer timeout; everything else to the 3D service.
const PHYSIO = ['User-181473_Project_15', 'User-181473_Project_16'];

async function setup(t: { after(fn: () => Promise<void>): void }, opts: { peek?: string; physioTimeout?: string; plainTimeout?: string } = {}): Promise<{ g: TestGateway; physio: Stub; r3d: Stub; other: Stub }> {
  const [physio, r3d, other] = await Promise.all([startStub('remote-physio'), startStub('response-3d'), startStub('other')]);
  const g = await startGateway(`
server:
  limits: { bodyPeek: ${opts.peek ?? '64kb'} }
upstreams:
  remote-physio: { targets: [ "${physio.url}" ] }
  response-3d: { targets: [ "${r3d.url}" ] }
  other: { targets: [ "${other.url}" ] }
defaults: { auth: public }
routes:
  - name: response-3d
    match: { path: /v2/get-response-3dchatbot, methods: [POST] }
    upstream: response-3d
    timeout: ${opts.plainTimeout ?? '100s'}
  - name: response-3d-physio
    match:
      path: /v2/get-response-3dchatbot
      methods: [POST]
      body: { field: project_id, in: [${PHYSIO.join(', ')}] }
    upstream: remote-physio
    rewrite: { path: /v2/get-response-physio }
    timeout: ${opts.physioTimeout ?? '150s'}
  - name: response-3d-beta
    match:
      path: /v2/get-response-3dchatbot
      methods: [POST]
      headers: { x-beta: "1" }
      body: { field: meta.channel, prefix: beta- }
    upstream: other
  - name: plain
    match: { path: /v2/save-chat-history, methods: [POST] }
    upstream: other
`);
  t.after(async () => { await g.close(); await Promise.all([physio.close(), r3d.close(), other.close()]); });
  return { g, physio, r3d, other };
}

async function post(g: TestGateway, body: Buffer | string, contentType: string, headers: Record<string, string> = {}): Promise<{ status: number; echo: StubEcho }> {
  const r = await request(`${g.url}/v2/get-response-3dchatbot?lang=en`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  return { status: r.statusCode, echo: (await r.body.json()) as StubEcho };
}

const form = (o: Record<string, string>) => new URLSearchParams(o).toString();

test('physio projects go to remote-physio at /v2/get-response-physio, as JSON, urlencoded and multipart; the body arrives byte for byte', async (t) => {
  const { g } = await setup(t);
  const fields = { user_id: 'User_181473', project_id: PHYSIO[1], session_id: 's-1', question: 'My knee hurts when I climb stairs', originating_url: 'https://clinic.example/' };
  const json = JSON.stringify(fields);
  const url = form(fields);
  const mp = multipart(fields, [{ name: 'attachment', filename: 'scan.png', type: 'image/png', data: Buffer.alloc(3000, 7) }]);
  for (const [body, type] of [[json, 'application/json'], [url, 'application/x-www-form-urlencoded'], [mp.body, mp.contentType]] as const) {
    const { status, echo } = await post(g, body, type);
    assert.equal(status, 200, type);
    assert.equal(echo.service, 'remote-physio', type);
    assert.equal(echo.path, '/v2/get-response-physio', type);
    assert.equal(echo.query, 'lang=en', type);
    assert.equal(echo.contentType, type, type);
    assert.equal(echo.sha256, sha256(body), `${type}: body unchanged`);
    assert.equal(echo.bytes, Buffer.byteLength(body));
  }
});

test('every other project (and a body without the field) goes to the 3D service at its own path, unchanged', async (t) => {
  const { g } = await setup(t);
  const cases: Array<[string | Buffer, string]> = [
    [JSON.stringify({ project_id: 'User-12345_Project_1', question: 'refunds?' }), 'application/json'],
    [JSON.stringify({ project: { id: PHYSIO[0] } }), 'application/json'], // not the field the condition names
    [form({ project_id: 'User-181473_Project_150' }), 'application/x-www-form-urlencoded'], // near miss: `in` is exact
    [multipart({ project_id: 'User-1_Project_2' }).body, ''],
    ['project_id=User-181473_Project_15', 'text/plain'], // an encoding the condition does not parse
    ['{"project_id": "User-181473_Project_15"', 'application/json'], // malformed JSON
  ];
  for (const [body, typeIn] of cases) {
    const type = typeIn || multipart({}).contentType; // a boundary that does not match the body: unparseable
    const { status, echo } = await post(g, body, type);
    assert.equal(status, 200);
    assert.equal(echo.service, 'response-3d', String(body).slice(0, 60));
    assert.equal(echo.path, '/v2/get-response-3dchatbot');
    assert.equal(echo.sha256, sha256(body));
  }
  // A body-less POST cannot match a body condition.
  const r = await request(`${g.url}/v2/get-response-3dchatbot`, { method: 'POST' });
  assert.equal(((await r.body.json()) as StubEcho).service, 'response-3d');
});

test('header and body conditions combine; a JSON dot path reaches nested fields', async (t) => {
  const { g } = await setup(t);
  const body = JSON.stringify({ project_id: 'User-9_Project_1', meta: { channel: 'beta-widget' } });
  assert.equal((await post(g, body, 'application/json', { 'x-beta': '1' })).echo.service, 'other');
  assert.equal((await post(g, body, 'application/json')).echo.service, 'response-3d', 'header condition missing');
  assert.equal((await post(g, JSON.stringify({ meta: { channel: 'stable' } }), 'application/json', { 'x-beta': '1' })).echo.service, 'response-3d');
});

test('the chosen route brings its own timeout: physio waits longer than the plain route', async (t) => {
  // undici checks response timeouts on a ~0.5 s tick, so a 300 ms tier fires within about a second.
  const { g } = await setup(t, { physioTimeout: '6s', plainTimeout: '300ms' });
  const slow = { 'x-stub-sleep-ms': '2000' };
  const physio = await post(g, form({ project_id: PHYSIO[0] }), 'application/x-www-form-urlencoded', slow);
  assert.equal(physio.status, 200);
  assert.equal(physio.echo.service, 'remote-physio');
  const plain = await request(`${g.url}/v2/get-response-3dchatbot`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...slow }, body: form({ project_id: 'User-1_Project_1' }) });
  assert.equal(plain.statusCode, 504);
  assert.equal(((await plain.body.json()) as { code: string }).code, 'upstream_timeout');
});

test('bodies larger than the peek cap stream through intact; the condition sees only the first bytes', async (t) => {
  const { g } = await setup(t, { peek: '1kb' });
  const big = 'x'.repeat(200_000);
  // Field inside the first KiB: routed by it, and all 200 KB arrive.
  const early = form({ project_id: PHYSIO[0], notes: big });
  let r = await post(g, early, 'application/x-www-form-urlencoded');
  assert.equal(r.echo.service, 'remote-physio');
  assert.equal(r.echo.sha256, sha256(early));
  // Field past the cap: invisible to the condition, so the plain route; the body is still whole.
  const late = form({ notes: big, project_id: PHYSIO[0] });
  r = await post(g, late, 'application/x-www-form-urlencoded');
  assert.equal(r.echo.service, 'response-3d');
  assert.equal(r.echo.sha256, sha256(late));
  // JSON cut at the cap does not parse: plain route, body whole.
  const json = JSON.stringify({ project_id: PHYSIO[0], notes: big });
  r = await post(g, json, 'application/json');
  assert.equal(r.echo.service, 'response-3d');
  assert.equal(r.echo.sha256, sha256(json));
});

test('only routes with a body condition wait for the body: a plain route forwards before the body ends', async (t) => {
  const { g, physio, other } = await setup(t);
  // Plain route: the upstream sees the request while the client is still sending.
  const body1 = new PassThrough();
  const res1 = request(`${g.url}/v2/save-chat-history`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body1 });
  body1.write('session_id=s-1&');
  await eventually(() => other.seen.some((s) => s.path === '/v2/save-chat-history'), 3000);
  body1.end('input_prompt=hi');
  assert.equal((await res1).statusCode, 200);

  // Conditional path: nothing goes upstream until the field can be judged (here: the body ended).
  const body2 = new PassThrough();
  const res2 = request(`${g.url}/v2/get-response-3dchatbot`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body2 });
  body2.write(`project_id=${PHYSIO[1]}&`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(physio.seen.length, 0, 'the physio service must not see the request before the peek is decided');
  body2.end('question=hello');
  const done = await res2;
  const echo = (await done.body.json()) as StubEcho;
  assert.equal(echo.service, 'remote-physio');
  assert.equal(echo.sha256, sha256(`project_id=${PHYSIO[1]}&question=hello`));
});

test('a config without body conditions has no chooser at all', async (t) => {
  const up = await startStub('svc');
  const g = await startGateway(`
upstreams: { svc: { targets: [ "${up.url}" ] } }
routes: [ { name: r, match: { path: /x }, upstream: svc, auth: public } ]
`);
  t.after(async () => { await g.close(); await up.close(); });
  assert.equal(g.gw.current.choose, undefined);
});

test('a body condition on a WebSocket route is a config error', () => {
  assert.throws(() => loadConfigText(`
upstreams: { svc: { targets: [ "http://127.0.0.1:9" ] } }
routes: [ { name: ws, match: { path: /ws, body: { field: k, equals: v } }, upstream: svc, auth: public, websocket: true } ]
`, 'x.yaml', { env: {} }), /routes\[0\]\.match\.body.*WebSocket handshake has no body/s);
});
