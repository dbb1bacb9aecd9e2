// rateLimit[].by: body.NAME | query.NAME | path.NAME over real sockets: one project's burst does not touch another's
// budget, in JSON, urlencoded and multipart bodies; the key is a hash (checked in Redis); a request without the field
// is refused or falls back, as configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startGateway, type TestGateway } from '../helpers.ts';
import { startStub, multipart, sha256, type StubEcho } from '../e2e/stubs.ts';
import { assertProblem } from '../support/problem.ts';
import { request } from 'undici';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

async function setup(t: { after(fn: () => Promise<void>): void }, routes: string, state = '') {
  const stub = await startStub('svc');
  const g = await startGateway(`
server: { limits: { bodyPeek: 4kb } }
${state}
upstreams: { svc: { targets: [ "${stub.url}" ] } }
routes:
${routes}
`);
  t.after(async () => { await g.close(); await stub.close(); });
  return { g, stub };
}

async function post(g: TestGateway, path: string, body: string | Buffer, type: string) {
  const r = await request(`${g.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

function encodings(fields: Record<string, string>): Array<[string, string | Buffer, string]> {
  const m = multipart(fields);
  return [['json', JSON.stringify(fields), 'application/json'], ['form', new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded'], ['multipart', m.body, m.contentType]];
}

test('by: body.project_id isolates two projects, in JSON, form and multipart bodies; bodies arrive unchanged', async (t) => {
  const { g } = await setup(t, `
  - { name: chat, match: { path: /chat, methods: [POST] }, upstream: svc, auth: public, rateLimit: [ { limit: 3, window: 1h, by: body.project_id } ] }`);
  for (const kind of ['json', 'form', 'multipart']) {
    const [, a, type] = encodings({ project_id: `A-${randomBytes(3).toString('hex')}`, question: 'q' }).find(([k]) => k === kind)!;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(g, '/chat', a, type);
      statuses.push(r.status);
      if (r.status === 200) assert.equal((JSON.parse(r.text) as StubEcho).sha256, sha256(a), kind);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429], `${kind}: project A spends its own budget`);
    // Project B, in the same encoding, still has all of its own.
    const [, b, typeB] = encodings({ project_id: `B-${randomBytes(3).toString('hex')}`, question: 'q' }).find(([k]) => k === kind)!;
    const r = await post(g, '/chat', b, typeB);
    assert.equal(r.status, 200, `${kind}: project B is not limited by A`);
    assert.match(String(r.headers.ratelimit), /r=2/);
  }
});

test('by: query.NAME and path.NAME key on the query parameter and the path parameter', async (t) => {
  const { g } = await setup(t, `
  - { name: q, match: { path: /q }, upstream: svc, auth: public, rateLimit: [ { limit: 1, window: 1h, by: query.tenant } ] }
  - { name: p, match: { path: /p/:project }, upstream: svc, auth: public, rateLimit: [ { limit: 1, window: 1h, by: path.project } ] }`);
  const get = async (p: string) => { const r = await request(`${g.url}${p}`); await r.body.dump(); return r.statusCode; };
  assert.deepEqual([await get('/q?tenant=a'), await get('/q?tenant=a'), await get('/q?tenant=b&x=1')], [200, 429, 200]);
  assert.deepEqual([await get('/p/one'), await get('/p/one'), await get('/p/two')], [200, 429, 200]);
});

test('a request without the field is refused (400 naming the field) unless ifMissing names a fallback key', async (t) => {
  const { g, stub } = await setup(t, `
  - { name: strict, match: { path: /strict, methods: [POST] }, upstream: svc, auth: public, rateLimit: [ { limit: 5, window: 1h, by: body.project_id } ] }
  - { name: lenient, match: { path: /lenient, methods: [POST] }, upstream: svc, auth: public, rateLimit: [ { limit: 1, window: 1h, by: body.project_id, ifMissing: ip } ] }`);
  const seen = stub.seen.length;
  const r = await post(g, '/strict', JSON.stringify({ question: 'no project' }), 'application/json');
  const p = assertProblem(r.status, r.headers, r.text, { status: 400, code: 'bad_request' });
  assert.equal(p.field, 'body.project_id');
  const empty = await request(`${g.url}/strict`, { method: 'POST' });
  assert.equal(empty.statusCode, 400, 'no body at all is the same');
  await empty.body.dump();
  assert.equal(stub.seen.length, seen);
  // ifMissing: ip: requests without the field share the client's IP bucket (limit 1).
  assert.equal((await post(g, '/lenient', '{}', 'application/json')).status, 200);
  assert.equal((await post(g, '/lenient', '{}', 'application/json')).status, 429);
  assert.equal((await post(g, '/lenient', '{"project_id":"x"}', 'application/json')).status, 200, 'a request with the field has its own key');
});

test('the key is a hash: the value never appears in a store key (Redis)', async (t) => {
  const prefix = `ghtest-${randomBytes(4).toString('hex')}:`;
  const { g } = await setup(t, `
  - { name: chat, match: { path: /chat, methods: [POST] }, upstream: svc, auth: public, rateLimit: [ { limit: 5, window: 1h, by: body.project_id } ] }`,
  `state: { store: redis, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${prefix}" } }`);
  const secretish = `User-181473_Project_15-${randomBytes(8).toString('hex')}`;
  const r = await post(g, '/chat', JSON.stringify({ project_id: secretish }), 'application/json');
  assert.equal(r.status, 200, r.text);
  const redis = new Redis('redis://127.0.0.1:6379');
  t.after(async () => { const keys = await redis.keys(`{${prefix}*`); if (keys.length) await redis.del(...keys); redis.disconnect(); });
  const keys = await redis.keys(`{${prefix}*`);
  assert.ok(keys.length > 0);
  assert.ok(keys.some((k) => /f:body\.project_id:[A-Za-z0-9_-]{22}/.test(k)), keys.join('\n'));
  assert.ok(keys.every((k) => !k.includes(secretish) && k.length < 200), keys.join('\n'));
});

test('load-time checks: body keys only on routes, ifMissing only with them, path keys need the parameter', () => {
  const yaml = `
plans: { free: { rateLimit: [ { limit: 1, window: 1m, by: body.project_id } ] } }
upstreams: { svc: { targets: [ "http://127.0.0.1:1" ] } }
routes:
  - { name: a, match: { path: /a }, upstream: svc, auth: public, rateLimit: [ { limit: 1, window: 1m, by: ip, ifMissing: ip }, { limit: 1, window: 1h, by: path.id } ] }
`;
  try { loadConfigText(yaml, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i)).join('\n');
    assert.match(lines, /plans\.free\.rateLimit\[0\]\.by: body, query and path keys belong to a route/);
    assert.match(lines, /routes\[0\]\.rateLimit\[0\]\.ifMissing: ifMissing applies to by: body\.\*/);
    assert.match(lines, /routes\[0\]\.rateLimit\[1\]\.by: the route's path has no parameter :id/);
  }
});
