// Adversarial suite, family "path normalization": the path the gateway matches a route on must be the path the
// upstream receives, whatever spelling the client used. Cases from Envoy, Istio, APISIX, Traefik and nginx CVEs.
// The config has a public prefix, a protected prefix (API key) and a prefix-stripping route; the question each
// case asks is whether a request can reach /admin on the upstream without the key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../helpers.ts';
import { parseResponse, rawExchange } from '../support/raw-http.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.ts';

let up: RecordingUpstream;
let g: TestGateway;

before(async () => {
  up = await startRecordingUpstream();
  g = await startGateway(`
upstreams:
  app: { targets: [ ${up.url} ] }
consumers:
  - { id: ops, keys: ["sha256:${'0'.repeat(64)}"] }
routes:
  - { name: public, match: { path: /public, prefix: true }, upstream: app, auth: public }
  - { name: admin, match: { path: /admin, prefix: true }, upstream: app, auth: apikey }
  - { name: api, match: { path: /api, prefix: true }, upstream: app, auth: public, rewrite: { stripPrefix: /api } }
  - { name: vault, match: { path: /public/vault, prefix: true }, upstream: app, auth: apikey }
`);
});
after(async () => {
  await g.close();
  await up.close();
});

/** Sends `target` raw; returns the status and the path the upstream received (null: nothing reached it). */
async function probe(target: string): Promise<{ status: number; upstreamPath: string | null }> {
  up.reset();
  const r = parseResponse(await rawExchange(g.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
  await new Promise((res) => setTimeout(res, 20));
  return { status: r.status, upstreamPath: up.received[0]?.url ?? null };
}

/** Never reaches /admin on the upstream without the key: refused, or forwarded to a path outside /admin. */
async function neverAdmin(target: string, expect?: number): Promise<void> {
  const r = await probe(target);
  if (expect !== undefined) assert.equal(r.status, expect, `${target} → ${r.status}`);
  if (r.upstreamPath !== null) {
    const p = r.upstreamPath.split('?')[0];
    assert.ok(!/^\/+admin/i.test(decodeURIComponent(p).replace(/\\/g, '/')), `${target} reached the upstream as ${r.upstreamPath}`);
    assert.ok(!/(^|\/)\.\.?(;|\/|$)/.test(decodeURIComponent(p)), `${target} reached the upstream with a dot segment: ${r.upstreamPath}`);
  }
}

test('baseline: /admin needs the key (401), /public is forwarded as is', async () => {
  assert.equal((await probe('/admin/users')).status, 401);
  const r = await probe('/public/x');
  assert.equal(r.status, 200);
  assert.equal(r.upstreamPath, '/public/x');
});

test('Envoy CVE-2019-9901 / RFC 3986 §5.2.4: "/public/../admin" is matched as /admin (401), never forwarded unresolved', async () => {
  await neverAdmin('/public/../admin/users', 401);
  await neverAdmin('/public/./../admin/users', 401);
  await neverAdmin('/public/x/../../admin', 401);
});

test('Envoy CVE-2019-9901: percent-encoded dot segments ("%2e%2e", "%2E.", ".%2e") are decoded before matching', async () => {
  for (const t of ['/public/%2e%2e/admin', '/public/%2E%2E/admin/x', '/public/.%2e/admin', '/public/%2e./admin']) await neverAdmin(t, 401);
});

test('Envoy CVE-2021-29492 / Istio CVE-2021-31920: an encoded slash or backslash ("%2f", "%2F", "%5c") → 400', async () => {
  for (const t of ['/public%2f..%2fadmin', '/public/..%2Fadmin', '/public/..%5cadmin', '/public/%2e%2e%2fadmin']) await neverAdmin(t, 400);
});

test('double encoding ("%252e%252e", "%252f") is data: forwarded still encoded once, never decoded twice', async () => {
  const r = await probe('/public/%252e%252e/admin');
  assert.equal(r.status, 200);
  assert.equal(r.upstreamPath, '/public/%252e%252e/admin');
  await neverAdmin('/public/%252e%252e%252fadmin', 200);
});

test('a raw backslash ("/public\\..\\admin") → 400 (IIS and some frameworks read it as "/")', async () => {
  await neverAdmin('/public\\..\\admin', 400);
  await neverAdmin('/public/..\\admin', 400);
});

test('APISIX CVE-2021-43557 / Istio CVE-2021-31920: "//admin" and "/public//../admin" are collapsed before matching', async () => {
  await neverAdmin('//admin/users', 401);
  await neverAdmin('///admin', 401);
  await neverAdmin('/public//../admin', 401);
});

test('Apache Shiro CVE-2020-1957 / Tomcat path parameters: "/public/..;/admin" (read as "..") → 400, never forwarded', async () => {
  await neverAdmin('/public/..;/admin', 400);
  await neverAdmin('/public/..;x=1/admin', 400);
  await neverAdmin('/public/.;/x', 400);
  await neverAdmin('/public/%2e%2e;/admin', 400);
  // a ";" elsewhere in a segment is data
  const ok = await probe('/public/a;b=1/c');
  assert.equal(ok.status, 200);
  assert.equal(ok.upstreamPath, '/public/a;b=1/c');
});

test('path parameters on an ordinary segment (Spring/Tomcat strip ";…" before routing, CVE-2020-1957 class): "/public/vault;x" would reach the key-protected /public/vault under the public route → 400, never forwarded', async () => {
  for (const target of ['/public/vault;x', '/public/vault;jsessionid=1/keys', '/public;x/vault/keys', '/public/vault;/keys']) {
    const r = await probe(target);
    assert.equal(r.status, 400, target);
    assert.equal(r.upstreamPath, null, `${target} reached the upstream`);
  }
  // Control: the protected route itself asks for the key.
  assert.equal((await probe('/public/vault/keys')).status, 401);
  // A ";" that routes the same either way is data and passes untouched.
  for (const target of ['/public/file;v=2', '/public/vaulted;x', '/admin;x/y'.replace('/admin', '/public/a')]) {
    const r = await probe(target);
    assert.equal(r.status, 200, target);
    assert.equal(r.upstreamPath, target);
  }
});

test('Traefik CVE-2026-48020: "/api../admin" does not match the stripped /api prefix into /admin upstream', async () => {
  await neverAdmin('/api../admin');
  await neverAdmin('/api%2e%2e/admin');
  await neverAdmin('/api/../admin', 401);
  const r = await probe('/api/v1/x');
  assert.equal(r.upstreamPath, '/v1/x');
});

test('NUL ("%00") and overlong UTF-8 dots ("%c0%ae", CVE-2000-0884 class) → 400', async () => {
  for (const t of ['/public/%00/../admin', '/public/x%00', '/public/%c0%ae%c0%ae/admin', '/public/%e0%80%ae%e0%80%ae/admin']) await neverAdmin(t, 400);
});

test('unicode look-alikes (fullwidth solidus "%EF%BC%8F", fullwidth dots) are forwarded encoded under the matched prefix', async () => {
  for (const t of ['/public/%EF%BC%8F..%EF%BC%8Fadmin', '/public/%EF%BC%8E%EF%BC%8E/admin', '/%EF%BC%A1dmin']) {
    const r = await probe(t);
    if (r.upstreamPath !== null) assert.ok(r.upstreamPath.startsWith('/public/'), `${t} → ${r.upstreamPath}`);
  }
});

test('case and trailing dots: "/ADMIN" is not /admin (404, not forwarded); "/admin/." and "/admin/x/.." stay under /admin (401)', async () => {
  const upper = await probe('/ADMIN/users');
  assert.equal(upper.status, 404);
  assert.equal(upper.upstreamPath, null);
  await neverAdmin('/admin/.', 401);
  await neverAdmin('/admin/x/..', 401);
});

test('dot segments past the root ("/../../admin") resolve to /admin (RFC 3986 §5.2.4), never above it', async () => {
  await neverAdmin('/../../admin', 401);
  await neverAdmin('/public/../../../admin', 401);
});

test('the query is not part of the path: "/public?/../admin" is /public with a query, forwarded byte for byte', async () => {
  const r = await probe('/public?/../admin');
  assert.equal(r.status, 200);
  assert.equal(r.upstreamPath, '/public?/../admin');
});

test('the matched path is what goes up: 40 mixed spellings of /public/a/b all arrive as /public/a/b', async () => {
  const spellings = ['/public/a/b', '/public//a/b', '/public/./a/b', '/public/a/./b', '/public/x/../a/b', '/public/a/b/c/..', '/%70ublic/a/b', '/public/%61/b', '/public/a/%62', '//public/a//b'];
  for (let i = 0; i < 40; i++) {
    const t = spellings[i % spellings.length];
    const r = await probe(t);
    assert.equal(r.status, 200, t);
    assert.equal(r.upstreamPath, t.endsWith('/..') ? '/public/a/b/' : '/public/a/b', t);
  }
});

test('Shiro CVE-2020-11989 class: "/admin;x/users" is not the /admin route (no prefix match through a path parameter), and a servlet would read it as /admin/users: 400, not forwarded', async () => {
  const r = await probe('/admin;jsessionid=x/users');
  assert.equal(r.status, 400);
  assert.equal(r.upstreamPath, null);
});
