// examples/machineagents (seeds 000/001): the FastAPI gateway's 197-function route table as one
// Gatehouse file. 20 stub services stand in for the platform; every route is exercised through
// the gateway exactly as shipped (only the service URLs and secrets come from the environment).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startExample, hs256, accessLines, setRouteKey, type RunningExample } from './harness.ts';
import { multipart, sha256, echoedFields, type StubEcho } from './stubs.ts';
import { eventually } from '../helpers.ts';

/** The variable names main.py reads (seed lines 37-56, odd spellings included) → upstream names. */
const SERVICES: Record<string, string> = {
  AUTH_SERVICE_URL: 'auth',
  USER_SERVICE_URL: 'user',
  CREATE_CHATBOT_SERVICE_URL: 'create-chatbot',
  SELECTION_CHATBOT_SERVICE_URL: 'selection-chatbot',
  DATA_CRAWLING_SERVICE_URL: 'data-crawling',
  STATE_SELECTION_3D_CHATBOT_SERVICE_URL: 'state-selection-3dchatbot',
  STATE_SELECTION_TEXT_CHATBOT_SERVICE_URL: 'state-selection-textchatbot',
  STATE_SELECTION_VOICE_CHATBOT_SERVICE_URL: 'state-selection-voicechatbot',
  SYSTEMPROMPT_SERVICE_URL: 'systemprompt',
  CHATBOT_MAINTENCE_SERVICE_URL: 'chatbot-maintenance',
  RESPONSE_3D_CHATBOT_SERVICE_URL: 'response-3d-chatbot',
  RESPONSE_text_CHATBOT_SERVICE_URL: 'response-text-chatbot',
  RESPONSE_voice_CHATBOT_SERVICE_URL: 'response-voice-chatbot',
  CHAT_HISTORY_SERVICE_URL: 'chathistory',
  DATA_COLLECTION_SERVICE_URL: 'client-data-collection',
  LLM_MODEL_SERVICE: 'llm-model',
  HOME_PAGE_SERVICE_URL: 'homepage-chatbot',
  REMOTE_PHYSIO_SERVICE_URL: 'remote-physio',
  PAYMENT_SERVICE_URL: 'payment',
  SUPERADMIN_SERVICE_URL: 'superadmin',
};

type Auth = 'public' | 'jwt' | 'captcha';
/** method, gateway path, service, path the service must see ('' = same), auth. From endpoints.md (82 named endpoints + 2 catch-alls). */
const ENDPOINTS: Array<[string, string, string, string, Auth]> = [
  // auth (8001)
  ['POST', '/v2/login', 'auth', '', 'public'],
  ['POST', '/v2/login1', 'auth', '/v2/login', 'captcha'],
  ['POST', '/v2/verify-login-otp', 'auth', '', 'captcha'],
  // user (8002)
  ['POST', '/v2/signup', 'user', '', 'public'],
  ['POST', '/v2/verify-otp', 'user', '', 'public'],
  ['POST', '/v2/forgot-password', 'user', '', 'public'],
  ['POST', '/v2/reset-password', 'user', '', 'public'],
  ['GET', '/v2/get-user-features/User_12345', 'user', '', 'jwt'],
  // create-chatbot (8003)
  ['POST', '/v2/create-chatbot', 'create-chatbot', '', 'jwt'],
  ['GET', '/v2/get-chatbots', 'create-chatbot', '', 'jwt'],
  ['GET', '/v2/get-chatbots/User_12345', 'create-chatbot', '', 'jwt'],
  ['GET', '/v2/get-chatbot-status', 'create-chatbot', '', 'jwt'],
  // chatbot-maintenance (8010)
  ['POST', '/v2/delete-chatbot-selection', 'chatbot-maintenance', '', 'jwt'],
  ['GET', '/v2/get-trashed-chatbots', 'chatbot-maintenance', '', 'jwt'],
  // selection-chatbot (8004)
  ['POST', '/v2/select-chatbot', 'selection-chatbot', '', 'jwt'],
  ['POST', '/v2/select-purpose', 'selection-chatbot', '', 'jwt'],
  ['POST', '/v2/select-avatar', 'selection-chatbot', '', 'jwt'],
  ['POST', '/v2/select-voice', 'selection-chatbot', '', 'jwt'],
  ['POST', '/v2/select-model', 'selection-chatbot', '', 'jwt'],
  ['POST', '/v2/save-chatbot-selection', 'selection-chatbot', '', 'jwt'],
  ['GET', '/v2/get-chatbot-selection', 'selection-chatbot', '', 'jwt'],
  // state-selection-* (8006-8008)
  ['POST', '/v2/save-3d-chatbot-selection', 'state-selection-3dchatbot', '', 'jwt'],
  ['POST', '/v2/save-text-chatbot-selection', 'state-selection-textchatbot', '', 'jwt'],
  ['POST', '/v2/save-voice-chatbot-selection', 'state-selection-voicechatbot', '', 'jwt'],
  // data-crawling (8005)
  ['POST', '/v2/fetch-urls', 'data-crawling', '', 'jwt'],
  ['POST', '/v2/fetch-sitemap-urls', 'data-crawling', '', 'jwt'],
  ['POST', '/v2/extract-contents', 'data-crawling', '', 'jwt'],
  ['GET', '/v2/task-status', 'data-crawling', '', 'jwt'],
  ['GET', '/v2/check-task-status', 'data-crawling', '', 'jwt'],
  ['GET', '/v2/get-sitemap-urls', 'data-crawling', '', 'jwt'],
  ['POST', '/v2/fetch-excel', 'data-crawling', '', 'jwt'],
  ['POST', '/v2/update-document', 'data-crawling', '', 'jwt'],
  // client-data-collection (8015)
  ['POST', '/v2/fetch-pdf', 'client-data-collection', '', 'jwt'],
  ['POST', '/v2/fetch-text', 'client-data-collection', '', 'jwt'],
  ['POST', '/v2/fetch-qa', 'client-data-collection', '', 'jwt'],
  ['GET', '/v2/get-client-data', 'client-data-collection', '', 'jwt'],
  ['PUT', '/v2/update-client-data/item_42', 'client-data-collection', '', 'jwt'],
  // response-3d-chatbot (8011): the widget's anonymous visitors
  ['POST', '/v2/get-response-3dchatbot', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-openai', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-openai-multi', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-openai-multi-v4', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-v5', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-v6-hybrid', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-v7-live', 'response-3d-chatbot', '', 'public'],
  ['POST', '/v2/get-response-3dchatbot-v8-split', 'response-3d-chatbot', '', 'public'],
  // response-text / response-voice (8012, 8013)
  ['POST', '/v2/get-response-text-chatbot', 'response-text-chatbot', '', 'public'],
  ['POST', '/v2/get-response-textchatbot', 'response-text-chatbot', '', 'public'],
  ['POST', '/v2/get-response-voice-chatbot', 'response-voice-chatbot', '', 'public'],
  ['POST', '/v2/get-response-voicechatbot', 'response-voice-chatbot', '', 'public'],
  // chathistory (8014)
  ['POST', '/v2/save-chat-history', 'chathistory', '', 'public'],
  ['GET', '/v2/get-chat-history', 'chathistory', '', 'jwt'],
  ['GET', '/v2/get-chat-history/User-12345_Project_1', 'chathistory', '', 'jwt'],
  ['DELETE', '/delete-chatbot-history/User-12345_Project_1', 'chathistory', '', 'jwt'],
  // systemprompt (8009)
  ['GET', '/v2/get-system-prompt', 'systemprompt', '', 'jwt'],
  ['POST', '/v2/upload-text', 'systemprompt', '', 'jwt'],
  ['GET', '/v2/get-uploaded-texts', 'systemprompt', '', 'jwt'],
  ['POST', '/v2/reset-system-prompt', 'systemprompt', '', 'jwt'],
  // llm-model (8016)
  ['POST', '/v2/call-model/openai-35', 'llm-model', '', 'jwt'],
  // homepage-chatbot (8017)
  ['POST', '/v2/homepage-get-response', 'homepage-chatbot', '', 'public'],
  ['POST', '/v2/homepage-save-chat-history', 'homepage-chatbot', '', 'public'],
  ['GET', '/v2/homepage-get-greeting', 'homepage-chatbot', '', 'public'],
  ['POST', '/v2/homepage-generate-greeting', 'homepage-chatbot', '', 'public'],
  ['POST', '/v2/homepage-save-lead', 'homepage-chatbot', '', 'public'],
  // remote-physio (8018)
  ['POST', '/v2/get-response-physio', 'remote-physio', '', 'public'],
  ['GET', '/v2/remote_physio_history', 'remote-physio', '', 'jwt'],
  ['GET', '/v2/check-profile/session_abc123', 'remote-physio', '', 'public'],
  ['POST', '/v2/reset-session/session_abc123', 'remote-physio', '', 'public'],
  // payment (8019)
  ['POST', '/create-payment-order', 'payment', '', 'jwt'],
  ['POST', '/verify-payment', 'payment', '', 'jwt'],
  ['POST', '/webhook', 'payment', '', 'public'],
  ['POST', '/v2/payment/create-order', 'payment', '', 'jwt'],
  ['POST', '/v2/payment/verify-payment', 'payment', '', 'jwt'],
  ['GET', '/v2/payment/get-user-subscription', 'payment', '', 'jwt'],
  ['POST', '/v2/payment/cancel-subscription', 'payment', '', 'jwt'],
  ['POST', '/v2/payment/update-subscription', 'payment', '', 'jwt'],
  ['GET', '/v2/payment/admin/plans', 'payment', '', 'jwt'], // catch-all for the unnamed /v2/payment/*
  // superadmin (8020)
  ['POST', '/v2/admin-login', 'superadmin', '', 'public'],
  ['GET', '/v2/admin/users', 'superadmin', '', 'jwt'],
  ['GET', '/v2/admin/get-user-history', 'superadmin', '', 'jwt'],
  ['GET', '/v2/get-user-data/User_12345', 'superadmin', '', 'jwt'],
  ['GET', '/v2/admin/audit-log', 'superadmin', '', 'jwt'], // catch-all for the unnamed /v2/admin/*
  ['GET', '/v2/subscriptions/plans', 'superadmin', '', 'public'],
  ['GET', '/v2/get-latest-terms-conditions', 'superadmin', '', 'public'],
  ['GET', '/v2/get-latest-privacy-policy', 'superadmin', '', 'public'],
];

const JWT_SECRET = randomBytes(32).toString('base64url');
const RECAPTCHA_SECRET = `6L${randomBytes(20).toString('hex')}`;
const PHYSIO = ['User-181473_Project_15', 'User-181473_Project_16'];

let ex: RunningExample;
let captcha: { server: Server; url: string; calls: Array<Record<string, string>> };
let token: string;

before(async () => {
  const calls: Array<Record<string, string>> = [];
  // A fake siteverify: "good-token" passes, anything else fails (reCAPTCHA v2 answers).
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      calls.push(form);
      const ok = form.secret === RECAPTCHA_SECRET && form.response === 'good-token';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { success: true, challenge_ts: new Date().toISOString(), hostname: 'app.machineavatars.com' } : { success: false, 'error-codes': ['invalid-input-response'] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  captcha = { server, calls, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/recaptcha/api/siteverify` };
  ex = await startExample('machineagents', { services: SERVICES, env: { JWT_SECRET, RECAPTCHA_SECRET_KEY: RECAPTCHA_SECRET, RECAPTCHA_VERIFY_URL: captcha.url } });
  token = await hs256(JWT_SECRET, { sub: 'User_12345', email: 'user@example.com' });
});

after(async () => {
  await ex?.close();
  await new Promise<void>((r) => (captcha ? captcha.server.close(() => r()) : r()));
});

function formFor(path: string): string {
  return new URLSearchParams({ user_id: 'User_12345', project_id: 'User-12345_Project_1', recaptcha_token: 'good-token', path }).toString();
}

test('every route: the right service, method, path, query and forwarded headers', async () => {
  assert.equal(new Set(ENDPOINTS.map((e) => e[1])).size, ENDPOINTS.length);
  for (const [method, path, service, upstreamPath, auth] of ENDPOINTS) {
    const headers: Record<string, string> = { 'x-user-id': 'spoofed', 'x-request-id': `req-${randomBytes(6).toString('hex')}` };
    if (auth === 'jwt') headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (method !== 'GET' && method !== 'DELETE') { body = formFor(path); headers['content-type'] = 'application/x-www-form-urlencoded'; }
    const r = await request(`${ex.g.url}${path}?session_id=s1&utm=a%20b`, { method, headers, body });
    const text = await r.body.text();
    assert.equal(r.statusCode, 200, `${method} ${path}: ${text}`);
    const echo = JSON.parse(text) as StubEcho;
    const where = `${method} ${path}`;
    assert.equal(echo.service, service, where);
    assert.equal(echo.method, method, where);
    assert.equal(echo.path, upstreamPath || path, where);
    assert.equal(echo.query, 'session_id=s1&utm=a%20b', where);
    assert.equal(echo.headers['x-request-id'], headers['x-request-id'], where);
    assert.equal(r.headers['x-request-id'], headers['x-request-id'], where);
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1', where);
    assert.equal(echo.headers['x-forwarded-proto'], 'http', where);
    assert.match(String(echo.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, where);
    assert.equal(echo.headers.host, new URL(ex.stub(service).url).host, where);
    if (body !== undefined) assert.equal(echo.sha256, sha256(body), `${where}: body unchanged`);
    // Identity comes from the verified token only; a client's own X-User-Id never reaches a service.
    assert.equal(echo.headers['x-user-id'], auth === 'jwt' ? 'User_12345' : undefined, where);
    assert.equal(echo.headers['x-user-email'], auth === 'jwt' ? 'user@example.com' : undefined, where);
  }
  // Every route in the file was exercised, and each request left one access-log line.
  const routesHit = new Set(accessLines(ex.g).map((l) => l.route));
  const declared = ex.g.gw.table.routes.map((r) => r.name).filter((n) => n !== 'response-3d-physio-projects');
  assert.deepEqual(declared.filter((n) => !routesHit.has(n)), []);
  assert.ok(!ex.g.rawLogs().includes(token), 'the bearer token never reaches a log line');
});

test('jwt routes refuse a missing or forged token with 401 before any service sees the request', async () => {
  const forged = await hs256('not-the-secret-' + JWT_SECRET, { sub: 'User_12345' });
  const before = [...ex.stubs.values()].reduce((n, s) => n + s.seen.length, 0);
  // The example runs in production, where auth.failureLimit defaults to 20 failed credentials per minute per IP:
  // the 21st forged token, and everything from this IP after it, is a 429.
  let failures = 0;
  for (const [method, path, , , auth] of ENDPOINTS) {
    if (auth !== 'jwt') continue;
    for (const authorization of [undefined, `Bearer ${forged}`]) {
      const r = await request(`${ex.g.url}${path}`, { method, headers: authorization ? { authorization } : {} });
      if (authorization) failures++;
      if (failures > 20) {
        assert.equal(r.statusCode, 429, `${method} ${path}`);
        assert.ok(Number(r.headers['retry-after']) >= 1);
        await r.body.dump();
        continue;
      }
      assert.equal(r.statusCode, 401, `${method} ${path}`);
      assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      await r.body.dump();
    }
  }
  assert.equal([...ex.stubs.values()].reduce((n, s) => n + s.seen.length, 0), before);
});

test('physio routing: project_id 15/16 go to remote-physio /v2/get-response-physio as question, session_id, avtarType=<project_id>; others to the 3D service unchanged', async () => {
  const physio = ex.stub('remote-physio');
  const before = physio.seen.length;
  for (const project_id of [...PHYSIO, 'User-12345_Project_1']) {
    const fields = { user_id: 'User_181473', project_id, session_id: 'session_abc123', question: 'What is your refund policy?', originating_url: 'https://example.com/shop' };
    const m = multipart(fields);
    const encodings: Array<[string | Buffer, string]> = [
      [new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded'],
      [m.body, m.contentType],
      [JSON.stringify(fields), 'application/json'],
    ];
    for (const [body, type] of encodings) {
      const r = await request(`${ex.g.url}/v2/get-response-3dchatbot`, { method: 'POST', headers: { 'content-type': type }, body });
      const echo = (await r.body.json()) as StubEcho;
      const isPhysio = PHYSIO.includes(project_id);
      const where = `${project_id} as ${type.split(';')[0]}`;
      assert.equal(r.statusCode, 200, where);
      assert.equal(echo.service, isPhysio ? 'remote-physio' : 'response-3d-chatbot', where);
      assert.equal(echo.path, isPhysio ? '/v2/get-response-physio' : '/v2/get-response-3dchatbot', where);
      if (!isPhysio) { assert.equal(echo.sha256, sha256(body), `${where}: the 3D service receives the form byte for byte`); continue; }
      // Seed 000 (S0:L688-695): exactly these three fields, whatever the encoding; order does not matter.
      assert.deepEqual(echoedFields(echo), { question: ['What is your refund policy?'], session_id: ['session_abc123'], avtarType: [project_id] }, where);
      const sent = Buffer.from(echo.body!, 'base64');
      assert.equal(echo.headers['content-length'], String(sent.length), `${where}: Content-Length recomputed`);
      assert.equal(echo.contentType, type, `${where}: same media type (and multipart boundary)`);
      if (type === 'application/x-www-form-urlencoded') assert.equal(sent.toString(), `avtarType=${project_id}&session_id=session_abc123&question=What+is+your+refund+policy%3F`);
      if (type === 'application/json') assert.deepEqual(JSON.parse(sent.toString()), { session_id: 'session_abc123', question: 'What is your refund policy?', avtarType: project_id });
    }
  }
  assert.equal(physio.seen.length - before, 6);
  const route = ex.g.gw.table.routes.find((r) => r.name === 'response-3d-physio-projects')!;
  const plain = ex.g.gw.table.routes.find((r) => r.name === 'response-3d')!;
  assert.deepEqual([route.timeouts.response, plain.timeouts.response], [150_000, 100_000], 'the physio branch keeps its longer tier');
});

test('physio: the 150 s tier applies to the rewritten request (derived config: 150 s → 4 s, 100 s → 1 s; a 2.5 s service)', async () => {
  const scaled = await startExample('machineagents', {
    services: SERVICES,
    stubs: ex.stubs,
    env: { JWT_SECRET, RECAPTCHA_SECRET_KEY: RECAPTCHA_SECRET, RECAPTCHA_VERIFY_URL: captcha.url },
    edit: (doc) => { setRouteKey(doc, 'response-3d-physio-projects', 'timeout', '4s'); setRouteKey(doc, 'response-3d', 'timeout', '1s'); },
  });
  try {
    const ask = async (project_id: string) => {
      const r = await request(`${scaled.g.url}/v2/get-response-3dchatbot`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-stub-sleep-ms': '2500' }, body: new URLSearchParams({ project_id, session_id: 's', question: 'q' }).toString() });
      return { status: r.statusCode, body: await r.body.text() };
    };
    const p = await ask(PHYSIO[0]);
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(echoedFields(JSON.parse(p.body) as StubEcho), { session_id: ['s'], question: ['q'], avtarType: [PHYSIO[0]] });
    const plain = await ask('User-12345_Project_1');
    assert.equal(plain.status, 504, 'the plain route times out at its own, shorter tier');
  } finally {
    await scaled.close();
  }
});

test('claim binding (seed 001): a user_id that is not the token\'s subject is refused, in a form and after a multipart upload\'s file; GET /health answers like /healthz', async () => {
  const svc = ex.stub('create-chatbot');
  const seen = svc.seen.length;
  const r = await request(`${ex.g.url}/v2/create-chatbot`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'user_id=User_99999&project_name=stolen' });
  assert.equal(r.statusCode, 403);
  const p = (await r.body.json()) as { code: string; field: string };
  assert.deepEqual([p.code, p.field], ['forbidden', 'body.user_id']);
  assert.equal(svc.seen.length, seen);
  const other = await request(`${ex.g.url}/v2/get-user-features/User_99999`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(other.statusCode, 403);
  await other.body.dump();
  // The field comes after a 2 MB file, past the peek: checked as the body streams.
  const { body, contentType } = multipart({}, [{ name: 'files', filename: 'a.pdf', type: 'application/pdf', data: randomBytes(2 * 1024 * 1024) }]);
  const boundary = /boundary=(.+)$/.exec(contentType)![1];
  const late = Buffer.concat([body.subarray(0, body.length - `--${boundary}--\r\n`.length), Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="user_id"\r\n\r\nUser_99999\r\n--${boundary}--\r\n`)]);
  const up = await request(`${ex.g.url}/v2/fetch-pdf`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: late });
  assert.equal(up.statusCode, 403);
  assert.equal(((await up.body.json()) as { field: string }).field, 'body.user_id');

  const h = await request(`${ex.g.url}/health`);
  const hz = await request(`${ex.g.url}/healthz`);
  const [hb, hzb] = [(await h.body.json()) as Record<string, unknown>, (await hz.body.json()) as Record<string, unknown>];
  assert.equal(h.statusCode, hz.statusCode);
  assert.deepEqual(Object.keys(hb), Object.keys(hzb));
});

test('captcha on /v2/login1 and /v2/verify-login-otp: no token (400) or a bad one (403) never reaches auth; the plain login needs none', async () => {
  const auth = ex.stub('auth');
  for (const path of ['/v2/login1', '/v2/verify-login-otp']) {
    const seen = auth.seen.length;
    for (const recaptcha_token of [undefined, 'bad-token']) {
      const f: Record<string, string> = { email: 'user@example.com', password: 'hunter2' };
      if (recaptcha_token) f.recaptcha_token = recaptcha_token;
      const r = await request(`${ex.g.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f).toString() });
      assert.equal(r.statusCode, recaptcha_token ? 403 : 400, `${path} with ${recaptcha_token ?? 'no token'}`);
      assert.equal(((await r.body.json()) as { code: string }).code, recaptcha_token ? 'captcha_failed' : 'captcha_required');
    }
    assert.equal(auth.seen.length, seen, `${path}: the auth service saw nothing`);
    const good = new URLSearchParams({ email: 'user@example.com', otp: '123456', recaptcha_token: 'good-token' }).toString();
    const ok = await request(`${ex.g.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: good });
    const echo = (await ok.body.json()) as StubEcho;
    assert.equal(ok.statusCode, 200);
    assert.equal(echo.path, path === '/v2/login1' ? '/v2/login' : path);
    assert.equal(echo.sha256, sha256(good));
  }
  // The provider was asked with the configured secret, and the secret appears in no log line.
  assert.ok(captcha.calls.some((c) => c.secret === RECAPTCHA_SECRET && c.response === 'bad-token'));
  assert.ok(!ex.g.rawLogs().includes(RECAPTCHA_SECRET));
  const plain = await request(`${ex.g.url}/v2/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40b.c&password=x' });
  assert.equal(plain.statusCode, 200);
  await plain.body.dump();
});

test('a multipart PDF upload streams to client-data-collection: the service reads it while the client is still sending', async () => {
  const svc = ex.stub('client-data-collection');
  const file = randomBytes(12 * 1024 * 1024);
  const { body, contentType } = multipart({ user_id: 'User_12345', project_id: 'User-12345_Project_1' }, [{ name: 'files', filename: 'Product_Manual.pdf', type: 'application/pdf', data: file }]);
  const stream = new PassThrough();
  const pending = request(`${ex.g.url}/v2/fetch-pdf`, { method: 'POST', headers: { 'content-type': contentType, 'content-length': String(body.length), authorization: `Bearer ${token}` }, body: stream });
  const half = 6 * 1024 * 1024;
  stream.write(body.subarray(0, half));
  // The gateway buffers nothing: the service has most of the first half before the second is sent.
  await eventually(() => svc.seen.some((s) => s.path === '/v2/fetch-pdf' && s.bytes >= half - 1024 * 1024), 10_000);
  stream.end(body.subarray(half));
  const r = await pending;
  const echo = (await r.body.json()) as StubEcho;
  assert.equal(r.statusCode, 200);
  assert.equal(echo.bytes, body.length);
  assert.equal(echo.sha256, sha256(body));
  assert.equal(echo.contentType, contentType);
});

test('a timeout tier is enforced: a service slower than its tier gets 504, a longer tier waits', async () => {
  // Derived config: the 30 s chat-history tier shortened to 300 ms, the 100 s chat tier to 3 s.
  const fast = await startExample('machineagents', {
    services: SERVICES,
    stubs: ex.stubs,
    env: { JWT_SECRET, RECAPTCHA_SECRET_KEY: RECAPTCHA_SECRET, RECAPTCHA_VERIFY_URL: captcha.url },
    edit: (doc) => { setRouteKey(doc, 'chat-history-read', 'timeout', '300ms'); setRouteKey(doc, 'response-text', 'timeout', '3s'); },
  });
  try {
    const t0 = performance.now();
    const r = await request(`${fast.g.url}/v2/get-chat-history?session_id=s`, { headers: { 'x-stub-sleep-ms': '6000', authorization: `Bearer ${token}` } });
    assert.equal(r.statusCode, 504);
    assert.equal(((await r.body.json()) as { code: string }).code, 'upstream_timeout');
    assert.ok(performance.now() - t0 < 4000, 'answered at the tier, not when the service finished');
    const ok = await request(`${fast.g.url}/v2/get-response-text-chatbot`, { method: 'POST', headers: { 'x-stub-sleep-ms': '800', 'content-type': 'application/x-www-form-urlencoded' }, body: 'question=hi' });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  } finally {
    await fast.close();
  }
});

test('CORS: app routes allow only the allowlist, with credentials; the widget routes any origin, without', async () => {
  const pre = await request(`${ex.g.url}/v2/create-chatbot`, { method: 'OPTIONS', headers: { origin: 'https://app.machineavatars.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  assert.ok(pre.statusCode === 204 || pre.statusCode === 200, String(pre.statusCode));
  assert.equal(pre.headers['access-control-allow-origin'], 'https://app.machineavatars.com');
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  await pre.body.dump();
  const evil = await request(`${ex.g.url}/v2/create-chatbot`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.equal(evil.headers['access-control-allow-origin'], undefined);
  await evil.body.dump();
  // The chat widget runs on customers' sites: its public routes answer any origin, never with credentials.
  const widget = await request(`${ex.g.url}/v2/get-response-3dchatbot-v6-hybrid`, { method: 'OPTIONS', headers: { origin: 'https://customer-shop.example', 'access-control-request-method': 'POST' } });
  assert.equal(widget.headers['access-control-allow-origin'], '*');
  assert.equal(widget.headers['access-control-allow-credentials'], undefined);
  await widget.body.dump();
});

test('login routes are rate limited per client IP (the original had no limit)', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await request(`${ex.g.url}/v2/admin-login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a&password=b' });
    statuses.push(r.statusCode);
    await r.body.dump();
  }
  assert.deepEqual(statuses.slice(0, 9), Array(9).fill(200)); // one /v2/admin-login already went through in the route sweep
  assert.equal(statuses.at(-1), 429);
});
