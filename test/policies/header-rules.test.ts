// Header rules on routes and upstreams over real sockets: set/add/remove on the request (seen at the stub) and on
// the response (seen by the client), values from literals, ${ENV}, claims and the request; forbidden headers refused
// at load with file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startGateway } from '../helpers.ts';
import { startStub, type StubEcho } from '../e2e/stubs.ts';
import { hs256 } from '../e2e/harness.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';

const SECRET = randomBytes(32).toString('base64url');

test('request rules: upstream rules then route rules; literals, ${ENV}, claims, path, query and headers; remove', async (t) => {
  const stub = await startStub('svc');
  const g = await startGateway(`
auth: { jwt: [ { name: t, secret: "${SECRET}", algorithms: [HS256] } ] }
upstreams:
  svc:
    targets: [ "${stub.url}" ]
    headers:
      request:
        set: { authorization: "Bearer \${UPSTREAM_TOKEN}", x-env: from-upstream, x-route: overridden }
        remove: [cookie]
routes:
  - name: r
    match: { path: /r/:project }
    upstream: svc
    auth: jwt
    headers:
      request:
        set:
          x-route: route
          x-sub: { from: claim.sub }
          x-org: { from: claim.org.name }
          x-project: { from: path.project }
          x-q: { from: query.q }
          x-copy: { from: header.x-in }
          x-absent: { from: claim.nope }
        add: { x-list: two }
        remove: [x-secret-debug]
`, { env: { UPSTREAM_TOKEN: 'svc-token-123' } });
  t.after(async () => { await g.close(); await stub.close(); });
  const token = await hs256(SECRET, { sub: 'User_1', org: { name: 'Acme\r\nInjected: yes' } });
  const r = await request(`${g.url}/r/p9?q=hello`, { headers: { authorization: `Bearer ${token}`, cookie: 'session=abc', 'x-list': 'one', 'x-in': 'copied', 'x-secret-debug': '1' } });
  const echo = (await r.body.json()) as StubEcho;
  const h = echo.headers;
  assert.equal(h.authorization, 'Bearer svc-token-123', 'the upstream gets its own credential; the client token stays at the gateway');
  assert.equal(h.cookie, undefined);
  assert.equal(h['x-secret-debug'], undefined);
  assert.equal(h['x-env'], 'from-upstream');
  assert.equal(h['x-route'], 'route', "the route's set wins over the upstream's");
  assert.equal(h['x-sub'], 'User_1');
  assert.equal(h['x-org'], 'Acme%0D%0AInjected%3A%20yes', 'a claim with CR/LF cannot split the request');
  assert.equal(h.injected, undefined);
  assert.equal(h['x-project'], 'p9');
  assert.equal(h['x-q'], 'hello');
  assert.equal(h['x-copy'], 'copied');
  assert.equal(h['x-absent'], undefined, 'a reference the request does not carry sets nothing');
  assert.equal(h['x-list'], 'one, two');
});

test('response rules: set replaces the upstream header, add appends, remove drops (upstream rules too)', async (t) => {
  const up = createServer((_req, res) => {
    res.setHeader('x-powered-by-app', 'fastapi');
    res.setHeader('cache-control', 'public, max-age=60');
    res.setHeader('set-cookie', ['a=1']);
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(up.address() as { port: number }).port}`;
  const g = await startGateway(`
upstreams: { svc: { targets: [ "${url}" ], headers: { response: { remove: [x-powered-by-app] } } } }
routes:
  - name: r
    match: { path: /r }
    upstream: svc
    auth: public
    headers:
      response:
        set: { cache-control: no-store, x-served-for: { from: header.x-client } }
        add: { set-cookie: "b=2; Path=/" }
`);
  t.after(async () => { await g.close(); await new Promise<void>((r) => up.close(() => r())); });
  const r = await request(`${g.url}/r`, { headers: { 'x-client': 'web' } });
  await r.body.dump();
  assert.equal(r.headers['x-powered-by-app'], undefined);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2; Path=/']);
  assert.equal(r.headers['x-served-for'], 'web');
  assert.ok(r.headers['x-request-id']);
});

test('hop-by-hop, framing, gateway-owned and identity headers are refused at load, with file:line', () => {
  const yaml = `
auth: { jwt: [ { name: t, secret: "${SECRET}", algorithms: [HS256], claimsToHeaders: { email: X-User-Email } } ] }
upstreams:
  svc:
    targets: [ "http://127.0.0.1:1" ]
    headers: { request: { set: { Connection: close } } }
routes:
  - name: r
    match: { path: /r }
    upstream: svc
    auth: jwt
    headers:
      request:
        set: { X-Forwarded-For: 1.2.3.4, x-user-id: admin, X-User-Email: a@b }
        add: { transfer-encoding: chunked, "bad header": x }
        remove: [x-request-id, host]
      response:
        set: { content-length: "0", x-ok: "line\\r\\nbreak" }
`;
  try { loadConfigText(yaml, 'g.yaml', { env: {} }); assert.fail('loaded'); } catch (e) {
    assert.ok(e instanceof ConfigError);
    const lines = e.issues.map((i) => formatIssue(i));
    const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `${re}\n${lines.join('\n')}`);
    has(/^g\.yaml:6:\d+ upstreams\.svc\.headers\.request\.set\.Connection: connection is hop-by-hop/);
    has(/^g\.yaml:14:\d+ routes\[0\]\.headers\.request\.set\.X-Forwarded-For: x-forwarded-for is set by the gateway itself/);
    has(/routes\[0\]\.headers\.request\.set\.x-user-id: x-user-id is an identity header/);
    has(/routes\[0\]\.headers\.request\.set\.X-User-Email: x-user-email is an identity header/);
    has(/routes\[0\]\.headers\.request\.add\.transfer-encoding: transfer-encoding is hop-by-hop/);
    has(/routes\[0\]\.headers\.request\.add\.bad header: "bad header" is not a header name/);
    has(/routes\[0\]\.headers\.request\.remove\[0\]: x-request-id is set by the gateway itself/);
    has(/routes\[0\]\.headers\.request\.remove\[1\]: host is set by the gateway itself/);
    has(/routes\[0\]\.headers\.response\.set\.content-length: content-length is hop-by-hop or frames the message/);
    has(/routes\[0\]\.headers\.response\.set\.x-ok: a header value cannot hold control characters/);
  }
});
