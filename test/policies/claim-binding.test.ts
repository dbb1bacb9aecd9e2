// bind: over real sockets. A user_id that disagrees with the verified token is refused (403 naming the field, not
// its value) in JSON, urlencoded and multipart bodies, in the query and the path; inject mode sets it instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers.ts';
import { startStub, multipart, sha256, echoedFields, type Stub, type StubEcho } from '../e2e/stubs.ts';
import { hs256 } from '../e2e/harness.ts';
import { assertProblem } from '../support/problem.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

const SECRET = randomBytes(32).toString('base64url');
let stub: Stub;
let g: TestGateway;
let token: string;

before(async () => {
  stub = await startStub('svc');
  g = await startGateway(`
server: { limits: { bodyPeek: 4kb } }
auth: { jwt: [ { name: t, secret: "${SECRET}", algorithms: [HS256] } ] }
upstreams: { svc: { targets: [ "${stub.url}" ] } }
routes:
  - name: check
    match: { path: /check/:userId, methods: [POST, GET] }
    upstream: svc
    auth: jwt
    limits: { maxBodySize: 20mb }
    bind: { body.user_id: claim.sub, query.user_id: claim.sub, path.userId: claim.sub, body.profile.owner: claim.sub }
  - name: inject
    match: { path: /inject/:userId, methods: [POST, GET] }
    upstream: svc
    auth: jwt
    limits: { maxBodySize: 20mb }
    bind:
      body.user_id: { from: claim.sub, mode: inject }
      query.user_id: { from: claim.sub, mode: inject }
      path.userId: { from: claim.sub, mode: inject }
`);
  token = await hs256(SECRET, { sub: 'User_12345' });
});
after(async () => { await g?.close(); await stub?.close(); });

async function send(path: string, body?: string | Buffer, type?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'x-stub-keep-body': '1' };
  if (type) headers['content-type'] = type;
  const r = await request(`${g.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers, body });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

function bodies(fields: Record<string, string>): Array<[string, string | Buffer, string]> {
  const m = multipart(fields);
  return [
    ['json', JSON.stringify(fields), 'application/json'],
    ['form', new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded'],
    ['multipart', m.body, m.contentType],
  ];
}

test('check: a matching user_id passes byte for byte in JSON, form and multipart', async () => {
  for (const [kind, body, type] of bodies({ user_id: 'User_12345', question: 'hi' })) {
    const r = await send('/check/User_12345?user_id=User_12345', body, type);
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    assert.equal((JSON.parse(r.text) as StubEcho).sha256, sha256(body), `${kind}: the body is not rewritten in check mode`);
  }
});

test('check: a mismatched user_id is 403 naming the field, never the value, in each body type; the upstream sees nothing', async () => {
  const seen = stub.seen.length;
  for (const [kind, body, type] of bodies({ user_id: 'User_99999', question: 'hi' })) {
    const r = await send('/check/User_12345', body, type);
    const p = assertProblem(r.status, r.headers, r.text, { status: 403, code: 'forbidden' });
    assert.equal(p.field, 'body.user_id', kind);
    assert.ok(!r.text.includes('User_99999') && !r.text.includes('User_12345'), `${kind}: no value in the answer`);
  }
  assert.equal(stub.seen.length, seen);
});

test('check: a repeated field is checked in every occurrence (services differ on which one they read)', async () => {
  const form = 'user_id=User_12345&user_id=User_99999';
  const r = await send('/check/User_12345', form, 'application/x-www-form-urlencoded');
  assertProblem(r.status, r.headers, r.text, { status: 403, code: 'forbidden' });
  const q = await send('/check/User_12345?user_id=User_12345&user_id=User_99999');
  assert.equal(assertProblem(q.status, q.headers, q.text, { status: 403, code: 'forbidden' }).field, 'query.user_id');
});

test('check: the query, the path and a nested JSON field are bound too; an absent field is not a disagreement', async () => {
  const q = await send('/check/User_12345?user_id=User_1');
  assert.equal(assertProblem(q.status, q.headers, q.text, { status: 403, code: 'forbidden' }).field, 'query.user_id');
  const p = await send('/check/User_1');
  assert.equal(assertProblem(p.status, p.headers, p.text, { status: 403, code: 'forbidden' }).field, 'path.userId');
  const n = await send('/check/User_12345', JSON.stringify({ profile: { owner: 'User_1' } }), 'application/json');
  assert.equal(assertProblem(n.status, n.headers, n.text, { status: 403, code: 'forbidden' }).field, 'body.profile.owner');
  const ok = await send('/check/User_12345', JSON.stringify({ question: 'no user_id at all' }), 'application/json');
  assert.equal(ok.status, 200, ok.text);
});

test('check: a multipart field after a large file (past the peek) is still checked; a late mismatch aborts the upstream request with 403', async () => {
  const file = randomBytes(2 * 1024 * 1024);
  const good = multipart({}, [{ name: 'file', filename: 'a.pdf', type: 'application/pdf', data: file }]);
  const withField = (v: string) => {
    const boundary = /boundary=(.+)$/.exec(good.contentType)![1];
    const close = Buffer.from(`--${boundary}--\r\n`);
    return Buffer.concat([good.body.subarray(0, good.body.length - close.length), Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="user_id"\r\n\r\n${v}\r\n`), close]);
  };
  const ok = await send('/check/User_12345', withField('User_12345'), good.contentType);
  assert.equal(ok.status, 200, ok.text);
  const echo = JSON.parse(ok.text) as StubEcho;
  assert.equal(echo.sha256, sha256(withField('User_12345')), 'checks alone leave the bytes as they came');
  assert.equal(echo.headers['content-length'], String(withField('User_12345').length), 'and the length');
  const bad = await send('/check/User_12345', withField('User_99999'), good.contentType);
  assert.equal(assertProblem(bad.status, bad.headers, bad.text, { status: 403, code: 'forbidden' }).field, 'body.user_id');
});

test('check: a JSON body larger than the peek cannot be vouched for: 413; a text/plain body: 415', async () => {
  const big = await send('/check/User_12345', JSON.stringify({ user_id: 'User_12345', pad: 'x'.repeat(6000) }), 'application/json');
  assertProblem(big.status, big.headers, big.text, { status: 413, code: 'payload_too_large' });
  const txt = await send('/check/User_12345', 'user_id=User_99999', 'text/plain');
  assertProblem(txt.status, txt.headers, txt.text, { status: 415, code: 'unsupported_media_type' });
});

test('check: bodies the gateway cannot read are refused, never passed as "no such field": compressed (415), not JSON (400), malformed multipart (400)', async () => {
  const seen = stub.seen.length;
  const gz = gzipSync(JSON.stringify({ user_id: 'User_99999' }));
  const r = await request(`${g.url}/check/User_12345`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gz });
  const text = await r.body.text();
  assertProblem(r.statusCode, r.headers, text, { status: 415, code: 'unsupported_media_type' });
  // Python's json reads the first document and fails on the rest; a lenient parser might read the second.
  const two = await send('/check/User_12345', '{"user_id":"User_12345"} {"user_id":"User_99999"}', 'application/json');
  assertProblem(two.status, two.headers, two.text, { status: 400, code: 'bad_request' });
  const boundary = 'bnd';
  const open = `--${boundary}\r\ncontent-disposition: form-data; name="user_id"\r\n\r\nUser_12345\r\n--${boundary}\r\ncontent-disposition: form-data; name="user_id"\r\n\r\nUser_99999`;
  const m = await send('/check/User_12345', open, `multipart/form-data; boundary=${boundary}`);
  assertProblem(m.status, m.headers, m.text, { status: 400, code: 'bad_request' });
  assert.equal(stub.seen.length, seen);
});

test('inject: the identity replaces whatever the client sent, in JSON, form and multipart, the query and the path', async () => {
  for (const [kind, body, type] of bodies({ user_id: 'User_99999', question: 'hi' })) {
    const r = await send('/inject/User_99999?user_id=User_99999&x=1', body, type);
    assert.equal(r.status, 200, `${kind}: ${r.text}`);
    const echo = JSON.parse(r.text) as StubEcho;
    assert.deepEqual(echoedFields(echo).user_id, ['User_12345'], kind);
    assert.deepEqual(echoedFields(echo).question, ['hi'], kind);
    assert.equal(echo.path, '/inject/User_12345', kind);
    assert.equal(echo.query, 'x=1&user_id=User_12345', kind);
  }
  // A client that sent no user_id gets one.
  const r = await send('/inject/x', JSON.stringify({ question: 'hi' }), 'application/json');
  assert.deepEqual(JSON.parse(Buffer.from((JSON.parse(r.text) as StubEcho).body!, 'base64').toString()), { question: 'hi', user_id: 'User_12345' });
});

test('inject: a field after a large multipart file is replaced as the body streams', async () => {
  const file = randomBytes(1024 * 1024);
  const m = multipart({ user_id: 'User_99999' }, [{ name: 'file', filename: 'a.pdf', type: 'application/pdf', data: file }]);
  const r = await send('/inject/u', m.body, m.contentType);
  const echo = JSON.parse(r.text) as StubEcho;
  assert.equal(r.status, 200);
  assert.equal(echo.transferEncoding, 'chunked');
  assert.deepEqual(echoedFields(echo), { user_id: ['User_12345'], file: [`file:a.pdf:${sha256(file)}`] });
});

test('load-time checks: bind on a public route, a bad target, claims on API-key routes, a path parameter the route lacks', () => {
  const yaml = `
consumers: [ { id: c, keys: ["sha256:${'a'.repeat(64)}"] } ]
upstreams: { svc: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { name: a, match: { path: /a }, upstream: svc, auth: public, bind: { body.user_id: claim.sub } }
  - { name: b, match: { path: /b }, upstream: svc, auth: apikey, bind: { cookie.x: identity.id, body.u: claim.sub, path.id: identity.id } }
`;
  try { loadConfigText(yaml, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i)).join('\n');
    assert.match(lines, /g\.yaml:5:\d+ routes\[0\]\.bind: bind compares fields with the verified identity/);
    assert.match(lines, /routes\[1\]\.bind\.cookie\.x: "cookie\.x" is not a reference here/);
    assert.match(lines, /routes\[1\]\.bind\.body\.u: API-key identities have no claims/);
    assert.match(lines, /routes\[1\]\.bind\.path\.id: the route's path \/b has no parameter :id/);
  }
});
