// auth: apikey and auth: any through a real gateway: consumers, key rotation, where keys are read from,
// identity headers (spoofed copies removed), credentials hidden from the upstream, authorize by consumer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';
import { hashApiKey, generateApiKey } from '../../src/auth/api-keys.ts';
import { SECRET, secretBytes, sign } from '../auth/support.ts';

const OLD = generateApiKey();
const NEW = generateApiKey();
const BETA = 'beta-key-0123456789';
let up: DemoServer;
let g: TestGateway;

const consumersYaml = (acmeKeys: string[]) => `
consumers:
  - { id: acme, plan: pro, keys: [${acmeKeys.map((k) => `"${hashApiKey(k)}"`).join(', ')}] }
  - { id: beta, keys: ["${hashApiKey(BETA)}"] }`;

const baseYaml = (acmeKeys: string[], extra = '') => `
auth:
  jwt: [ { name: hs, issuer: https://hs.example, secret: "${SECRET}" } ]
  ${extra}
${consumersYaml(acmeKeys)}
plans: { free: {}, pro: {} }
upstreams: { echo: { targets: [ ${up.url} ] } }
defaults: { plan: free }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
  - { name: either, match: { path: /either }, upstream: echo, auth: any }
  - { name: acme-only, match: { path: /acme }, upstream: echo, auth: apikey, authorize: { consumers: [acme] } }
  - { name: pro-only, match: { path: /pro }, upstream: echo, auth: any, authorize: { plans: [pro] } }
`;

before(async () => {
  up = await startDemoServer({ name: 'echo' });
  g = await startGateway(baseYaml([OLD, NEW]));
});
after(async () => { await g.close(); await up.close(); });

async function call(gw: TestGateway, path: string, headers: Record<string, string>) {
  const r = await request(`${gw.url}${path}`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers as Record<string, string | undefined>, text, seen: r.statusCode === 200 ? (JSON.parse(text) as { headers: Record<string, string> }).headers : {} };
}

test('rotation: both keys of a consumer work; a key removed from the config is rejected', async (t) => {
  for (const key of [OLD, NEW]) {
    const r = await call(g, '/keyed', { 'x-api-key': key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.seen['x-consumer-id'], 'acme');
    assert.equal(r.seen['x-consumer-plan'], 'pro');
  }
  const rotated = await startGateway(baseYaml([NEW]));
  t.after(() => rotated.close());
  assert.equal((await call(rotated, '/keyed', { 'x-api-key': NEW })).status, 200);
  const r = await call(rotated, '/keyed', { 'x-api-key': OLD });
  assertProblem(r.status, r.headers, r.text, { status: 401, code: 'invalid_token' });
  assert.equal(r.headers['www-authenticate'], 'Bearer realm="gatehouse", error="invalid_token", error_description="The API key is not recognized."');
});

test('a key is read from X-API-Key or Authorization: Bearer, and hidden from the upstream by default', async () => {
  const viaHeader = await call(g, '/keyed', { 'x-api-key': BETA });
  assert.equal(viaHeader.status, 200);
  assert.equal(viaHeader.seen['x-consumer-id'], 'beta');
  assert.equal(viaHeader.seen['x-consumer-plan'], 'free', 'a consumer without plan gets defaults.plan');
  assert.equal(viaHeader.seen['x-api-key'], undefined, 'the key never reaches the upstream');
  const viaBearer = await call(g, '/keyed', { authorization: `Bearer ${NEW}` });
  assert.equal(viaBearer.status, 200);
  assert.equal(viaBearer.seen['x-consumer-id'], 'acme');
  assert.equal(viaBearer.seen.authorization, undefined);

  const missing = await call(g, '/keyed', {});
  assert.match(assertProblem(missing.status, missing.headers, missing.text, { status: 401, code: 'unauthorized' }).detail, /x-api-key/);
  assert.equal(missing.headers['www-authenticate'], 'Bearer realm="gatehouse"');
  const wrong = await call(g, '/keyed', { 'x-api-key': 'guessed-key' });
  assert.equal(wrong.status, 401);
  assert.ok(!wrong.text.includes('guessed-key'));
  assert.ok(!g.rawLogs().includes(BETA) && !g.rawLogs().includes(NEW) && !g.rawLogs().includes('guessed-key'), 'keys never reach a log line');
});

test('spoofed identity headers are replaced by the real consumer', async () => {
  const r = await call(g, '/keyed', { 'x-api-key': BETA, 'x-consumer-id': 'acme', 'x-consumer-plan': 'pro', 'x-user-id': 'root' });
  assert.equal(r.seen['x-consumer-id'], 'beta');
  assert.equal(r.seen['x-consumer-plan'], 'free');
  assert.equal(r.seen['x-user-id'], undefined);
});

test('auth: any accepts a JWT or an API key (header or Bearer), and nothing else', async () => {
  const jwt = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', sub: 'jwt-user' });
  const viaJwt = await call(g, '/either', { authorization: `Bearer ${jwt}` });
  assert.equal(viaJwt.status, 200);
  assert.equal(viaJwt.seen['x-consumer-id'], undefined, 'a JWT identity is not a consumer');
  assert.equal(viaJwt.seen.authorization, `Bearer ${jwt}`, 'a JWT is forwarded as it came');
  assert.equal((await call(g, '/either', { authorization: `Bearer ${OLD}` })).seen['x-consumer-id'], 'acme');
  assert.equal((await call(g, '/either', { 'x-api-key': BETA })).seen['x-consumer-id'], 'beta');
  const none = await call(g, '/either', {});
  assert.match(assertProblem(none.status, none.headers, none.text, { status: 401, code: 'unauthorized' }).detail, /bearer token or an API key/);
  assert.equal((await call(g, '/either', { authorization: 'Bearer unknown-key' })).status, 401);
  assert.equal((await call(g, '/keyed', { authorization: `Bearer ${jwt}` })).status, 401, 'an apikey route does not take JWTs');
});

test('authorize: consumers and plans give 403 to a valid identity without rights', async () => {
  assert.equal((await call(g, '/acme', { 'x-api-key': NEW })).status, 200);
  const r = await call(g, '/acme', { 'x-api-key': BETA });
  assertProblem(r.status, r.headers, r.text, { status: 403, code: 'forbidden' });
  assert.equal((await call(g, '/pro', { 'x-api-key': OLD })).status, 200);
  assert.equal((await call(g, '/pro', { 'x-api-key': BETA })).status, 403);
  const jwtPro = await sign(secretBytes(), { alg: 'HS256', iss: 'https://hs.example', claims: { plan: 'pro' } });
  assert.equal((await call(g, '/pro', { authorization: `Bearer ${jwtPro}` })).status, 200, 'a JWT plan claim counts too');
});

test('a custom key header, with hideCredentials: false forwarding it', async (t) => {
  const custom = await startGateway(baseYaml([NEW], 'apiKeys: { header: X-Service-Key, hideCredentials: false }'));
  t.after(() => custom.close());
  const r = await call(custom, '/keyed', { 'x-service-key': NEW });
  assert.equal(r.status, 200);
  assert.equal(r.seen['x-service-key'], NEW);
  assert.equal((await call(custom, '/keyed', { 'x-api-key': NEW })).status, 401);
});
