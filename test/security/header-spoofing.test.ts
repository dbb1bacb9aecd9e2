// Header spoofing, over raw sockets: what an upstream receives when a client forges the headers the gateway
// owns (identity, forwarding, framework-internal), in the spellings upstream frameworks fold together.
// Cases from the CVE histories of Traefik, APISIX and Next.js, and RFC 9110 §7.6.1 (Connection).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';

const KEY = 'hs-acme-key-0123456789';
let up: DemoServer;
let plain: TestGateway;
let trusting: TestGateway;

const yaml = (url: string, server = '') => `
${server}
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "0123456789abcdef0123456789abcdef", claimsToHeaders: { sub: X-User-Id, org: X-Org-Id } } ]
consumers: [ { id: acme, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { demo: { targets: [ ${url} ] } }
defaults: { auth: public }
routes:
  - { name: echo, match: { path: /echo }, upstream: demo }
  - { name: keyed, match: { path: /keyed }, upstream: demo, auth: apikey }
`;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  plain = await startGateway(yaml(up.url));
  trusting = await startGateway(yaml(up.url, 'server: { trustedProxies: [ 127.0.0.0/8 ] }'));
});
after(async () => { await plain.close(); await trusting.close(); await up.close(); });

/** Sends raw header lines to `path` and returns the headers the upstream received (demo echo). */
async function sent(g: TestGateway, lines: string[], path = '/echo'): Promise<Record<string, string | undefined>> {
  const r = await rawRequest(g.port, [`GET ${path} HTTP/1.1`, 'Host: gw.example', ...lines].join('\r\n'));
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
}

test('issue 11 #1: identity-header look-alikes (X_User_Id, X.User.Id, x-USER_id) never reach the upstream', async () => {
  const h = await sent(plain, ['X_User_Id: admin', 'X.User.Id: admin', 'x-USER_id: admin', 'X_Consumer_Id: acme', 'X.Org.Id: 1', 'X-User-Id: admin']);
  for (const k of Object.keys(h)) assert.doesNotMatch(k.replace(/[_.]/g, '-'), /^x-(user|consumer|org)-/, `${k} reached the upstream`);
});

test('issue 11 #1: look-alikes of gateway-set headers are stripped on an authenticated route too; the real one is the gateway\'s', async () => {
  const h = await sent(plain, [`X-API-Key: ${KEY}`, 'X_Consumer_Id: root', 'X.Consumer.Plan: enterprise'], '/keyed');
  assert.equal(h['x-consumer-id'], 'acme');
  assert.equal(h.x_consumer_id, undefined);
  assert.equal(h['x.consumer.plan'], undefined);
});

test('issue 11 #1, CVE-2025-29927: x-middleware-subrequest (Next.js middleware bypass) is stripped by default, in every spelling', async () => {
  const h = await sent(plain, ['x-middleware-subrequest: middleware:middleware:middleware:middleware:middleware', 'X_Middleware_Subrequest: middleware']);
  assert.equal(h['x-middleware-subrequest'], undefined);
  assert.equal(h.x_middleware_subrequest, undefined);
});

test('issue 11 #1: the gateway namespaces x-gateway-* and x-consumer-* are stripped by default', async () => {
  const h = await sent(plain, ['X-Gateway-Verified: true', 'x_gateway_route: admin', 'X-Consumer-Groups: admins', 'X-Consumer-Custom-Id: 1', 'X-Keep: yes']);
  assert.deepEqual(Object.keys(h).filter((k) => /^x[-_.](gateway|consumer)/.test(k)), []);
  assert.equal(h['x-keep'], 'yes');
});

test('issue 11 #1: X-Original-URL / X-Rewrite-URL (routing past the gateway on IIS/Symfony, CVE-2018-14773) are stripped by default', async () => {
  const h = await sent(plain, ['X-Original-URL: /admin', 'X-Rewrite-URL: /admin']);
  assert.equal(h['x-original-url'], undefined);
  assert.equal(h['x-rewrite-url'], undefined);
});

test('issue 11 #1: server.stripHeaders replaces the list with names and prefix-* patterns (folded too); identity headers stay stripped', async (t) => {
  const custom = await startGateway(yaml(up.url, 'server: { stripHeaders: [ x-internal-*, x-debug ] }'));
  t.after(() => custom.close());
  const h = await sent(custom, ['X-Internal-Role: admin', 'x_internal_tenant: 7', 'X-Debug: 1', 'X.Debug: 1', 'X_User_Id: admin', 'X-Middleware-Subrequest: middleware', 'X-Internalish: kept']);
  assert.equal(h['x-internal-role'], undefined);
  assert.equal(h.x_internal_tenant, undefined);
  assert.equal(h['x-debug'], undefined);
  assert.equal(h['x.debug'], undefined);
  assert.equal(h.x_user_id, undefined);
  assert.equal(h['x-middleware-subrequest'], 'middleware', 'the file replaced the default list');
  assert.equal(h['x-internalish'], 'kept');
});

test('server.stripHeaders: a bare "*" or a name with a space is refused at load', async () => {
  const { loadConfigText } = await import('../../src/config/load.ts');
  for (const bad of ['"*"', '"x bad"']) {
    assert.throws(() => loadConfigText(yaml(up.url, `server: { stripHeaders: [ ${bad} ] }`), 't.yaml', { env: {} }), /stripHeaders/);
  }
});

test('issue 11 #10, CVE-2016-5385 (httpoxy): the Proxy request header never reaches the upstream', async () => {
  const h = await sent(plain, ['Proxy: http://evil.example:8080', 'X-Keep: yes']);
  assert.equal(h.proxy, undefined);
  assert.equal(h['x-keep'], 'yes');
});

test('issue 11 #10, Traefik v2.11.14 (X-Forwarded-Prefix): every X-Forwarded-* from an untrusted peer is dropped', async () => {
  const h = await sent(plain, ['X-Forwarded-Prefix: /admin', 'X-Forwarded-Port: 443', 'X-Forwarded-Server: evil', 'X-Forwarded-Uri: /admin', 'X-Forwarded-Client-Cert: Hash=abc;Subject="CN=admin"', 'X-Forwarded-Ssl: on', 'X_Forwarded_Prefix: /admin']);
  const xf = Object.keys(h).filter((k) => k.replace(/_/g, '-').startsWith('x-forwarded-')).sort();
  assert.deepEqual(xf, ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
});

test('issue 11 #10: from a trusted proxy, the X-Forwarded-* the gateway does not build pass through', async () => {
  const h = await sent(trusting, ['X-Forwarded-Prefix: /api', 'X-Forwarded-Port: 443', 'X-Forwarded-Proto: https']);
  assert.equal(h['x-forwarded-prefix'], '/api');
  assert.equal(h['x-forwarded-port'], '443');
  assert.equal(h['x-forwarded-proto'], 'https');
});

test('WSGI/CGI folding: X_Forwarded_For / X_Real_IP look-alikes are dropped even from a trusted proxy (they would shadow the gateway\'s)', async () => {
  const h = await sent(trusting, ['X_Forwarded_For: 6.6.6.6', 'X.Real.IP: 6.6.6.6', 'X_Request_Id: forged', 'Trace_Parent: x']);
  assert.equal(h.x_forwarded_for, undefined);
  assert.equal(h['x.real.ip'], undefined);
  assert.equal(h.x_request_id, undefined);
  assert.equal(h['x-real-ip'], '127.0.0.1');
});

test('CVE-2024-45410 / GHSA-92mv-8f8w-wq52 (Traefik): naming gateway-set headers in Connection (any case) does not remove them', async () => {
  const h = await sent(plain, ['Connection: keep-alive, X-Forwarded-For, x-real-ip, X-FORWARDED-HOST, X-Request-Id, traceparent', 'X-Request-Id: abc-123'], '/echo');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.ok(h['x-forwarded-host']);
  assert.ok(h['x-request-id']);
  assert.match(h.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
});

test('CVE-2021-32813 (Traefik): Connection naming X-Consumer-Id cannot remove the identity the gateway sets', async () => {
  const h = await sent(plain, [`X-API-Key: ${KEY}`, 'Connection: X-Consumer-Id'], '/keyed');
  assert.equal(h['x-consumer-id'], 'acme');
});

test('CVE-2022-24112 (APISIX, X-Real-IP spoofing): a forged X-Real-IP / X-Forwarded-For from an untrusted peer does not become the client IP', async () => {
  const h = await sent(plain, ['X-Real-IP: 10.0.0.1', 'X-Forwarded-For: 10.0.0.1', 'Forwarded: for=10.0.0.1']);
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h.forwarded, undefined);
});

test('an API-key header that stripHeaders would remove, with hideCredentials: false, is a load warning naming the key', async () => {
  const { loadConfigText } = await import('../../src/config/load.ts');
  const w = loadConfigText(yaml(up.url).replace('consumers:', '  apiKeys: { header: X-Gateway-Key, hideCredentials: false }\nconsumers:'), 't.yaml', { env: {} }).warnings;
  assert.ok(w.some((x) => x.startsWith('auth.apiKeys.header') && x.includes('stripHeaders')), w.join('\n'));
  const ok = loadConfigText(yaml(up.url).replace('consumers:', '  apiKeys: { header: X-Service-Key, hideCredentials: false }\nconsumers:'), 't.yaml', { env: {} }).warnings;
  assert.ok(!ok.some((x) => x.includes('stripHeaders')));
});
