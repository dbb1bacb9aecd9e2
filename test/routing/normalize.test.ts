import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, splitTarget } from '../../src/routing/normalize.ts';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';

test('normalizePath: dot segments and duplicate slashes', () => {
  const cases: Array<[string, string]> = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a//b', '/a/b'],
    ['//a///b//', '/a/b/'],
    ['/a/./b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/a/%2e%2E/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a/.../b', '/a/.../b'],
    ['/a/..b/c', '/a/..b/c'],
  ];
  for (const [input, want] of cases) assert.equal(normalizePath(input), want, input);
});

test('normalizePath: unreserved escapes are decoded, others kept and upper-cased', () => {
  assert.equal(normalizePath('/%7Euser/%41%62%2d%5F%2E'), '/~user/Ab-_.');
  assert.equal(normalizePath('/a%20b'), '/a%20b');
  assert.equal(normalizePath('/caf%c3%a9'), '/caf%C3%A9');
  assert.equal(normalizePath('/q%3fx'), '/q%3Fx');
});

test('normalizePath: encoded "/", "\\", NUL, invalid UTF-8, broken escapes and a raw backslash are refused', () => {
  for (const bad of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb', '/a%00', '/a%ff', '/a%C3%28', '/a%C3', '/a%zz', '/a%4', '/a%', '/a\\b', '\\a', 'a/b', '']) {
    assert.equal(normalizePath(bad), null, bad);
  }
});

test('splitTarget keeps the query byte for byte and handles absolute-form', () => {
  assert.deepEqual(splitTarget('/a?x=%2F&b=+&c'), { path: '/a', query: 'x=%2F&b=+&c' });
  assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '' });
  assert.deepEqual(splitTarget('/a'), { path: '/a', query: null });
  assert.deepEqual(splitTarget('/a?b?c'), { path: '/a', query: 'b?c' });
  assert.deepEqual(splitTarget('http://example.com/p/q?z=1'), { path: '/p/q', query: 'z=1' });
  assert.deepEqual(splitTarget('http://example.com?z=1'), { path: '/', query: 'z=1' });
});

test('end to end: the upstream receives exactly the normalized path that was matched, and the query byte for byte', async (t) => {
  const pub = await startDemoServer({ name: 'public' });
  const adm = await startDemoServer({ name: 'admin' });
  const g = await startGateway(`
upstreams:
  public: { targets: [ ${pub.url} ] }
  admin: { targets: [ ${adm.url} ] }
defaults: { auth: public }
routes:
  - { name: public, match: { path: /public, prefix: true }, upstream: public }
  - { name: admin, match: { path: /admin, headers: { x-admin-key: let-me-in } }, upstream: admin }
`);
  t.after(async () => { await g.close(); await pub.close(); await adm.close(); });

  const echo = async (target: string) => {
    const r = await rawRequest(g.port, `GET ${target} HTTP/1.1\r\nHost: gw`);
    return { status: r.status, body: r.status === 200 ? JSON.parse(r.body) : r.body };
  };

  let r = await echo('/public//a/./b/../c/%7Efile%20x?a=%2F&b=+&c&d=%zz&e=caf%C3%A9&&');
  assert.equal(r.status, 200);
  assert.equal(r.body.service, 'public');
  assert.equal(r.body.path, '/public/a/c/~file%20x');
  assert.equal(r.body.query, 'a=%2F&b=+&c&d=%zz&e=caf%C3%A9&&');

  r = await echo('/public?');
  assert.equal(r.body.path, '/public');
  assert.equal(r.body.query, '', 'an empty query stays an empty query');

  // A path that climbs out of /public is matched (and forwarded) as what it normalizes to.
  const before = pub.stats.requests;
  for (const sneaky of ['/public/../admin', '/public/%2e%2e/admin', '/public/./../admin/', '/public/..%2Fadmin']) {
    const res = await echo(sneaky);
    assert.ok(res.status === 404 || res.status === 400, `${sneaky} → ${res.status}`);
  }
  assert.equal(pub.stats.requests, before, 'the public upstream never saw a request meant for /admin');
  assert.equal(adm.stats.requests, 0, 'and the admin route was not reached without its condition');

  // With the admin route's condition met, the normalized path goes to admin (the route it matched), not public.
  const ok = await rawRequest(g.port, 'GET /public/../admin HTTP/1.1\r\nHost: gw\r\nX-Admin-Key: let-me-in');
  assert.equal(ok.status, 200);
  const body = JSON.parse(ok.body) as { service: string; path: string };
  assert.deepEqual([body.service, body.path], ['admin', '/admin']);
  assert.equal(pub.stats.requests, before);
});
