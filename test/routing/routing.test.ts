// Route matching and rewriting, observed from the upstream side (the demo echo reports what it received).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';

let a: DemoServer;
let b: DemoServer;
let g: TestGateway;

before(async () => {
  a = await startDemoServer({ name: 'a' });
  b = await startDemoServer({ name: 'b' });
  g = await startGateway(`
upstreams:
  a: { targets: [ ${a.url} ] }
  b: { targets: [ ${b.url} ] }
defaults: { auth: public }
routes:
  - { name: exact, match: { path: /v1/models, methods: [GET] }, upstream: a }
  - { name: user, match: { path: /v1/users/:id, methods: [GET] }, upstream: a, rewrite: { path: /internal/people/:id/profile } }
  - { name: files, match: { path: /files, prefix: true }, upstream: a }
  - { name: many, match: { paths: [/one, /two/:x] }, upstream: b }
  - { name: jobs-create, match: { path: /v1/jobs, methods: [POST] }, upstream: a }
  - { name: jobs-list, match: { path: /v1/jobs, methods: [GET] }, upstream: b }
  - { name: chat, match: { path: /v1/chat }, upstream: a }
  - { name: chat-beta, match: { path: /v1/chat, headers: { x-beta: "yes" } }, upstream: b }
  - { name: chat-eu, match: { path: /v1/chat, query: { region: { in: [eu, uk] } } }, upstream: b, rewrite: { addPrefix: /eu } }
  - { name: strip, match: { path: /api, prefix: true }, upstream: a, rewrite: { stripPrefix: /api } }
  - { name: add, match: { path: /svc, prefix: true }, upstream: b, rewrite: { addPrefix: /internal } }
  - { name: moved, match: { path: /old, prefix: true }, upstream: a, rewrite: { path: /new/* } }
`);
});
after(async () => {
  await g.close();
  await a.close();
  await b.close();
});

interface Echo { service: string; method: string; path: string; query: string }

async function call(path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; echo: Echo | null; allow?: string }> {
  const r = await request(`${g.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers });
  const text = await r.body.text();
  const isEcho = r.statusCode === 200 && text.length > 0 && String(r.headers['content-type']).startsWith('application/json');
  return { status: r.statusCode, echo: isEcho ? JSON.parse(text) : null, allow: r.headers.allow as string | undefined };
}

async function served(path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<string> {
  const r = await call(path, init);
  assert.equal(r.status, 200, `${init.method ?? 'GET'} ${path}`);
  return `${r.echo!.service} ${r.echo!.path}${r.echo!.query ? '?' + r.echo!.query : ''}`;
}

test('exact path: only that path, only its methods (HEAD follows GET)', async () => {
  assert.equal(await served('/v1/models'), 'a /v1/models');
  assert.equal((await call('/v1/models', { method: 'HEAD' })).status, 200);
  assert.equal((await call('/v1/models/')).status, 404, 'a trailing slash is another path');
  assert.equal((await call('/v1/model')).status, 404);
  const r = await call('/v1/models', { method: 'DELETE' });
  assert.equal(r.status, 405);
  assert.equal(r.allow, 'GET, HEAD');
});

test(':param routes, and rewrite.path fills :param re-encoded', async () => {
  assert.equal(await served('/v1/users/42'), 'a /internal/people/42/profile');
  assert.equal(await served('/v1/users/42?full=1'), 'a /internal/people/42/profile?full=1');
  assert.equal(await served('/v1/users/a%20b'), 'a /internal/people/a%20b/profile');
  // A decoded "?" or "#" inside a parameter must not become a query or fragment upstream.
  assert.equal(await served('/v1/users/x%3Fadmin=1'), 'a /internal/people/x%3Fadmin%3D1/profile');
  assert.equal((await call('/v1/users/42/extra')).status, 404);
});

test('prefix routes take the path and everything under it, not siblings', async () => {
  assert.equal(await served('/files'), 'a /files');
  assert.equal(await served('/files/'), 'a /files/');
  assert.equal(await served('/files/x/y.txt?v=2'), 'a /files/x/y.txt?v=2');
  assert.equal((await call('/filesystem')).status, 404);
});

test('paths: [...] puts one route on several paths', async () => {
  assert.equal(await served('/one'), 'b /one');
  assert.equal(await served('/two/anything'), 'b /two/anything');
  assert.equal((await call('/three')).status, 404);
});

test('methods pick between routes on the same path; 405 lists what is allowed', async () => {
  assert.equal(await served('/v1/jobs', { method: 'POST' }), 'a /v1/jobs');
  assert.equal(await served('/v1/jobs'), 'b /v1/jobs');
  const r = await call('/v1/jobs', { method: 'PUT' });
  assert.equal(r.status, 405);
  assert.deepEqual(r.allow!.split(', ').sort(), ['GET', 'HEAD', 'POST']);
});

test('header and query conditions are tried before the plain route declared ahead of them', async () => {
  assert.equal(await served('/v1/chat'), 'a /v1/chat');
  assert.equal(await served('/v1/chat', { headers: { 'x-beta': 'yes' } }), 'b /v1/chat');
  assert.equal(await served('/v1/chat', { headers: { 'x-beta': 'no' } }), 'a /v1/chat');
  assert.equal(await served('/v1/chat?region=eu'), 'b /eu/v1/chat?region=eu');
  assert.equal(await served('/v1/chat?region=uk&x=1'), 'b /eu/v1/chat?region=uk&x=1');
  assert.equal(await served('/v1/chat?region=us'), 'a /v1/chat?region=us');
});

test('rewrite: stripPrefix and addPrefix keep the query', async () => {
  assert.equal(await served('/api/v1/x?q=%2F'), 'a /v1/x?q=%2F');
  assert.equal(await served('/api'), 'a /');
  assert.equal(await served('/svc/a/b?z'), 'b /internal/svc/a/b?z');
  assert.equal(await served('/old/x/y'), 'a /new/x/y');
});
