import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { loadConfigText } from '../../src/config/load.ts';
import { resolveSecurityHeaders } from '../../src/policies/security-headers.ts';
import { startGateway } from '../helpers.ts';

/** An upstream that sets some security headers of its own (an embeddable widget, a page with its own CSP). */
async function upstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    const own: Record<string, string> = req.url === '/widget' ? { 'X-Frame-Options': 'SAMEORIGIN', 'content-security-policy': "frame-ancestors https://partner.io" } : {};
    res.writeHead(200, { 'content-type': 'text/html', ...own });
    res.end('<p>hi</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const DEFAULTS = { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'strict-origin-when-cross-origin' };

function assertDefaults(h: Record<string, unknown>, what: string): void {
  for (const [k, v] of Object.entries(DEFAULTS)) assert.equal(h[k], v, `${what}: ${k}`);
}

test('resolving the header set: defaults, off, maps over the server set, "" removes', () => {
  const d = resolveSecurityHeaders('default', undefined);
  assert.deepEqual([...d.keys()].sort(), ['referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options']);
  assert.equal(resolveSecurityHeaders('off', undefined).size, 0);
  const server = { 'Content-Security-Policy': "default-src 'none'", 'X-Frame-Options': '' };
  const s = resolveSecurityHeaders(server, undefined);
  assert.equal(s.get('content-security-policy'), "default-src 'none'");
  assert.equal(s.has('x-frame-options'), false);
  const r = resolveSecurityHeaders(server, { 'Permissions-Policy': 'camera=()' });
  assert.equal(r.get('content-security-policy'), "default-src 'none'", 'a route map builds on the server set');
  assert.equal(r.get('permissions-policy'), 'camera=()');
  assert.equal(resolveSecurityHeaders(server, 'default').get('x-frame-options'), 'DENY');
  assert.equal(resolveSecurityHeaders('off', { 'X-Frame-Options': 'DENY' }).size, 1, 'a route map over "off" is just the map');
  assert.equal(resolveSecurityHeaders('default', 'off').size, 0);
});

test('security headers are on passed-through and gateway responses; the upstream\'s own value wins', async (t) => {
  const up = await upstream();
  const g = await startGateway(`
upstreams:
  web: { targets: [ ${up.url} ] }
  down: { targets: [ "http://127.0.0.1:9" ] }
routes:
  - { name: page, match: { path: /page }, upstream: web, auth: public }
  - { name: widget, match: { path: /widget }, upstream: web, auth: public }
  - { name: json, match: { path: /json, methods: [POST] }, upstream: web, auth: public, contentTypes: [application/json] }
  - { name: down, match: { path: /down }, upstream: down, auth: public }
`);
  t.after(async () => { await g.close(); await up.close(); });

  const page = await request(`${g.url}/page`);
  await page.body.dump();
  assertDefaults(page.headers, 'passed-through');
  assert.equal(page.headers['strict-transport-security'], undefined, 'no HSTS over plain http');

  const widget = await request(`${g.url}/widget`);
  await widget.body.dump();
  assert.equal(widget.headers['x-frame-options'], 'SAMEORIGIN', 'one value, the upstream\'s');
  assert.equal(widget.headers['content-security-policy'], 'frame-ancestors https://partner.io');
  assert.equal(widget.headers['x-content-type-options'], 'nosniff', 'what the upstream did not set is still added');

  for (const [path, status, init] of [['/nowhere', 404, {}], ['/json', 415, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }], ['/down', 502, {}]] as const) {
    const r = await request(`${g.url}${path}`, init as never);
    await r.body.dump();
    assert.equal(r.statusCode, status);
    assertDefaults(r.headers, `gateway ${status}`);
  }
});

test('HSTS only over https: behind a trusted proxy that says so, never on an untrusted peer\'s word', async (t) => {
  const up = await upstream();
  const trusted = await startGateway(`
server: { trustedProxies: [127.0.0.1] }
upstreams: { web: { targets: [ ${up.url} ] } }
routes: [ { match: { path: /page }, upstream: web, auth: public } ]
`);
  const untrusted = await startGateway(`
server: { trustedProxies: [10.0.0.0/8] }
upstreams: { web: { targets: [ ${up.url} ] } }
routes: [ { match: { path: /page }, upstream: web, auth: public } ]
`);
  t.after(async () => { await trusted.close(); await untrusted.close(); await up.close(); });
  const hsts = async (url: string, proto?: string) => {
    const r = await request(`${url}/page`, { headers: proto ? { 'x-forwarded-proto': proto } : {} });
    await r.body.dump();
    return r.headers['strict-transport-security'];
  };
  assert.equal(await hsts(trusted.url, 'https'), 'max-age=63072000; includeSubDomains');
  assert.equal(await hsts(trusted.url, 'https, http'), 'max-age=63072000; includeSubDomains', 'the client-facing hop is first');
  assert.equal(await hsts(trusted.url, 'http'), undefined);
  assert.equal(await hsts(trusted.url), undefined);
  assert.equal(await hsts(untrusted.url, 'https'), undefined);
  const notFound = await request(`${trusted.url}/nope`, { headers: { 'x-forwarded-proto': 'https' } });
  await notFound.body.dump();
  assert.equal(notFound.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains', 'gateway errors too');
});

test('server and route settings: off, maps that add and remove', async (t) => {
  const up = await upstream();
  const g = await startGateway(`
server:
  securityHeaders: { Content-Security-Policy: "default-src 'none'" }
upstreams: { web: { targets: [ ${up.url} ] } }
routes:
  - { match: { path: /page }, upstream: web, auth: public }
  - { match: { path: /embed }, upstream: web, auth: public, securityHeaders: { X-Frame-Options: "", Cross-Origin-Opener-Policy: same-origin } }
  - { match: { path: /raw }, upstream: web, auth: public, securityHeaders: off }
`);
  const off = await startGateway(`
server: { securityHeaders: off }
upstreams: { web: { targets: [ ${up.url} ] } }
routes: [ { match: { path: /page }, upstream: web, auth: public } ]
`);
  t.after(async () => { await g.close(); await off.close(); await up.close(); });
  const get = async (url: string) => { const r = await request(url); await r.body.dump(); return r.headers; };

  const page = await get(`${g.url}/page`);
  assertDefaults(page, 'server map');
  assert.equal(page['content-security-policy'], "default-src 'none'");
  const embed = await get(`${g.url}/embed`);
  assert.equal(embed['x-frame-options'], undefined);
  assert.equal(embed['cross-origin-opener-policy'], 'same-origin');
  assert.equal(embed['content-security-policy'], "default-src 'none'");
  const raw = await get(`${g.url}/raw`);
  for (const k of [...Object.keys(DEFAULTS), 'content-security-policy']) assert.equal(raw[k], undefined, k);
  const none = await get(`${off.url}/page`);
  for (const k of Object.keys(DEFAULTS)) assert.equal(none[k], undefined, k);
});

test('header names and values that would break responses do not load', () => {
  const load = (sh: string) => () => loadConfigText(`
upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }
routes: [ { match: { path: /a }, upstream: a, auth: public, securityHeaders: ${sh} } ]
`, 't.yaml', { env: {} });
  assert.throws(load('{ Content-Length: "5" }'), /not a security header/);
  assert.throws(load('{ "Bad Name": x }'), /not a header name/);
  assert.throws(load('{ X-Test: "a\\r\\nInjected: 1" }'), /line breaks/);
});
