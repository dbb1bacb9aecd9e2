// The consumers admin API through a real gateway (memory store): create, keys that work on an apikey route at
// once and stop at once, rotation with and without grace, plan changes that move rate limits, masked listings,
// the file's consumers read-only, one audit line per change with no key, hash or token in any log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { assertProblem } from '../support/problem.ts';

const TOKEN = 'adm-2f9c41d7e0b84a6f9a3e5c17b2d08e64';
const FILE_KEY = 'file-key-0123456789abcdef';
const hex = (k: string) => createHash('sha256').update(k).digest('hex');

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
async function admin(g: TestGateway, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const r = await request(`${g.adminUrl}${path}`, { method: method as 'GET', headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, body: JSON.parse(text) as Json };
}

async function use(g: TestGateway, key: string, via: 'header' | 'bearer' = 'header') {
  const headers = via === 'header' ? { 'x-api-key': key } : { authorization: `Bearer ${key}` };
  const r = await request(`${g.url}/keyed`, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, seen: r.statusCode === 200 ? (JSON.parse(text) as { headers: Record<string, string> }).headers : {} };
}

const yaml = (upUrl: string, extra = '') => `
admin: { token: "${TOKEN}" }
${extra}
upstreams: { echo: { targets: [ ${upUrl} ] } }
consumers:
  - { id: filed, plan: pro, keys: ["${hashApiKey(FILE_KEY)}"] }
plans:
  free: { rateLimit: [ { limit: 2, window: 1m } ] }
  pro: { rateLimit: [ { limit: 100, window: 1m } ] }
defaults: { plan: free }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
`;

test('consumers and keys live: create → key works → revoke → 401 on the next request; rotation; listings masked; one audit line per change', async (t) => {
  const up = await startDemoServer({ name: 'echo' });
  const g = await startGateway(yaml(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  const issued: string[] = [];
  let changes = 0;

  assert.equal((await admin(g, 'GET', '/admin/consumers', undefined, null)).status, 401, 'the admin token guards it');

  const created = await admin(g, 'POST', '/admin/consumers', { id: 'acme', plan: 'pro' });
  changes++;
  assert.equal(created.status, 201, created.text);
  assert.equal(created.headers.location, '/admin/consumers/acme');
  assert.deepEqual({ ...created.body, createdAt: 0, updatedAt: 0, version: 0 }, { id: 'acme', source: 'runtime', plan: 'pro', effectivePlan: 'pro', createdAt: 0, updatedAt: 0, version: 0, keys: [] });

  const k1 = await admin(g, 'POST', '/admin/consumers/acme/keys');
  changes++;
  assert.equal(k1.status, 201, k1.text);
  assert.equal(k1.headers['cache-control'], 'no-store');
  const key1: string = k1.body.key;
  issued.push(key1);
  assert.match(key1, /^gh_/);
  assert.equal(k1.body.fingerprint, hex(key1).slice(0, 8));
  assert.match(k1.body.note, /shown this once/);

  for (const via of ['header', 'bearer'] as const) {
    const r = await use(g, key1, via);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.seen['x-consumer-id'], 'acme');
    assert.equal(r.seen['x-consumer-plan'], 'pro');
    assert.equal(r.seen['x-api-key'], undefined, 'the key is the gateway\'s: not sent upstream');
    assert.equal(r.seen.authorization, undefined);
  }

  // listings: an id and a fingerprint per key; never the key, never its hash (the file's included)
  const list = await admin(g, 'GET', '/admin/consumers');
  assert.equal(list.status, 200);
  assert.deepEqual([list.body.store, list.body.synced], ['memory', true]);
  assert.deepEqual(list.body.consumers.map((c: Json) => [c.id, c.source]), [['filed', 'file'], ['acme', 'runtime']]);
  assert.deepEqual(list.body.consumers[0].keys, [{ id: 'file:0', fingerprint: hex(FILE_KEY).slice(0, 8) }]);
  assert.deepEqual(list.body.consumers[1].keys.map((k: Json) => [k.id, k.fingerprint, k.expiresAt]), [[k1.body.keyId, k1.body.fingerprint, null]]);
  for (const secret of [key1, hex(key1), FILE_KEY, hex(FILE_KEY)]) assert.ok(!list.text.includes(secret), 'listing leaks a key or a hash');
  assert.deepEqual((await admin(g, 'GET', '/admin/consumers?source=runtime')).body.consumers.map((c: Json) => c.id), ['acme']);
  assert.equal((await admin(g, 'GET', '/admin/consumers/acme')).body.keys[0].id, k1.body.keyId);

  // revoke: refused on the very next request
  const rv = await admin(g, 'DELETE', `/admin/consumers/acme/keys/${k1.body.keyId}`);
  changes++;
  assert.deepEqual([rv.status, rv.body], [200, { consumer: 'acme', revoked: k1.body.keyId }]);
  const refused = await use(g, key1);
  assertProblem(refused.status, refused.headers, refused.text, { status: 401, code: 'invalid_token' });

  // rotation without grace: the old key stops with the same write
  const k2 = (await admin(g, 'POST', '/admin/consumers/acme/keys')).body;
  changes++;
  issued.push(k2.key);
  assert.equal((await use(g, k2.key)).status, 200);
  const rot = await admin(g, 'POST', `/admin/consumers/acme/keys/${k2.keyId}/rotate`);
  changes++;
  assert.equal(rot.status, 201, rot.text);
  issued.push(rot.body.key);
  assert.deepEqual(rot.body.replaced, { keyId: k2.keyId, revoked: true, expiresAt: null });
  assert.equal((await use(g, k2.key)).status, 401);
  assert.equal((await use(g, rot.body.key)).status, 200);

  // rotation with grace: both work until it ends
  const graced = await admin(g, 'POST', `/admin/consumers/acme/keys/${rot.body.keyId}/rotate`, { grace: '10m' });
  changes++;
  issued.push(graced.body.key);
  assert.equal(graced.body.replaced.revoked, false);
  const ends = Date.parse(graced.body.replaced.expiresAt) - Date.now();
  assert.ok(ends > 9.9 * 60_000 && ends <= 10 * 60_000, `grace ends in ${ends} ms`);
  assert.equal((await use(g, rot.body.key)).status, 200, 'old key during its grace');
  assert.equal((await use(g, graced.body.key)).status, 200);
  const shown = (await admin(g, 'GET', '/admin/consumers/acme')).body.keys;
  assert.deepEqual(shown.map((k: Json) => [k.id, k.expiresAt]), [[rot.body.keyId, graced.body.replaced.expiresAt], [graced.body.keyId, null]]);
  const short = await admin(g, 'POST', `/admin/consumers/acme/keys/${graced.body.keyId}/rotate`, { grace: '300ms' });
  changes++;
  issued.push(short.body.key);
  assert.equal((await use(g, graced.body.key)).status, 200);
  await new Promise((r) => setTimeout(r, 350));
  assert.equal((await use(g, graced.body.key)).status, 401, 'refused once its grace has passed');
  assert.equal((await use(g, short.body.key)).status, 200);

  // deleting the consumer revokes every key it has
  const del = await admin(g, 'DELETE', '/admin/consumers/acme');
  changes++;
  assert.deepEqual([del.status, del.body], [200, { deleted: 'acme', revokedKeys: 2 }]);
  assert.equal((await use(g, short.body.key)).status, 401);
  assert.equal((await use(g, rot.body.key)).status, 401);

  // one audit line per change: who (the token's id, not the token), what, when; nothing secret anywhere
  const audit = g.logs.filter((l) => l.type === 'audit');
  assert.equal(audit.length, changes);
  assert.deepEqual(audit.map((l) => l.action), ['consumer.create', 'key.create', 'key.revoke', 'key.create', 'key.rotate', 'key.rotate', 'key.rotate', 'consumer.delete']);
  for (const l of audit) {
    assert.match(String(l.actor), /^token:[0-9a-f]{8}$/);
    assert.equal(l.consumer, 'acme');
    assert.equal(typeof l.time, 'number');
  }
  assert.deepEqual([audit[2].key, audit[4].key, audit[4].newKey], [k1.body.keyId, k2.keyId, rot.body.keyId]);
  assert.equal(audit[5].oldKeyExpiresAt, graced.body.replaced.expiresAt);
  assert.equal(audit[7].revokedKeys, 2);
  const raw = g.rawLogs();
  for (const k of issued) {
    assert.ok(!raw.includes(k), 'a plaintext key reached the log');
    assert.ok(!raw.includes(hex(k)), 'a key hash reached the log');
  }
  assert.ok(!raw.includes(TOKEN), 'the admin token reached the log');
});

test('a plan change moves the consumer\'s rate limits at once (free 2/min → pro 100/min)', async (t) => {
  const up = await startDemoServer({ name: 'echo' });
  const g = await startGateway(yaml(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  await admin(g, 'POST', '/admin/consumers', { id: 'metered', plan: 'free' });
  const { key } = (await admin(g, 'POST', '/admin/consumers/metered/keys')).body;
  assert.equal((await use(g, key)).status, 200);
  assert.equal((await use(g, key)).status, 200);
  const limited = await use(g, key);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['ratelimit-policy'], '"1m";q=2;w=60');

  const p = await admin(g, 'PATCH', '/admin/consumers/metered', { plan: 'pro' });
  assert.deepEqual([p.status, p.body.plan, p.body.effectivePlan], [200, 'pro', 'pro']);
  const moved = await use(g, key);
  assert.equal(moved.status, 200, 'the next request runs on the pro tiers');
  assert.equal(moved.headers['ratelimit-policy'], '"1m";q=100;w=60');
  assert.equal(moved.seen['x-consumer-plan'], 'pro');

  const back = await admin(g, 'PATCH', '/admin/consumers/metered', { plan: null });
  assert.deepEqual([back.body.plan, back.body.effectivePlan], [null, 'free']);
  assert.equal((await use(g, key)).status, 429, 'back on free: its bucket is still empty');
  const audit = g.logs.filter((l) => l.type === 'audit' && l.action === 'consumer.plan');
  assert.deepEqual(audit.map((l) => [l.plan, l.previousPlan]), [['pro', 'free'], [null, 'pro']]);
});

test('the file\'s consumers are read-only (409), and bad requests are 400/404 problems from the error table', async (t) => {
  const up = await startDemoServer({ name: 'echo' });
  const g = await startGateway(yaml(up.url));
  t.after(async () => { await g.close(); await up.close(); });
  const problem = (r: Awaited<ReturnType<typeof admin>>, status: number, code: string) => assertProblem(r.status, r.headers, r.text, { status, code });

  for (const [method, path, body] of [
    ['POST', '/admin/consumers', { id: 'filed' }],
    ['PATCH', '/admin/consumers/filed', { plan: 'free' }],
    ['DELETE', '/admin/consumers/filed', undefined],
    ['POST', '/admin/consumers/filed/keys', undefined],
    ['DELETE', '/admin/consumers/filed/keys/file:0', undefined],
    ['POST', '/admin/consumers/filed/keys/file:0/rotate', undefined],
  ] as const) {
    const p = problem(await admin(g, method, path, body), 409, 'conflict');
    assert.match(p.detail, /Consumer "filed" is declared in the config file \(test\.yaml\); it is read-only here/, `${method} ${path}`);
  }
  assert.equal((await admin(g, 'GET', '/admin/consumers/filed')).body.source, 'file');
  assert.equal((await use(g, FILE_KEY)).status, 200, 'the file\'s key still works');

  await admin(g, 'POST', '/admin/consumers', { id: 'acme' });
  assert.match(problem(await admin(g, 'POST', '/admin/consumers', { id: 'acme' }), 409, 'conflict').detail, /already exists/);
  assert.match(problem(await admin(g, 'POST', '/admin/consumers', { id: 'bad id!' }), 400, 'bad_request').detail, /letters, digits/);
  assert.match(problem(await admin(g, 'POST', '/admin/consumers', { id: 'x', plan: 'gold' }), 400, 'bad_request').detail, /Unknown plan "gold"; known: free, pro/);
  assert.match(problem(await admin(g, 'POST', '/admin/consumers', { id: 'x', key: 'mine' }), 400, 'bad_request').detail, /Unknown member "key"; allowed: id, plan/);
  assert.match(problem(await admin(g, 'POST', '/admin/consumers', '{nope'), 400, 'bad_request').detail, /not valid JSON/);
  assert.match(problem(await admin(g, 'PATCH', '/admin/consumers/acme', {}), 400, 'bad_request').detail, /Give \{ "plan"/);
  assert.match(problem(await admin(g, 'POST', '/admin/consumers/acme/keys', { hash: 'sha256:00' }), 400, 'bad_request').detail, /takes no body/);
  problem(await admin(g, 'GET', '/admin/consumers/nobody'), 404, 'not_found');
  problem(await admin(g, 'POST', '/admin/consumers/nobody/keys'), 404, 'not_found');
  problem(await admin(g, 'DELETE', '/admin/consumers/acme/keys/key_none'), 404, 'not_found');
  const k = (await admin(g, 'POST', '/admin/consumers/acme/keys')).body;
  assert.match(problem(await admin(g, 'POST', `/admin/consumers/acme/keys/${k.keyId}/rotate`, { grace: 'forever' }), 400, 'bad_request').detail, /grace: "forever" is not a duration/);
  assert.match(problem(await admin(g, 'POST', `/admin/consumers/acme/keys/${k.keyId}/rotate`, { grace: '90d' }), 400, 'bad_request').detail, /at most 30d/);
  assert.equal((await use(g, k.key)).status, 200, 'refused rotations changed nothing');
  assert.equal(g.logs.filter((l) => l.type === 'audit').length, 2, 'only changes are audited');
});

test('runtime consumers outlive a reload; a plan the new config drops reads as its defaults.plan; no admin token: actor "anonymous", audit lines even at log level warn', async (t) => {
  const up = await startDemoServer({ name: 'echo' });
  const base = (plans: string) => `
observability: { log: { level: warn } }
upstreams: { echo: { targets: [ ${up.url} ] } }
plans: { ${plans} }
defaults: { plan: free }
routes:
  - { name: keyed, match: { path: /keyed }, upstream: echo, auth: apikey }
`;
  const g = await startGateway(base('free: {}, gold: {}'));
  t.after(async () => { await g.close(); await up.close(); });
  assert.equal((await admin(g, 'POST', '/admin/consumers', { id: 'vip', plan: 'gold' }, null)).status, 201);
  const { key } = (await admin(g, 'POST', '/admin/consumers/vip/keys', undefined, null)).body;
  assert.equal((await use(g, key)).seen['x-consumer-plan'], 'gold');

  const r = g.reload(base('free: {}, silver: {}'));
  assert.equal(r.ok, true, JSON.stringify(r));
  const after = await use(g, key);
  assert.equal(after.status, 200, 'the key survived the reload');
  assert.equal(after.seen['x-consumer-plan'], 'free', 'gold is gone: defaults.plan');
  const v = (await admin(g, 'GET', '/admin/consumers/vip', undefined, null)).body;
  assert.deepEqual([v.plan, v.effectivePlan], ['gold', 'free']);

  const audit = g.logs.filter((l) => l.type === 'audit');
  assert.deepEqual(audit.map((l) => [l.actor, l.action]), [['anonymous', 'consumer.create'], ['anonymous', 'key.create']]);
  assert.ok(!g.logs.some((l) => l.type === 'access'), 'info lines stay hidden at warn: only audit lines are forced');
});
