import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';

/**
 * A local stand-in for the providers' siteverify endpoints. The token decides the answer:
 * good | bad | low | wrong-action | wrong-host | slow | boom. Answers take each provider's shape.
 */
async function fakeProvider() {
  const seen: Array<{ path: string; form: URLSearchParams }> = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const form = new URLSearchParams(body);
    const path = req.url ?? '';
    seen.push({ path, form });
    const token = form.get('response');
    const json = (o: unknown, status = 200) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (form.get('secret') === 'rejected-by-provider-0123456789') return json({ success: false, 'error-codes': ['invalid-input-secret'] });
    if (token === 'boom') return json({ error: 'down' }, 502);
    if (token === 'slow') { const t = setTimeout(() => json({ success: true, score: 0.9, action: 'login', hostname: 'app.example.com' }), 2000); res.on('close', () => clearTimeout(t)); return; }
    if (token === 'bad') return json({ success: false, 'error-codes': ['invalid-input-response'] });
    const ok = { success: true, challenge_ts: new Date().toISOString(), hostname: token === 'wrong-host' ? 'evil.io' : 'app.example.com' };
    if (path === '/recaptcha') return json({ ...ok, score: token === 'low' ? 0.1 : 0.9, action: token === 'wrong-action' ? 'signup' : 'login' });
    if (path === '/turnstile') return json({ ...ok, action: token === 'wrong-action' ? 'signup' : 'login', cdata: '' });
    return json(ok); // hCaptcha
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A port with nothing listening. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const SECRETS = { v2: 'v2-secret-5f1c2a9e8b7d6c5b4a3f', v3: 'v3-secret-9a8b7c6d5e4f3a2b1c0d', h: '0xh-secret-1234567890abcdef', ts: '0xts-secret-abcdef1234567890' };

interface Setup { g: TestGateway; fake: Awaited<ReturnType<typeof fakeProvider>>; up: Awaited<ReturnType<typeof startDemoServer>> }

async function setup(t: { after(fn: () => Promise<void>): void }): Promise<Setup> {
  const fake = await fakeProvider();
  const up = await startDemoServer({ name: 'auth' });
  const dead = await closedPort();
  const g = await startGateway(`
captcha:
  v2: { provider: recaptcha-v2, secret: ${SECRETS.v2}, tokenField: recaptcha_token, verifyUrl: "${fake.url}/recaptcha", timeout: 400ms }
  v3: { provider: recaptcha-v3, secret: ${SECRETS.v3}, minScore: 0.5, action: login, hostnames: [app.example.com], tokenField: recaptcha_token, verifyUrl: "${fake.url}/recaptcha", timeout: 400ms }
  h: { provider: hcaptcha, secret: ${SECRETS.h}, hostnames: [app.example.com], verifyUrl: "${fake.url}/hcaptcha", timeout: 400ms }
  ts: { provider: turnstile, secret: ${SECRETS.ts}, action: login, tokenHeader: X-Turnstile-Token, verifyUrl: "${fake.url}/turnstile", timeout: 400ms }
  dead: { provider: recaptcha-v2, secret: ${SECRETS.v2}, tokenField: recaptcha_token, verifyUrl: "http://127.0.0.1:${dead}/siteverify", timeout: 400ms }
  misconfigured: { provider: recaptcha-v2, secret: rejected-by-provider-0123456789, tokenField: recaptcha_token, verifyUrl: "${fake.url}/recaptcha" }
upstreams: { auth: { targets: [ ${up.url} ] } }
routes:
  - { name: v2, match: { path: /v2/upload, methods: [POST] }, upstream: auth, auth: public, captcha: v2 }
  - { name: v3, match: { path: /v3/upload, methods: [POST] }, upstream: auth, auth: public, captcha: v3 }
  - { name: h, match: { path: /h/upload, methods: [POST] }, upstream: auth, auth: public, captcha: h }
  - { name: ts, match: { path: /ts/upload, methods: [POST] }, upstream: auth, auth: public, captcha: ts }
  - { name: dead, match: { path: /dead/upload, methods: [POST] }, upstream: auth, auth: public, captcha: dead }
  - { name: misconfigured, match: { path: /mis/upload, methods: [POST] }, upstream: auth, auth: public, captcha: misconfigured }
`);
  t.after(async () => { await g.close(); await up.close(); await fake.close(); });
  return { g, fake, up };
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function multipart(boundary: string, fields: Record<string, string>, file?: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`), file, Buffer.from('\r\n'));
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

/** The same token in the place each route's captcha reads it from. */
function requestFor(kind: string, token: string | null): { body: Buffer; headers: Record<string, string> } {
  switch (kind) {
    case 'v3': {
      const body = Buffer.from(JSON.stringify({ email: 'a@b.c', password: 'pw', ...(token !== null ? { recaptcha_token: token } : {}) }));
      return { body, headers: { 'content-type': 'application/json' } };
    }
    case 'h': {
      const boundary = 'XyZ' + randomBytes(6).toString('hex');
      return { body: multipart(boundary, token !== null ? { 'h-captcha-response': token, email: 'a@b.c' } : { email: 'a@b.c' }), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
    }
    case 'ts':
      return { body: Buffer.from('{"otp":"123456"}'), headers: { 'content-type': 'application/json', ...(token !== null ? { 'x-turnstile-token': token } : {}) } };
    default: {
      const form = new URLSearchParams({ email: 'a@b.c', password: 'pw' });
      if (token !== null) form.set('recaptcha_token', token);
      return { body: Buffer.from(form.toString()), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    }
  }
}

async function call(s: Setup, kind: string, token: string | null, path = `/${kind}/upload`) {
  const { body, headers } = requestFor(kind, token);
  const r = await request(`${s.g.url}${path}`, { method: 'POST', body, headers });
  const json = (await r.body.json()) as Record<string, unknown>;
  return { status: r.statusCode, headers: r.headers, json, sent: body };
}

const KINDS = [['v2', 'reCAPTCHA v2, urlencoded form field'], ['v3', 'reCAPTCHA v3, JSON field'], ['h', 'hCaptcha, multipart field (default name)'], ['ts', 'Turnstile, header']] as const;

for (const [kind, label] of KINDS) {
  test(`${label}: pass, fail, missing, provider slow / 5xx`, async (t) => {
    const s = await setup(t);
    const ok = await call(s, kind, 'good');
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.sha256, sha(ok.sent), 'the body reaches the upstream unchanged');
    assert.equal(ok.json.bytes, ok.sent.length);
    const asked = s.fake.seen.at(-1)!;
    assert.equal(asked.form.get('secret'), SECRETS[kind]);
    assert.equal(asked.form.get('response'), 'good');
    assert.equal(asked.form.get('remoteip'), '127.0.0.1');

    const uploads = s.up.stats.uploads;
    const bad = await call(s, kind, 'bad');
    assert.equal(bad.status, 403);
    assert.equal(bad.json.code, 'captcha_failed');
    assert.equal(bad.headers['content-type'], 'application/problem+json');

    const asks = s.fake.seen.length;
    const missing = await call(s, kind, null);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.code, 'captcha_required');
    assert.equal(s.fake.seen.length, asks, 'no token, no question to the provider');

    const started = performance.now();
    const slow = await call(s, kind, 'slow');
    const took = performance.now() - started;
    assert.equal(slow.status, 503, 'a slow provider is not a pass');
    assert.equal(slow.json.code, 'captcha_unavailable');
    assert.equal(slow.headers['retry-after'], '5');
    assert.ok(took >= 350 && took < 1900, `gave up after the 400ms timeout, not the provider's 2s (took ${Math.round(took)}ms)`);

    const boom = await call(s, kind, 'boom');
    assert.equal(boom.status, 503);
    assert.equal(boom.json.code, 'captcha_unavailable');
    assert.equal(s.up.stats.uploads, uploads, 'nothing but the passing request reached the upstream');

    const logs = s.g.rawLogs();
    assert.ok(!logs.includes(SECRETS[kind]), 'the secret never reaches a log line');
    assert.ok(!logs.includes('"good"') && !logs.includes('=good'), 'nor does a token');
  });
}

test('reCAPTCHA v3 and Turnstile: score, action and hostname must fit', async (t) => {
  const s = await setup(t);
  for (const token of ['low', 'wrong-action', 'wrong-host']) {
    const r = await call(s, 'v3', token);
    assert.equal(r.status, 403, token);
    assert.equal(r.json.code, 'captcha_failed');
  }
  assert.equal((await call(s, 'ts', 'wrong-action')).status, 403);
  assert.equal((await call(s, 'ts', 'low')).status, 200, 'Turnstile has no score');
  assert.equal((await call(s, 'h', 'wrong-host')).status, 403);
  const reasons = s.g.logs.filter((l) => l.msg === 'captcha rejected').map((l) => l.reason);
  assert.ok(reasons.some((r) => /score 0.1 below 0.5/.test(String(r))), JSON.stringify(reasons));
  assert.ok(reasons.includes('action does not match'));
  assert.ok(reasons.includes('hostname not allowed'));
});

test('an unreachable provider, or one that rejects our secret, fails closed with 503 and never shows the secret', async (t) => {
  const s = await setup(t);
  const dead = await call(s, 'v2', 'good', '/dead/upload');
  assert.equal(dead.status, 503);
  assert.equal(dead.json.code, 'captcha_unavailable');
  assert.equal(dead.headers['retry-after'], '5');
  const mis = await call(s, 'v2', 'good', '/mis/upload');
  assert.equal(mis.status, 503, 'a secret the provider rejects is our fault, not the user\'s: no pass, and not a 403 either');
  assert.ok(!JSON.stringify(mis.json).includes('rejected-by-provider'));
  const warned = s.g.logs.filter((l) => l.msg === 'captcha provider unavailable');
  assert.equal(warned.length, 2);
  assert.match(String(warned[0].reason), /ECONNREFUSED/);
  assert.match(String(warned[1].reason), /invalid-input-secret/);
  assert.ok(!s.g.rawLogs().includes('rejected-by-provider'));
  assert.equal(s.up.stats.requests, 0);
});

test('a large multipart upload with the token before the file passes and streams to the upstream intact', async (t) => {
  const s = await setup(t);
  const boundary = 'Bnd' + randomBytes(8).toString('hex');
  const file = randomBytes(2 * 1024 * 1024 + 3);
  const body = multipart(boundary, { 'h-captcha-response': 'good', project_id: 'p1' }, file);
  const r = await request(`${s.g.url}/h/upload`, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
  const j = (await r.body.json()) as { bytes: number; sha256: string };
  assert.equal(r.statusCode, 200);
  assert.equal(j.bytes, body.length);
  assert.equal(j.sha256, sha(body));

  // The token after the file is past the peek: the request is refused, and the connection still works.
  const late = Buffer.concat([multipart(boundary, {}, file).subarray(0, -Buffer.byteLength(`--${boundary}--\r\n`)), Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="h-captcha-response"\r\n\r\ngood\r\n--${boundary}--\r\n`)]);
  const r2 = await request(`${s.g.url}/h/upload`, { method: 'POST', body: late, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
  assert.equal(r2.statusCode, 400, 'no token within the peek: as good as none');
  await r2.body.dump();
});
