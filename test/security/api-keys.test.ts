// API-key probing: credentials in the query string, two credentials that name different callers, and where a
// key may travel. RFC 6750 §2.3 and §5.3 (a credential in a URL leaks into logs and Referer), issue 11 #6.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { rawRequest } from '../support/raw-http.ts';

const ACME = 'acme-key-0123456789abcdef';
const BETA = 'beta-key-0123456789abcdef';
let up: DemoServer;
let g: TestGateway;

const yaml = (url: string, apiKeys = '') => `
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "0123456789abcdef0123456789abcdef" } ]
  ${apiKeys}
consumers:
  - { id: acme, keys: ["${hashApiKey(ACME)}"] }
  - { id: beta, keys: ["${hashApiKey(BETA)}"] }
upstreams: { echo: { targets: [ ${url} ] } }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
  - { name: either, match: { path: /either }, upstream: echo, auth: any }
  - { name: open, match: { path: /open }, upstream: echo, auth: public }
`;

before(async () => {
  up = await startDemoServer({ name: 'echo' });
  g = await startGateway(yaml(up.url));
});
after(async () => { await g.close(); await up.close(); });

async function call(gw: TestGateway, path: string, headers: Record<string, string> = {}) {
  const r = await request(`${gw.url}${path}`, { headers });
  const text = await r.body.text();
  const body = r.statusCode === 200 ? (JSON.parse(text) as { query: string; headers: Record<string, string> }) : null;
  return { status: r.statusCode, headers: r.headers as Record<string, string>, text, query: body?.query, seen: body?.headers ?? {} };
}

test('issue 11 #6: a second consumer\'s key in ?api_key= beside a header key is a 401, and never reaches the upstream', async () => {
  const r = await call(g, `/keyed?api_key=${BETA}&x=1`, { 'x-api-key': ACME });
  assertProblem(r.status, r.headers, r.text, { status: 401, code: 'invalid_token' });
  assert.match(r.headers['www-authenticate'] ?? '', /invalid_token/);
  assert.ok(!r.text.includes(BETA) && !r.text.includes(ACME), 'no key in the error body');
});

test('issue 11 #6: each well-known credential parameter (api_key, apikey, key, access_token, token) is stripped on an authenticated route', async () => {
  for (const name of ['api_key', 'apikey', 'key', 'access_token', 'token']) {
    const same = await call(g, `/keyed?a=1&${name}=${ACME}&b=%20`, { 'x-api-key': ACME });
    assert.equal(same.status, 200, `${name}: ${same.text}`);
    assert.equal(same.query, 'a=1&b=%20', `${name} reached the upstream`);
    const other = await call(g, `/keyed?${name}=${BETA}`, { 'x-api-key': ACME });
    assert.equal(other.status, 401, `${name} with another consumer's key`);
  }
});

test('issue 11 #6: a percent-encoded credential name (api%5Fkey) is found and stripped too', async () => {
  const r = await call(g, `/keyed?api%5Fkey=${BETA}`, { 'x-api-key': ACME });
  assert.equal(r.status, 401);
  const ok = await call(g, `/keyed?api%5Fkey=${ACME}&z=2`, { 'x-api-key': ACME });
  assert.equal(ok.status, 200);
  assert.equal(ok.query, 'z=2');
});

test('issue 11 #6: a JWT route strips ?access_token= too (a token in the query never reaches the upstream)', async () => {
  const r = await call(g, `/either?access_token=${ACME}`, { authorization: `Bearer ${ACME}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.query, '');
});

test('issue 11 #6: auth.apiKeys.query accepts a key from the query, strips it before forwarding and never logs it', async (t) => {
  const q = await startGateway(yaml(up.url, 'apiKeys: { query: api-key }'));
  t.after(() => q.close());
  const r = await call(q, `/keyed?model=gpt&api-key=${ACME}&n=2`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.seen['x-consumer-id'], 'acme');
  assert.equal(r.query, 'model=gpt&n=2');
  const bad = await call(q, '/keyed?api-key=nope-0000');
  assert.equal(bad.status, 401);
  assert.ok(!q.rawLogs().includes(ACME) && !q.rawLogs().includes('nope-0000'), 'a query key reached the logs');
});

test('issue 11 #6: without auth.apiKeys.query a key in the query is not a credential (401), only stripped', async () => {
  const r = await call(g, `/keyed?api_key=${ACME}`);
  assertProblem(r.status, r.headers, r.text, { status: 401, code: 'unauthorized' });
});

test('issue 11 #6: the query key and a header key that disagree are a 401 (auth.apiKeys.query set)', async (t) => {
  const q = await startGateway(yaml(up.url, 'apiKeys: { query: api-key }'));
  t.after(() => q.close());
  assert.equal((await call(q, `/keyed?api-key=${BETA}`, { 'x-api-key': ACME })).status, 401);
  assert.equal((await call(q, `/keyed?api-key=${ACME}`, { 'x-api-key': ACME })).status, 200);
});

test('a credential parameter given twice is a 400 (which one counts would be a parser differential)', async () => {
  const r = await call(g, `/keyed?api_key=${ACME}&api_key=${BETA}`, { 'x-api-key': ACME });
  assertProblem(r.status, r.headers, r.text, { status: 400, code: 'bad_request' });
});

test('Authorization: Bearer <key> and X-API-Key naming different consumers on auth: any is a 401, not "Authorization wins"', async () => {
  const r = await call(g, '/either', { authorization: `Bearer ${ACME}`, 'x-api-key': BETA });
  assert.equal(r.status, 401);
  const same = await call(g, '/either', { authorization: `Bearer ${ACME}`, 'x-api-key': ACME });
  assert.equal(same.status, 200);
  assert.equal(same.seen['x-api-key'], undefined, 'the key header was forwarded beside the credential used');
});

test('a public route leaves ?token= and ?key= alone (nothing is authenticated there)', async () => {
  const r = await call(g, '/open?key=abc&token=def');
  assert.equal(r.status, 200);
  assert.equal(r.query, 'key=abc&token=def');
});

test('auth.apiKeys.stripQuery replaces the list: a route whose upstream uses ?key= keeps it', async (t) => {
  const g2 = await startGateway(yaml(up.url, 'apiKeys: { stripQuery: [ api_key ] }'));
  t.after(() => g2.close());
  const r = await call(g2, '/keyed?key=cache-1', { 'x-api-key': ACME });
  assert.equal(r.status, 200);
  assert.equal(r.query, 'key=cache-1');
});

test('RFC 9110 §5.3: two X-API-Key header lines naming different consumers do not authenticate either', async () => {
  const r = await rawRequest(g.port, ['GET /keyed HTTP/1.1', 'Host: gw', `X-API-Key: ${ACME}`, `X-API-Key: ${BETA}`].join('\r\n'));
  assert.equal(r.status, 401);
});

// A trailing space is not part of a field value (RFC 9110 §5.5), so `KEY ` is KEY: not a case here.
test('an unknown key, a key differing in case and an empty key are all refused without naming the key', async () => {
  for (const k of [`${ACME}x`, ' ', `${ACME.toUpperCase()}`, `${ACME.slice(0, -1)}`]) {
    const r = await call(g, '/keyed', { 'x-api-key': k });
    assert.equal(r.status, 401, JSON.stringify(k));
    if (k.trim()) assert.ok(!r.text.includes(k.trim()));
  }
});
