// transform.body over real sockets: JSON, urlencoded and multipart (small and streamed) bodies rewritten as
// configured, checked at a stub that echoes what it received; too large to rewrite is a 413, never a pass-through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { startStub, multipart, sha256, echoedFields, parseMultipart, type Stub, type StubEcho } from '../e2e/stubs.ts';
import { hs256 } from '../e2e/harness.ts';
import { assertProblem } from '../support/problem.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

const SECRET = randomBytes(32).toString('base64url');
let stub: Stub;
let g: TestGateway;
let token: string;

const config = (url: string) => `
server: { limits: { bodyPeek: 4kb } }
auth: { jwt: [ { name: t, secret: "${SECRET}", algorithms: [HS256] } ] }
upstreams: { svc: { targets: [ "${url}" ] } }
routes:
  - name: rewrite
    match: { path: /t/:project, methods: [POST] }
    upstream: svc
    auth: jwt
    limits: { maxBodySize: 50mb }
    transform:
      body:
        keep: [question, session_id, project_id, drop_me, upload, late]
        remove: [drop_me]
        rename: { project_id: avtarType, late: renamed_late }
        set:
          user: { from: claim.sub }
          project: { from: path.project }
          tenant: { from: header.x-tenant }
          copied: { from: body.session_id }
          source: gateway
  - name: plain
    match: { path: /plain, methods: [POST] }
    upstream: svc
    auth: public
`;

before(async () => {
  stub = await startStub('svc');
  g = await startGateway(config(stub.url));
  token = await hs256(SECRET, { sub: 'User_7' });
});
after(async () => { await g?.close(); await stub?.close(); });

const FIELDS = { user_id: 'User_181473', project_id: 'User-181473_Project_15', session_id: 'session_abc', question: 'What is a refund?', originating_url: 'https://example.com', drop_me: 'x' };
const EXPECTED = { question: ['What is a refund?'], session_id: ['session_abc'], avtarType: ['User-181473_Project_15'], user: ['User_7'], project: ['p42'], tenant: ['acme'], copied: ['session_abc'], source: ['gateway'] };

async function post(path: string, body: string | Buffer | PassThrough, type: string, extra: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${token}`, 'x-tenant': 'acme', ...extra }, body });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

function sorted(o: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

test('JSON: keep, remove, rename and set (claim, path parameter, header, body field, literal); Content-Length recomputed', async () => {
  const r = await post('/t/p42', JSON.stringify({ ...FIELDS, nested: { a: 1 } }), 'application/json');
  assert.equal(r.status, 200, r.text);
  const echo = JSON.parse(r.text) as StubEcho;
  assert.deepEqual(sorted(echoedFields(echo)), sorted(EXPECTED));
  const sent = Buffer.from(echo.body!, 'base64');
  assert.equal(echo.headers['content-length'], String(sent.length));
  assert.equal(echo.transferEncoding, undefined);
  assert.deepEqual(JSON.parse(sent.toString()), { question: 'What is a refund?', session_id: 'session_abc', avtarType: 'User-181473_Project_15', user: 'User_7', project: 'p42', tenant: 'acme', copied: 'session_abc', source: 'gateway' });
});

test('urlencoded: the same rules; repeated fields are removed everywhere', async () => {
  const body = new URLSearchParams({ ...FIELDS }).toString() + '&drop_me=again&project_id=User-181473_Project_15';
  const r = await post('/t/p42', body, 'application/x-www-form-urlencoded; charset=UTF-8');
  assert.equal(r.status, 200, r.text);
  const echo = JSON.parse(r.text) as StubEcho;
  assert.deepEqual(sorted(echoedFields(echo)), sorted({ ...EXPECTED, avtarType: ['User-181473_Project_15', 'User-181473_Project_15'] }));
  assert.equal(echo.headers['content-length'], String(Buffer.from(echo.body!, 'base64').length));
});

test('multipart within the peek: fields rewritten, a file part arrives byte for byte, Content-Length recomputed', async () => {
  const file = randomBytes(1500);
  const m = multipart(FIELDS, [{ name: 'upload', filename: 'a.bin', type: 'application/octet-stream', data: file }]);
  const r = await post('/t/p42', m.body, m.contentType);
  assert.equal(r.status, 200, r.text);
  const echo = JSON.parse(r.text) as StubEcho;
  assert.deepEqual(sorted(echoedFields(echo)), sorted({ ...EXPECTED, upload: [`file:a.bin:${sha256(file)}`] }));
  assert.equal(echo.headers['content-length'], String(echo.bytes));
  // the part keeps its own headers (filename, content type)
  const up = parseMultipart(Buffer.from(echo.body!, 'base64'), echo.contentType!).find((p) => p.name === 'upload')!;
  assert.equal(up.filename, 'a.bin');
});

/** A multipart body with parts in the given order (text or file). */
function parts(boundary: string, list: Array<[string, string | Buffer, string?]>): Buffer {
  const out: Buffer[] = [];
  for (const [name, value, filename] of list) {
    out.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"${filename ? `; filename="${filename}"\r\ncontent-type: application/pdf` : ''}\r\n\r\n`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

test('multipart larger than the peek streams: fields before and after a 6 MiB file are rewritten, the file is intact, nothing is buffered', async () => {
  const file = randomBytes(6 * 1024 * 1024);
  const boundary = '----gatehouseBig' + randomBytes(4).toString('hex');
  const body = parts(boundary, [['question', 'q?'], ['project_id', 'User-181473_Project_15'], ['drop_me', 'x'], ['upload', file, 'big.pdf'], ['not_kept', randomBytes(3000), 'x.bin'], ['late', 'after the file']]);
  const stream = new PassThrough();
  const pending = post('/t/p42', stream, `multipart/form-data; boundary=${boundary}`, { 'content-length': String(body.length), 'x-stub-keep-body': '1' });
  const seen = stub.seen.length;
  const half = 3 * 1024 * 1024;
  stream.write(body.subarray(0, half));
  // The stub receives most of the first half before the client sends the rest: the gateway holds no upload.
  await eventually(() => stub.seen.length > seen && stub.seen[seen].bytes >= half - 512 * 1024, 10_000);
  stream.end(body.subarray(half));
  const r = await pending;
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const echo = JSON.parse(r.text) as StubEcho;
  assert.equal(echo.transferEncoding, 'chunked', 'a streamed rewrite cannot know its length: chunked');
  assert.equal(echo.headers['content-length'], undefined);
  assert.deepEqual(sorted(echoedFields(echo)), sorted({
    question: ['q?'], avtarType: ['User-181473_Project_15'], upload: [`file:big.pdf:${sha256(file)}`], renamed_late: ['after the file'],
    user: ['User_7'], project: ['p42'], tenant: ['acme'], source: ['gateway'],
  }), 'copied is absent: session_id was not sent');
});

test('multipart: any chunking of the body gives the same parts (a delimiter cut by a chunk edge is found)', async () => {
  const file = randomBytes(20 * 1024);
  const boundary = 'xYzBoundary42';
  const body = parts(boundary, [['question', 'q?'], ['upload', file, 'doc.pdf'], ['late', 'after']]);
  for (const size of [1, 7, 45, 1000, 4095, 4096, 4097]) {
    const stream = new PassThrough();
    const pending = post('/t/p42', stream, `multipart/form-data; boundary=${boundary}`, { 'content-length': String(body.length) });
    for (let i = 0; i < body.length; i += size) stream.write(body.subarray(i, i + size));
    stream.end();
    const r = await pending;
    assert.equal(r.status, 200, r.text);
    const f = echoedFields(JSON.parse(r.text) as StubEcho);
    assert.deepEqual(f.upload, [`file:doc.pdf:${sha256(file)}`], `chunks of ${size}`);
    assert.deepEqual(f.renamed_late, ['after'], `chunks of ${size}`);
  }
});

test('a malformed multipart body (no closing boundary) past the peek is 400 and the upstream request is aborted', async () => {
  const boundary = 'bnd';
  const body = Buffer.concat([Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="upload"; filename="a"\r\n\r\n`), randomBytes(20_000)]);
  const r = await post('/t/p42', body, `multipart/form-data; boundary=${boundary}`);
  assertProblem(r.status, r.headers, r.text, { status: 400, code: 'bad_request' });
});

test('a JSON or form body larger than server.limits.bodyPeek is 413 with a clear detail, and never reaches the upstream', async () => {
  const seen = stub.seen.length;
  for (const [body, type] of [[JSON.stringify({ question: 'x'.repeat(8000) }), 'application/json'], [`question=${'x'.repeat(8000)}`, 'application/x-www-form-urlencoded']]) {
    const r = await post('/t/p42', body, type);
    const p = assertProblem(r.status, r.headers, r.text, { status: 413, code: 'payload_too_large' });
    assert.match(p.detail, /at most 4096 bytes \(server\.limits\.bodyPeek\)/);
  }
  assert.equal(stub.seen.length, seen);
});

test('a body the transform cannot read is 415; invalid JSON is 400; a request without a body passes untouched', async () => {
  const t = await post('/t/p42', 'question=hi', 'text/plain');
  assertProblem(t.status, t.headers, t.text, { status: 415, code: 'unsupported_media_type' });
  const j = await post('/t/p42', '{"question": ', 'application/json');
  assertProblem(j.status, j.headers, j.text, { status: 400, code: 'bad_request' });
  const a = await post('/t/p42', '["not", "an", "object"]', 'application/json');
  assertProblem(a.status, a.headers, a.text, { status: 400, code: 'bad_request' });
  const r = await request(`${g.url}/t/p42`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  const echo = (await r.body.json()) as StubEcho;
  assert.equal(r.statusCode, 200);
  assert.equal(echo.bytes, 0);
});

test('a route without transform forwards the body as it came (no rewrite, no peek)', async () => {
  const body = JSON.stringify(FIELDS);
  const r = await post('/plain', body, 'application/json');
  const echo = JSON.parse(r.text) as StubEcho;
  assert.equal(echo.sha256, sha256(body));
  assert.equal(g.gw.table.routes.find((x) => x.name === 'plain')!.policies.includes('transform'), false);
});

test('load-time checks: a bad reference, a rename of a field keep drops, an empty transform; each positioned', () => {
  const bad = `
upstreams: { svc: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - name: a
    match: { path: /a }
    upstream: svc
    auth: public
    transform:
      body:
        keep: [a]
        rename: { b: c }
        set: { who: { from: claim.sub }, what: { from: cookie.x } }
  - name: b
    match: { path: /b }
    upstream: svc
    auth: public
    transform: { body: {} }
`;
  try {
    loadConfigText(bad, 'g.yaml', { env: {} });
    assert.fail('loaded');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i));
    assert.ok(lines.some((l) => /^g\.yaml:11:\d+ routes\[0\]\.transform\.body\.rename\.b: "b" is not in keep/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /routes\[0\]\.transform\.body\.set\.who: claim\.sub needs an identity/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /routes\[0\]\.transform\.body\.set\.what: "cookie\.x" is not a reference here/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /routes\[1\]\.transform\.body: give keep, remove, rename or set/.test(l)), lines.join('\n'));
  }
});
