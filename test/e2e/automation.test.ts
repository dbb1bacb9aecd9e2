// examples/automation (seed 003): the FastAPI middleware chain logging → rate limit → quota →
// JWT → agent router as one Gatehouse file. Limits are made small through the example's own
// environment variables so the suite reaches 429 and 402 in a handful of requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startExample, hs256, accessLines, type RunningExample } from './harness.ts';
import type { StubEcho } from './stubs.ts';

const SERVICES = {
  EMAIL_AGENT_URL: 'email-agent',
  RAG_AGENT_URL: 'rag-agent',
  SCRAPER_AGENT_URL: 'scraper-agent',
  SUPPORT_AGENT_URL: 'support-agent',
  AIOPS_AGENT_URL: 'aiops-agent',
};
const JWT_SECRET_KEY = randomBytes(32).toString('base64url');

let ex: RunningExample;
before(async () => {
  ex = await startExample('automation', {
    services: SERVICES,
    env: { JWT_SECRET_KEY, FREE_MONTHLY_REQUESTS: '3', PRO_RATE_PER_MINUTE: '5', PRO_MONTHLY_TOKENS: '1000' },
  });
});
after(async () => { await ex?.close(); });

async function as(sub: string, plan: string | undefined, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const token = await hs256(JWT_SECRET_KEY, plan ? { sub, plan } : { sub });
  const r = await request(`${ex.g.url}${path}`, { method: (init.method ?? 'POST') as 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers }, body: init.body ?? '{"task":"x"}' });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body: JSON.parse(text) as Record<string, unknown> & Partial<StubEcho> };
}

test('each /api/<agent>/* reaches its agent with the rest of the path, the verified user and plan', async () => {
  for (const agent of ['email', 'rag', 'scraper', 'support', 'aiops']) {
    const r = await as('user-route', 'enterprise', `/api/${agent}/v1/tasks/7?dry_run=1`, { headers: { 'x-user-id': 'spoofed' } });
    assert.equal(r.status, 200, agent);
    assert.equal(r.body.service, `${agent}-agent`);
    assert.equal(r.body.path, '/v1/tasks/7');
    assert.equal(r.body.query, 'dry_run=1');
    assert.equal(r.body.method, 'POST');
    assert.equal(r.body.headers?.['x-user-id'], 'user-route');
    assert.equal(r.body.headers?.['x-user-plan'], 'enterprise');
  }
});

test('no or bad token: 401 first, before any limit or quota is spent (auth precedes them)', async () => {
  const seen = ex.stub('email-agent').seen.length;
  for (const authorization of [undefined, 'Bearer not-a-jwt', `Bearer ${await hs256('wrong-secret-wrong-secret-wrong-secret', { sub: 'x' })}`]) {
    const r = await request(`${ex.g.url}/api/email/send`, { method: 'POST', headers: authorization ? { authorization } : {} });
    assert.equal(r.statusCode, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    await r.body.dump();
  }
  assert.equal(ex.stub('email-agent').seen.length, seen);
  // Anonymous callers share no bucket: 20 refusals later, the free plan's 20/min is untouched for a real user.
  for (let i = 0; i < 20; i++) await (await request(`${ex.g.url}/api/email/send`, { method: 'POST' })).body.dump();
  assert.equal((await as('user-after-anon', 'free', '/api/email/send')).status, 200);
});

test('rate limit per user per minute: 429 with RateLimit fields and Retry-After; other users are not affected', async () => {
  const statuses: number[] = [];
  let last: Awaited<ReturnType<typeof as>> | undefined;
  for (let i = 0; i < 6; i++) { last = await as('user-burst', 'pro', '/api/aiops/incidents'); statuses.push(last.status); }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  assert.equal(last!.body.code, 'rate_limited');
  assert.ok(Number(last!.headers['retry-after']) >= 1);
  assert.ok(last!.headers['ratelimit-policy'] !== undefined && last!.headers.ratelimit !== undefined);
  assert.equal((await as('user-calm', 'pro', '/api/aiops/incidents')).status, 200);
});

test('quota: the free plan’s monthly requests run out → 402 problem+json, and the agent is not called', async () => {
  const email = ex.stub('email-agent');
  for (let i = 0; i < 3; i++) assert.equal((await as('user-free', undefined, '/api/email/send')).status, 200);
  const before = email.seen.length;
  const r = await as('user-free', undefined, '/api/email/send');
  assert.equal(r.status, 402);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  assert.equal(r.body.code, 'quota_exceeded');
  assert.match(String(r.body.detail), /monthly requests quota \(3\)/);
  assert.equal(email.seen.length, before);
  // The quota is the user's across agents ("requests" counts every agent call).
  assert.equal((await as('user-free', undefined, '/api/rag/query')).status, 402);
  assert.equal((await as('user-free-2', 'free', '/api/email/send')).status, 200);
});

test('usage type per agent: rag and support spend tokens (from the agents’ usage blocks); email only counts requests', async () => {
  const rag = (usage: number) => as('user-tokens', 'pro', '/api/rag/query', { headers: { 'x-stub-usage': String(usage) }, body: JSON.stringify({ query: 'q', max_tokens: 10 }) });
  assert.equal((await rag(600)).status, 200);
  assert.equal((await rag(600)).status, 200); // 1200 of 1000 tokens used: the next reservation cannot fit
  const over = await rag(10);
  assert.equal(over.status, 402);
  assert.match(String(over.body.detail), /tokens quota \(1000\)/);
  assert.equal((await as('user-tokens', 'pro', '/api/support/ticket', { headers: { 'x-stub-usage': '5' } })).status, 402, 'support shares the tokens quota');
  assert.equal((await as('user-tokens', 'pro', '/api/email/send')).status, 200, 'email does not spend tokens');
});

test('the logging middleware’s job: one access-log line per request (including refusals), no token in any line', async () => {
  const lines = accessLines(ex.g);
  const statuses = new Set(lines.map((l) => l.status));
  for (const s of [200, 401, 402, 429]) assert.ok(statuses.has(s), `an access line with status ${s}`);
  assert.ok(lines.filter((l) => l.status === 402).every((l) => l.error === 'quota_exceeded' && typeof l.route === 'string'));
  assert.ok(lines.filter((l) => l.status === 200).every((l) => typeof l.consumer === 'string' && typeof l.durationMs === 'number'));
  assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\./.test(ex.g.rawLogs()), 'no JWT in the logs');
});
