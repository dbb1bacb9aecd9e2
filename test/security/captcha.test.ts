// Adversarial suite, family "captcha": a missing token, an old or replayed one, a token that tries to rewrite the
// siteverify form, a spoofed client address. The provider is a local stand-in whose answer the token chooses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../support/recording-upstream.ts';

const SECRET = 'captcha-secret-7c1e9a44d0b2';
let seen: URLSearchParams[] = [];
let provider: http.Server;
let providerUrl = '';
let up: RecordingUpstream;
let g: TestGateway;

before(async () => {
  provider = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const form = new URLSearchParams(body);
    seen.push(form);
    const token = form.get('response') ?? '';
    const json = (o: unknown) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (token === 'replayed') return json({ success: false, 'error-codes': ['timeout-or-duplicate'] });
    if (token === 'no-ts') return json({ success: true, hostname: 'app.example.com' });
    const age = /^age:(\d+)$/.exec(token);
    const ts = new Date(Date.now() - (age ? Number(age[1]) * 1000 : 0)).toISOString();
    json({ success: true, challenge_ts: ts, hostname: 'app.example.com' });
  });
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  providerUrl = `http://127.0.0.1:${(provider.address() as { port: number }).port}`;
  up = await startRecordingUpstream();
  g = await startGateway(`
captcha:
  login: { provider: hcaptcha, secret: ${SECRET}, tokenField: token, verifyUrl: "${providerUrl}/verify", timeout: 2s }
  strict: { provider: turnstile, secret: ${SECRET}, tokenHeader: X-Captcha, verifyUrl: "${providerUrl}/verify", timeout: 2s, maxAge: 30s }
upstreams:
  app: { targets: [ ${up.url} ] }
defaults: { auth: public }
routes:
  - { name: login, match: { path: /login, methods: [POST] }, upstream: app, captcha: login }
  - { name: signup, match: { path: /signup, methods: [POST] }, upstream: app, captcha: strict }
`);
});
after(async () => {
  await g.close();
  await up.close();
  await new Promise<void>((r) => { provider.closeAllConnections(); provider.close(() => r()); });
});

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  return { status: r.statusCode, headers: r.headers as Record<string, string>, text: await r.body.text() };
}

test('item 15: no token (absent, empty field, empty header) → 400 captcha_required, and the provider is not asked', async () => {
  seen = [];
  up.reset();
  for (const [path, body, headers] of [['/login', 'user=a', {}], ['/login', 'user=a&token=', {}], ['/signup', 'user=a', {}], ['/signup', 'user=a', { 'x-captcha': '' }]] as const) {
    const r = await post(path, body, headers);
    assertProblem(r.status, r.headers, r.text, { status: 400, code: 'captcha_required' });
  }
  assert.equal(seen.length, 0);
  assert.equal(up.heads, 0);
});

test('item 15: a token solved longer ago than maxAge (default 5 min; 30 s configured) → 403 captcha_failed', async () => {
  up.reset();
  const fresh = await post('/login', 'user=a&token=age:10');
  assert.equal(fresh.status, 200);
  const old = await post('/login', 'user=a&token=age:301');
  assertProblem(old.status, old.headers, old.text, { status: 403, code: 'captcha_failed' });
  const strictOld = await post('/signup', 'user=a', { 'x-captcha': 'age:31' });
  assertProblem(strictOld.status, strictOld.headers, strictOld.text, { status: 403, code: 'captcha_failed' });
  assert.equal((await post('/signup', 'user=a', { 'x-captcha': 'age:5' })).status, 200);
  assert.equal(up.received.length, 2, 'only the fresh tokens went through');
  assert.ok(g.logs.some((l) => l.msg === 'captcha rejected' && /more than maxAge/.test(String(l.reason))));
});

test('item 15: an answer without challenge_ts → 403 (fails closed: the age cannot be checked)', async () => {
  const r = await post('/login', 'user=a&token=no-ts');
  assertProblem(r.status, r.headers, r.text, { status: 403, code: 'captcha_failed' });
});

test('a replayed token (provider: timeout-or-duplicate) → 403, never 503', async () => {
  const r = await post('/login', 'user=a&token=replayed');
  assertProblem(r.status, r.headers, r.text, { status: 403, code: 'captcha_failed' });
});

test('form injection: a token carrying "&secret=...&response=good" is sent as one encoded value; the secret is ours', async () => {
  seen = [];
  const evil = 'x&secret=attacker&response=good&remoteip=1.2.3.4';
  await post('/login', `user=a&token=${encodeURIComponent(evil)}`);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].get('response'), evil);
  assert.deepEqual(seen[0].getAll('secret'), [SECRET]);
  assert.deepEqual(seen[0].getAll('remoteip'), ['127.0.0.1']);
});

test('a token longer than 8 KiB → 403 without asking the provider', async () => {
  seen = [];
  const r = await post('/signup', 'user=a', { 'x-captcha': 'a'.repeat(9000) });
  assertProblem(r.status, r.headers, r.text, { status: 403, code: 'captcha_failed' });
  assert.equal(seen.length, 0);
});

test('remoteip is the socket address: X-Forwarded-For from an untrusted peer does not reach the provider', async () => {
  seen = [];
  await post('/login', 'user=a&token=age:1', { 'x-forwarded-for': '203.0.113.9' });
  assert.equal(seen[0].get('remoteip'), '127.0.0.1');
});

test('the captcha secret and the token appear in no log line and no error body', async () => {
  const r = await post('/login', 'user=a&token=replayed');
  assert.ok(!r.text.includes('replayed') && !r.text.includes(SECRET));
  assert.ok(!g.rawLogs().includes(SECRET));
  assert.ok(!g.rawLogs().includes('age:301'));
});
