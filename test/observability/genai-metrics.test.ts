// The metrics operators watch (seed 004, issue 15): time to first byte and to the first SSE event per route,
// tokens per request per model (the config's bounded model label), auth/captcha/CORS refusals by reason, and
// health-check durations per upstream; read from a real gateway's /metrics after real traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, eventually } from '../helpers.ts';
import { startLlmStub } from '../support/llm-stub.ts';
import { metric } from '../upstreams/faulty-upstream.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';

const KEY = 'h15b-metrics-key-0123456789';

test('TTFB and TTFE per route, token histograms per model, refusals by reason, health-check duration per upstream', async (t) => {
  const llm = await startLlmStub('llm', 'openai');
  llm.usage = { input: 1000, output: 50 };
  llm.eventDelayMs = 30;
  const g = await startGateway(`
observability: { log: { level: warn }, metrics: { models: [gpt-4o] } }
server: { cors: { origins: [https://app.example.com], methods: [GET, POST] } }
consumers: [ { id: acme, keys: ["${hashApiKey(KEY)}"] } ]
captcha:
  v2: { provider: recaptcha-v2, secret: v2-secret-5f1c2a9e8b7d6c5b4a3f, tokenField: recaptcha_token, verifyUrl: "http://127.0.0.1:9/siteverify" }
upstreams:
  llm: { targets: [ ${llm.url} ], health: { path: /health, interval: 100ms, timeout: 500ms } }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: llm
    auth: apikey
    rateLimit: [ { limit: 1000000, window: 1m, unit: tokens, by: route } ]
  - { name: signup, match: { path: /signup, methods: [POST] }, upstream: llm, auth: public, captcha: v2 }
`);
  t.after(async () => { await g.close(); await llm.close(); });
  const chat = async (model: string, stream: boolean, key: string | null = KEY) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key !== null) headers['x-api-key'] = key;
    const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }) });
    await r.body.text();
    return r.statusCode;
  };
  assert.equal(await chat('gpt-4o', false), 200);
  assert.equal(await chat('gpt-4o', true), 200);
  assert.equal(await chat('some-client-chosen-model', false), 200);
  assert.equal(await chat('gpt-4o', false, null), 401);
  assert.equal(await chat('gpt-4o', false, 'not-a-key-0000000000'), 401);
  const cap = await request(`${g.url}/signup`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x' });
  await cap.body.text();
  assert.equal(cap.statusCode, 400); // no token at all: captcha_required
  const pre = await request(`${g.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  await pre.body.text();
  assert.equal(pre.statusCode, 403);

  const scrape = async () => (await request(`${g.adminUrl}/metrics`)).body.text();
  // health checks run every 100 ms: a few durations observed for the upstream
  const text = await eventually(async () => {
    const s = await scrape();
    return (metric(s, 'gatehouse_upstream_health_check_duration_seconds_count', { upstream: 'llm' }) ?? 0) >= 2 ? s : null;
  }, 3000) as string;

  // Every answered chat request has a first byte; only the streamed one has a first event, and it came after the head.
  assert.equal(metric(text, 'gatehouse_time_to_first_byte_seconds_count', { route: 'chat' }), 3);
  assert.equal(metric(text, 'gatehouse_time_to_first_event_seconds_count', { route: 'chat' }), 1);
  const ttfe = metric(text, 'gatehouse_time_to_first_event_seconds_sum', { route: 'chat' })!;
  assert.ok(ttfe > 0 && ttfe < 10, `ttfe ${ttfe}`);

  // Tokens per request per model: a model the config lists is its own label; one a client made up is "other".
  assert.equal(metric(text, 'gatehouse_request_tokens_count', { model: 'gpt-4o', type: 'input' }), 2);
  assert.equal(metric(text, 'gatehouse_request_tokens_bucket', { model: 'gpt-4o', type: 'input', le: '256' }), 0);
  assert.equal(metric(text, 'gatehouse_request_tokens_bucket', { model: 'gpt-4o', type: 'input', le: '1024' }), 2);
  assert.equal(metric(text, 'gatehouse_request_tokens_bucket', { model: 'gpt-4o', type: 'output', le: '64' }), 2);
  assert.equal(metric(text, 'gatehouse_request_tokens_count', { model: 'other', type: 'input' }), 1);
  assert.ok(!text.includes('some-client-chosen-model'));

  // Refusals by kind and reason (the problem code)
  assert.equal(metric(text, 'gatehouse_refusals_total', { route: 'chat', kind: 'auth', reason: 'unauthorized' }), 1);
  assert.equal(metric(text, 'gatehouse_refusals_total', { route: 'chat', kind: 'auth', reason: 'invalid_token' }), 1);
  assert.equal(metric(text, 'gatehouse_refusals_total', { route: 'signup', kind: 'captcha', reason: 'captcha_required' }), 1);
  assert.equal(metric(text, 'gatehouse_refusals_total', { kind: 'cors', reason: 'cors_rejected' }), 1);
  assert.ok(!text.includes(KEY) && !text.includes('not-a-key'));
});
