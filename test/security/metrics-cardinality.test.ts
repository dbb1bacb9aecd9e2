// Metric cardinality under hostile input: labels come from the config (route, upstream, status class of a bounded
// set), never from what a client sends — methods, Host, credentials, header names, query strings, request ids.
// An attacker who can mint series can exhaust the gateway's memory and the metrics backend (CWE-770).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';

let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  g = await startGateway(`
observability: { log: { level: warn } }
auth: { failureLimit: { limit: 100000, window: 1m } }
consumers: [ { id: acme, keys: ["${hashApiKey('acme-key-000000000000')}"] } ]
upstreams: { demo: { targets: [ ${up.url} ] } }
routes:
  - { name: users, match: { path: /v1/users/:id, methods: [GET, POST] }, upstream: demo, auth: public }
  - { name: keyed, match: { path: /keyed }, upstream: demo, auth: apikey, rateLimit: [ { limit: 100000, window: 1m, by: "header:x-tenant" } ] }
`);
});
after(async () => { await g.close(); await up.close(); });

async function series(): Promise<Set<string>> {
  const r = await request(`${g.adminUrl}/metrics`);
  const text = await r.body.text();
  // Values change; the label sets are what must stay bounded.
  return new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.replace(/ [^ ]+$/, '')));
}

const rnd = () => randomBytes(6).toString('hex');

async function warm(): Promise<void> {
  await (await request(`${g.url}/v1/users/1`)).body.dump();
  await (await request(`${g.url}/keyed`, { headers: { 'x-api-key': 'warm-bad' } })).body.dump();
  await (await request(`${g.url}/keyed`, { headers: { 'x-api-key': 'acme-key-000000000000', 'x-tenant': 't' } })).body.dump();
  await (await request(`${g.url}/nope`)).body.dump();
  await (await request(`${g.url}/v1/users/1`, { method: 'DELETE' })).body.dump();
}

test('CWE-770: random API keys, tenants, Host headers, request ids, header names and queries add no series', async () => {
  await warm();
  const before = await series();
  for (let i = 0; i < 300; i++) {
    const headers: Record<string, string> = { host: `h${rnd()}.example`, 'x-request-id': rnd(), [`x-${rnd()}`]: rnd() };
    const kind = i % 3;
    const path = kind === 0 ? `/v1/users/${rnd()}?${rnd()}=${rnd()}` : kind === 1 ? '/keyed' : `/${rnd()}`;
    if (kind === 1) { headers['x-api-key'] = i % 2 ? `bad-${rnd()}` : 'acme-key-000000000000'; headers['x-tenant'] = rnd(); }
    await (await request(`${g.url}${path}`, { headers })).body.dump();
  }
  const after = await series();
  const added = [...after].filter((s) => !before.has(s));
  assert.deepEqual(added, [], `new series: ${added.slice(0, 5).join(' | ')}`);
});

test('CWE-770: unusual but valid HTTP methods (RFC 9110 §9) do not mint a series each beyond the parser\'s fixed set', async () => {
  const methods = ['PROPFIND', 'MKCOL', 'LOCK', 'UNLOCK', 'SEARCH', 'PURGE', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PATCH', 'LINK', 'UNLINK', 'SOURCE', 'QUERY', 'ACL', 'BIND', 'REBIND', 'UNBIND', 'COPY', 'MOVE', 'PROPPATCH', 'TRACE'];
  for (const m of methods) await rawRequest(g.port, [`${m} /v1/users/1 HTTP/1.1`, 'Host: gw'].join('\r\n'));
  const made = [...await series()].filter((s) => s.startsWith('gatehouse_requests_total'));
  const methodsSeen = new Set(made.map((s) => /method="([^"]*)"/.exec(s)?.[1]).filter(Boolean));
  // The standard methods are labels; every other method llhttp accepts (a closed list) is one "OTHER".
  assert.ok(methodsSeen.has('OTHER'), [...methodsSeen].join(','));
  for (const m of methodsSeen) assert.ok(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'].includes(m!), `method label ${m}`);
  const r = await rawRequest(g.port, ['FOOBAR123 /v1/users/1 HTTP/1.1', 'Host: gw'].join('\r\n')).catch(() => null);
  assert.ok(r === null || r.status === 400);
  assert.ok(![...await series()].some((s) => s.includes('FOOBAR123')));
});
