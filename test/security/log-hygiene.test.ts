// Log and error hygiene: no credential in any log line (at trace level) or error body, whatever the outcome;
// no log injection through the request line or headers. APISIX CVE-2022-29266 (jwt-auth echoed its secret in an
// error), RFC 6750 §5.3 (tokens in URLs end up in logs), OWASP log injection (CWE-117).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';

const KEY = 'acme-live-key-9f8e7d6c5b4a';
let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'echo' });
  g = await startGateway(`
observability: { log: { level: trace, format: json } }
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "${SECRET}", algorithms: [HS256] } ]
  apiKeys: { query: api-key }
  failureLimit: { limit: 3, window: 1m }
consumers: [ { id: acme, keys: ["${hashApiKey(KEY)}"] } ]
upstreams: { echo: { targets: [ ${up.url} ] } }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: any }
  - { name: open, match: { path: /open, prefix: true }, upstream: echo, auth: public }
`);
});
after(async () => { await g.close(); await up.close(); });

async function call(path: string, headers: Record<string, string> = {}) {
  const r = await request(`${g.url}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, text };
}

test('CVE-2022-29266 / RFC 6750 §5.3: no JWT, API key, wrong key, query key or secret in any log line or error body (trace level, up to the failure limit)', async () => {
  const good = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example' });
  const forged = await sign(secretBytes(SECRET + 'x'), { alg: 'HS256', iss: 'https://hs.example' });
  const expired = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', exp: -600 });
  const wrongKey = 'wrong-key-1a2b3c4d5e6f';
  const cases: Array<[string, Record<string, string>]> = [
    ['/keyed', { authorization: `Bearer ${good}` }],
    ['/keyed', { authorization: `Bearer ${forged}` }],
    ['/keyed', { authorization: `Bearer ${expired}` }],
    ['/keyed', { 'x-api-key': KEY }],
    ['/keyed', { 'x-api-key': wrongKey }],
    [`/keyed?api-key=${KEY}`, {}],
    ['/open', { authorization: `Basic ${Buffer.from('admin:hunter2-pass').toString('base64')}`, cookie: 'sid=cookie-secret-42', 'proxy-authorization': 'Basic cHJveHk6cHJveHktc2VjcmV0' }],
  ];
  const bodies: string[] = [];
  for (const [path, headers] of cases) bodies.push((await call(path, headers)).text);
  await eventually(() => g.logs.filter((l) => l.type === 'access').length >= cases.length);
  const raw = g.rawLogs();
  const needles = [good, forged, expired, good.split('.')[2], forged.split('.')[2], KEY, wrongKey, SECRET, 'hunter2-pass', 'YWRtaW46aHVudGVyMi1wYXNz', 'cookie-secret-42', 'cHJveHk6cHJveHktc2VjcmV0'];
  for (const n of needles) assert.ok(!raw.includes(n), `a credential leaked into the logs: ${n.slice(0, 12)}…`);
  for (const b of bodies.slice(1, 3).concat(bodies[4])) for (const n of needles) assert.ok(!b.includes(n), 'a credential in an error body');
});

test('CWE-117: an encoded CR/LF in the path cannot forge a log line; every line stays one JSON object', async () => {
  const before = g.logs.filter((l) => l.type === 'access').length;
  const r = await rawRequest(g.port, ['GET /open/a%0d%0a%7B%22type%22:%22access%22,%22forged%22:true%7D HTTP/1.1', 'Host: gw', 'User-Agent: x\tinjected'].join('\r\n'));
  assert.ok(r.status === 200 || r.status === 400);
  await eventually(() => g.logs.filter((l) => l.type === 'access').length > before);
  for (const line of g.rawLogs().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line.slice(0, 80));
  assert.equal(g.logs.filter((l) => l.forged === true).length, 0);
});

test('a malformed or oversized X-Request-Id is replaced, never echoed into logs or responses', async () => {
  for (const bad of ['a b', 'x'.repeat(300), '<script>', 'id;drop', '\u00e9t\u00e9']) {
    const r = await request(`${g.url}/open`, { headers: { 'x-request-id': bad } });
    await r.body.dump();
    assert.notEqual(r.headers['x-request-id'], bad);
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  }
  assert.ok(!g.rawLogs().includes('<script>') && !g.rawLogs().includes('x'.repeat(300)));
});

test('the query string is never logged (it may hold anything: passwords, tokens, personal data)', async () => {
  await call('/open/q?password=pw-in-query-77&email=someone%40example.com');
  await eventually(() => g.rawLogs().includes('/open/q'));
  assert.ok(!g.rawLogs().includes('pw-in-query-77'));
  assert.ok(!g.rawLogs().includes('someone'));
});

test('a 429 from the failure limit names neither the key nor the address in its body', async () => {
  let last = { status: 0, text: '' };
  for (let i = 0; i < 6; i++) last = await call('/keyed', { 'x-api-key': `probe-${i}-zzz` });
  assert.equal(last.status, 429);
  assert.ok(!last.text.includes('probe-') && !last.text.includes('127.0.0.1'));
  assert.ok(!g.rawLogs().includes('probe-'));
});
