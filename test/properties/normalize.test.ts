// Properties of path normalization (src/routing/normalize.ts) with fast-check: pure, then end to end through a
// real gateway and an echo upstream, checking that what was routed is what the upstream receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import fc from 'fast-check';
import { normalizePath, splitTarget } from '../../src/routing/normalize.ts';
import { startGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';

/** Segments an attacker would try: dot segments plain, encoded and with parameters, encoded separators, escapes. */
const SEGMENT = fc.constantFrom(
  'p', 'admin', 'adm', 'in', 'x', 'ADMIN', '', '.', '..', '...', '%2e', '%2E', '%2e%2e', '.%2e', '%2e.', '%61dmin', 'adm%69n',
  '%2f', '%2F', '%5c', '%5C', '%00', '%25', '%252e', '%', '%4', '%zz', '%3b', ';', ';x', 'admin;x', '..;', '..;x', '.;',
  '%2e%2e;', '#', '%23', 'a#b', '%3F', '\\', '~', '%7e', '%7E', '%c3%a9', '%C3%28', '%ff', 'é', '%20', '+',
);
const path = fc.tuple(fc.constantFrom('/p/', '/', '//p/', '/p/admin/', '/./p/'), fc.array(SEGMENT, { maxLength: 6 }))
  .map(([head, segs]) => head + segs.join('/'));
const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.constantFrom('/', '.', '%', '2', 'e', 'F', ';', '\\', 'a'), maxLength: 30 }));

test('property (2000 runs): normalizePath never throws, on any string', () => {
  fc.assert(fc.property(anyString, (s) => { normalizePath('/' + s); normalizePath(s); }), { numRuns: 2000 });
});

test('property (2000 runs): normalizePath is idempotent', () => {
  fc.assert(fc.property(fc.oneof(path, anyString.map((s) => '/' + s)), (p) => {
    const n = normalizePath(p);
    if (n !== null) assert.equal(normalizePath(n), n, `${JSON.stringify(p)} → ${JSON.stringify(n)}`);
  }), { numRuns: 2000 });
});

test('property (2000 runs): a normalized path is canonical: one leading slash, no empty or dot segments, escapes upper-case and never of an unreserved, "/", "\\" or NUL', () => {
  fc.assert(fc.property(path, (p) => {
    const n = normalizePath(p);
    if (n === null) return;
    const segs = n.split('/');
    assert.equal(segs[0], '');
    for (const [i, s] of segs.slice(1).entries()) {
      if (i < segs.length - 2) assert.notEqual(s, '', `empty segment in ${n}`);
      const name = s.split(';')[0];
      assert.ok(name !== '.' && name !== '..', `dot segment in ${n}`);
    }
    assert.ok(!n.includes('\\'));
    for (const m of n.matchAll(/%(..)/g)) {
      assert.match(m[1], /^[0-9A-F]{2}$/, `escape ${m[0]} in ${n}`);
      assert.ok(!/^(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E|2F|5C|00)$/.test(m[1]), `escape ${m[0]} should have been decoded or refused in ${n}`);
    }
  }), { numRuns: 2000 });
});

test('property (1000 runs): an encoded "/", "\\" or NUL anywhere, or a dot segment with parameters, is refused', () => {
  const poison = fc.constantFrom('%2f', '%2F', '%5c', '%5C', '%00', '..;', '..;x', '.;', '%2e%2e;', '.%2E;y');
  fc.assert(fc.property(path, poison, path, (a, bad, b) => {
    assert.equal(normalizePath(`${a}/${bad}${b}`), null);
  }), { numRuns: 1000 });
});

test('regression: "/public/..;/admin" (Tomcat/Spring resolve "..;" as "..") is refused, it was forwarded to be resolved upstream', () => {
  assert.equal(normalizePath('/public/..;/admin'), null);
  assert.equal(normalizePath('/public/%2e%2e;jsessionid=1/admin'), null);
  assert.equal(normalizePath('/a/.;/b'), null);
  assert.equal(normalizePath('/a/b;c/d'), '/a/b;c/d', 'parameters on an ordinary segment stay as they are');
  assert.equal(normalizePath('/a/...;/b'), '/a/...;/b');
});

// ------------------------------------------------------------------------------------------ end to end
/** Which of the two prefix routes a router that takes the path as given would pick. */
function routeOf(p: string): 'admin' | 'pub' | 'none' {
  const q = p.split('#')[0]; // the router (find-my-way) and any HTTP server stop the path at "#"
  if (q === '/p/admin' || q.startsWith('/p/admin/')) return 'admin';
  if (q === '/p' || q.startsWith('/p/')) return 'pub';
  return 'none';
}
/** Resolves dot segments the way a servlet container does after dropping each dot segment's ";parameters". */
function servletView(p: string): string {
  const out: string[] = [];
  const segs = p.split('#')[0].split('/').slice(1);
  segs.forEach((s, i) => {
    const name = s.split(';')[0];
    if (name === '..') { out.pop(); if (i === segs.length - 1) out.push(''); } else if (name === '.') { if (i === segs.length - 1) out.push(''); } else out.push(s);
  });
  return '/' + out.join('/');
}

test('property (300 runs, end to end): the route a path takes is the route the path the upstream receives would take, for an upstream that routes it as given, one that percent-decodes it, and a servlet container; the query passes byte for byte', async (t) => {
  const up = createServer((req, res) => res.end(JSON.stringify({ url: req.url })));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const port = (up.address() as { port: number }).port;
  const gw = await startGateway(`
upstreams:
  admin: { targets: [ http://127.0.0.1:${port}/admin-up ] }
  pub: { targets: [ http://127.0.0.1:${port}/pub-up ] }
routes:
  - { name: admin, match: { path: /p/admin, prefix: true }, upstream: admin, auth: public }
  - { name: pub, match: { path: /p, prefix: true }, upstream: pub, auth: public }
`);
  t.after(async () => { await gw.close(); up.close(); });
  const statuses = new Map<number, number>();
  const query = fc.option(fc.constantFrom('', 'a=1', 'x=%2F..%2f&y=/../admin', 'q=%zz;#', '=&&'), { nil: undefined });
  await fc.assert(fc.asyncProperty(path, query, async (p, q) => {
    const target = q === undefined ? p : `${p}?${q}`;
    const r = await rawRequest(gw.port, `GET ${target} HTTP/1.1\r\nHost: gw.test`);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    assert.ok(r.status < 500, `${target} → ${r.status} ${r.body}`);
    const n = normalizePath(splitTarget(target).path);
    if (n === null) { assert.equal(r.status, 400, `${target} must be refused`); return; }
    if (r.status === 400) return; // refused by the HTTP parser or the gateway's request checks: nothing routed
    if (r.status === 404) { assert.equal(routeOf(n), 'none', `${target} (${n}) should have matched a route`); return; }
    assert.equal(r.status, 200, `${target} → ${r.status} ${r.body}`);
    const url = (JSON.parse(r.body) as { url: string }).url;
    const m = /^\/(admin|pub)-up(\/[^?]*)(?:\?(.*))?$/s.exec(url);
    assert.ok(m, `upstream got ${url}`);
    const [, tag, got, gotQuery] = m;
    assert.equal(got, n, 'the upstream receives exactly the normalized path');
    assert.equal(normalizePath(got), got, 'which normalizes to itself');
    assert.equal(gotQuery, q === undefined ? undefined : q, 'the query byte for byte');
    assert.equal(routeOf(got), tag, `as given: ${got}`);
    assert.equal(routeOf(decodeURIComponent(got.split('#')[0])), tag, `percent-decoded: ${got}`);
    assert.equal(routeOf(servletView(got)), tag, `servlet view of ${got}: ${servletView(got)}`);
  }), { numRuns: 300 });
  t.diagnostic(`statuses: ${[...statuses].map(([s, c]) => `${s}×${c}`).join(' ')}`);
});
