// TLS on the main listener, over real sockets: certificates chosen by SNI (exact, wildcard, default), ALPN
// (h2, then http/1.1), certificate files replaced on disk while a stream is open, client certificates (mTLS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { startDemoServer } from '../../src/demo/services.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { Gateway } from '../../src/gateway.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { startGateway, eventually } from '../helpers.ts';
import { makeCa } from '../support/certs.ts';
import { h2connect, h2request } from '../support/h2.ts';

/** The certificate a TLS handshake with SNI `servername` (none when undefined) is answered with, and the ALPN protocol chosen. */
function handshake(port: number, o: { servername?: string; ca: string; alpn?: string[]; cert?: string; key?: string }): Promise<{ cert: PeerCertificate; alpn: string | false; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: o.servername, ca: o.ca, ALPNProtocols: o.alpn, rejectUnauthorized: false, cert: o.cert, key: o.key }, () => {
      resolve({ cert: s.getPeerCertificate(), alpn: s.alpnProtocol ?? false, authorized: s.authorized });
      s.end();
    });
    s.on('error', reject);
  });
}

test('SNI picks the certificate: exact name, one-label wildcard, the default for no SNI or an unknown name; ALPN offers h2 then http/1.1', async (t) => {
  const ca = makeCa();
  const api = ca.server('api', ['api.example.test']);
  const wild = ca.server('wild', ['*.apps.example.test']);
  const fallback = ca.server('fallback', ['fallback.example.test']);
  const up = await startDemoServer({ name: 'chat' });
  const gw = await startGateway(`
server:
  tls:
    certificates:
      - { cert: ${api.cert}, key: ${api.key} }
      - { cert: ${wild.cert}, key: ${wild.key} }
      - { cert: ${fallback.cert}, key: ${fallback.key}, default: true }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
`);
  t.after(async () => { await gw.close(); await up.close(); ca.cleanup(); });
  const cn = async (servername?: string) => (await handshake(gw.port, { servername, ca: ca.certPem })).cert.subject.CN;
  assert.equal(await cn('api.example.test'), 'api.example.test');
  assert.equal(await cn('API.Example.Test'), 'api.example.test', 'names are case-insensitive');
  assert.equal(await cn('one.apps.example.test'), '*.apps.example.test');
  assert.equal(await cn('two.one.apps.example.test'), 'fallback.example.test', 'a wildcard covers exactly one label');
  assert.equal(await cn('unknown.test'), 'fallback.example.test');
  assert.equal(await cn(undefined), 'fallback.example.test');

  // ALPN: an h2 client gets h2, an HTTP/1.1-only client gets http/1.1, both on the same port.
  assert.equal((await handshake(gw.port, { servername: 'api.example.test', ca: ca.certPem, alpn: ['h2', 'http/1.1'] })).alpn, 'h2');
  assert.equal((await handshake(gw.port, { servername: 'api.example.test', ca: ca.certPem, alpn: ['http/1.1'] })).alpn, 'http/1.1');

  // A verified HTTPS request through node:http2 with SNI (the certificate must match the name, or the client refuses).
  const s = await h2connect(`https://api.example.test:${gw.port}`, { ca: ca.certPem });
  t.after(() => s.close());
  assert.equal((s.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2');
  const r = await h2request(s, '/echo?x=1', { headers: { 'x-probe': 'h2' } });
  assert.equal(r.status, 200);
  const echoed = JSON.parse(r.body) as { headers: Record<string, string>; query: string };
  assert.equal(echoed.headers['x-forwarded-proto'], 'https');
  assert.equal(echoed.headers['x-forwarded-host'], `api.example.test:${gw.port}`, ':authority stands in for Host');
  assert.equal(echoed.headers['x-probe'], 'h2');
  assert.equal(echoed.query, 'x=1');
  assert.ok(!Object.keys(echoed.headers).some((k) => k.startsWith(':')), 'pseudo-headers are not forwarded');
  assert.equal(r.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains', 'HSTS over h2 (the gateway terminates TLS)');

  // ALPN fallback: an HTTP/1.1 client on the same listener.
  const h1 = await new Promise<{ version: string; status: number; hsts: unknown }>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port: gw.port, path: '/echo', servername: 'x.apps.example.test', ca: ca.certPem, headers: { host: 'x.apps.example.test' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ version: res.httpVersion, status: res.statusCode!, hsts: res.headers['strict-transport-security'] }));
    }).on('error', reject).end();
  });
  assert.deepEqual(h1, { version: '1.1', status: 200, hsts: 'max-age=63072000; includeSubDomains' });
});

test('certificate files replaced on disk: new handshakes get the new certificate while a stream opened before continues to its end', async (t) => {
  const ca = makeCa();
  const first = ca.server('first', ['api.example.test']);
  const second = ca.server('second', ['api.example.test']);
  const live = ca.server('live', ['api.example.test']);
  const up = await startDemoServer({ name: 'chat' });
  const gw = await startGateway(`
server:
  tls:
    certificates: [ { cert: ${live.cert}, key: ${live.key} } ]
    reloadInterval: 100ms
admin: { listen: 127.0.0.1:0 }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  - { name: stream, match: { path: /v1/chat/stream, methods: [GET] }, upstream: chat, auth: public }
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
`);
  t.after(async () => { await gw.close(); await up.close(); ca.cleanup(); });
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const serial = async () => (await handshake(gw.port, { servername: 'api.example.test', ca: ca.certPem })).cert.serialNumber;
  const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
  await eventually(async () => (await serial()) === serialOf(first.certPem), 5000);

  // A 20-event stream (100 ms apart) opened on the first certificate...
  const s = await h2connect(`https://api.example.test:${gw.port}`, { ca: ca.certPem });
  t.after(() => s.close());
  const peerSerial = (s.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate().serialNumber;
  assert.equal(peerSerial, serialOf(first.certPem));
  const stream = h2request(s, '/v1/chat/stream?n=20&delay=100');
  await new Promise((r) => setTimeout(r, 300));
  // ...while the files are replaced (key first, then the certificate: a half-written rotation must not break anything).
  copyFileSync(second.key, live.key);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(await serial(), serialOf(first.certPem), 'a key that does not match its certificate is not taken; the previous pair keeps serving');
  copyFileSync(second.cert, live.cert);
  await eventually(async () => (await serial()) === serialOf(second.certPem), 5000);

  const done = await stream;
  assert.equal(done.status, 200);
  assert.equal(done.body.split('\n\n').filter((e) => e.startsWith('data: {')).length, 21, 'every event (20 tokens and the usage event) arrived on the old connection');
  assert.ok(done.body.includes('data: [DONE]'));
  // The old connection still works for new streams, on its old certificate.
  assert.equal((await h2request(s, '/echo')).status, 200);
  // A new connection negotiates h2 on the new certificate.
  const s2 = await h2connect(`https://api.example.test:${gw.port}`, { ca: ca.certPem });
  t.after(() => s2.close());
  assert.equal((s2.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2');
  assert.equal((s2.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate().serialNumber, serialOf(second.certPem));
  assert.equal((await h2request(s2, '/echo')).status, 200);
  assert.ok(gw.logs.some((l) => l.msg === 'tls: certificates reloaded from disk'));
  assert.ok(gw.logs.some((l) => l.msg === 'tls: certificate files changed but do not load; the previous certificates keep serving'));
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  assert.match(metrics, /gatehouse_tls_certificate_expiry_timestamp_seconds\{certificate="api\.example\.test"\} \d+/);
});

test('client certificates: required refuses a handshake without one (or from another CA); optional lets it through without the identity headers; a verified subject reaches the upstream and inbound copies never do', async (t) => {
  const ca = makeCa();
  const other = makeCa('Other CA');
  const server = ca.server('server', ['api.example.test']);
  const alice = ca.client('alice', 'alice', 'Acme, Inc.');
  const mallory = other.client('mallory', 'alice');
  const up = await startDemoServer({ name: 'chat' });
  const config = (mode: string) => `
server:
  tls:
    certificates: [ { cert: ${server.cert}, key: ${server.key} } ]
    clientAuth: { ca: ${ca.cert}, mode: ${mode}, headers: { subject: X-Client-Subject, fingerprint: X-Client-Cert-Sha256 } }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
`;
  const required = await startGateway(config('required'));
  const optional = await startGateway(config('optional'));
  t.after(async () => { await required.close(); await optional.close(); await up.close(); ca.cleanup(); other.cleanup(); });
  const origin = (port: number) => `https://api.example.test:${port}`;
  const echo = async (port: number, client?: { cert: string; key: string }) => {
    const s = await h2connect(origin(port), { ca: ca.certPem, ...client });
    try {
      const r = await h2request(s, '/echo', { headers: { 'x-client-subject': 'CN=forged', 'x-client-cert-sha256': 'forged' } });
      return { status: r.status, headers: (JSON.parse(r.body) as { headers: Record<string, string> }).headers };
    } finally { s.close(); }
  };
  const withCert = { cert: alice.certPem, key: alice.key && (await import('node:fs')).readFileSync(alice.key, 'utf8') };
  const fingerprint = new X509Certificate(alice.certPem).fingerprint256.replace(/:/g, '').toLowerCase();

  // required: accepted with a certificate from the CA, and the upstream learns who it is
  const ok = await echo(required.port, withCert);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-client-subject'], 'CN=alice,O=Acme\\, Inc.');
  assert.equal(ok.headers['x-client-cert-sha256'], fingerprint);
  // refused without one, and with one from another CA (same subject)
  await assert.rejects(echo(required.port));
  const malloryCert = { cert: mallory.certPem, key: (await import('node:fs')).readFileSync(mallory.key, 'utf8') };
  await assert.rejects(echo(required.port, malloryCert));

  // optional: no certificate → served, and the forged identity headers are gone
  const anon = await echo(optional.port);
  assert.equal(anon.status, 200);
  assert.equal(anon.headers['x-client-subject'], undefined);
  assert.equal(anon.headers['x-client-cert-sha256'], undefined);
  // an unverified certificate (another CA) is not an identity either
  const unverified = await echo(optional.port, malloryCert);
  assert.equal(unverified.status, 200);
  assert.equal(unverified.headers['x-client-subject'], undefined);
  const verified = await echo(optional.port, withCert);
  assert.equal(verified.headers['x-client-subject'], 'CN=alice,O=Acme\\, Inc.');
});

test('a certificate that is missing or does not match its key stops the config from loading, with the key path', () => {
  const ca = makeCa();
  const a = ca.server('a', ['a.test']);
  const b = ca.server('b', ['b.test']);
  try {
    const load = (cert: string, key: string) => new Gateway(loadConfigText(`
server: { tls: { certificates: [ { cert: ${cert}, key: ${key} } ] } }
upstreams: { u: { targets: [ http://127.0.0.1:1 ] } }
routes: [ { match: { path: / }, upstream: u, auth: public } ]
`, 'x.yaml', { env: {} }), { defaultMetrics: false, logger: undefined });
    assert.throws(() => load(`${ca.dir}/nope.crt`, a.key), (e: unknown) => e instanceof ConfigError && /server\.tls\.certificates\[0\]\.cert: cannot read .*ENOENT/.test(e.message));
    assert.throws(() => load(a.cert, b.key), (e: unknown) => e instanceof ConfigError && /server\.tls\.certificates\[0\]\.key: .* does not go with/.test(e.message));
  } finally { ca.cleanup(); }
});

test('http2.enabled: false serves HTTPS over HTTP/1.1 only (ALPN offers no h2), and drains like the plain listener', async (t) => {
  const ca = makeCa();
  const server = ca.server('server', ['api.example.test']);
  const up = await startDemoServer({ name: 'chat' });
  const gw = await startGateway(`
server:
  tls: { certificates: [ { cert: ${server.cert}, key: ${server.key} } ] }
  http2: { enabled: false }
upstreams: { chat: { targets: [ ${up.url} ] } }
routes:
  - { name: echo, match: { path: /echo }, upstream: chat, auth: public }
`);
  t.after(async () => { await gw.close(); await up.close(); ca.cleanup(); });
  const hs = await handshake(gw.port, { servername: 'api.example.test', ca: ca.certPem, alpn: ['h2', 'http/1.1'] });
  assert.notEqual(hs.alpn, 'h2');
  const r = await new Promise<{ status: number; proto: string; hsts: unknown }>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port: gw.port, path: '/echo', servername: 'api.example.test', ca: ca.certPem, headers: { host: 'api.example.test' } }, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode!, proto: JSON.parse(b).headers['x-forwarded-proto'], hsts: res.headers['strict-transport-security'] }));
    }).on('error', reject).end();
  });
  assert.deepEqual(r, { status: 200, proto: 'https', hsts: 'max-age=63072000; includeSubDomains' });
  await gw.gw.drain(2000);
  assert.equal(gw.gw.listener.listening, false);
});
