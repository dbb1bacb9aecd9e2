import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coolingMs, providerHeaders } from '../../src/upstreams/provider.ts';

const h = (o: Record<string, string>) => Object.entries(o).flat();

test('cooling: Retry-After (seconds, date, ms) first, then the providers\' reset headers, else the fallback for a 429 only; capped', () => {
  const now = Date.UTC(2026, 10, 25, 12, 0, 0);
  assert.equal(coolingMs(429, h({ 'Retry-After': '3' }), 5000, 300_000, now), 3000);
  assert.equal(coolingMs(429, h({ 'retry-after': new Date(now + 7000).toUTCString() }), 5000, 300_000, now), 7000);
  assert.equal(coolingMs(429, h({ 'retry-after-ms': '1500' }), 5000, 300_000, now), 1500);
  assert.equal(coolingMs(429, h({ 'x-ratelimit-reset-requests': '1m30.5s', 'x-ratelimit-reset-tokens': '20ms' }), 5000, 300_000, now), 90_500);
  assert.equal(coolingMs(429, h({ 'anthropic-ratelimit-tokens-reset': new Date(now + 12_000).toISOString() }), 5000, 300_000, now), 12_000);
  assert.equal(coolingMs(429, h({ 'retry-after': '2', 'x-ratelimit-reset-requests': '60s' }), 5000, 300_000, now), 2000, 'Retry-After is the provider\'s answer to this request');
  assert.equal(coolingMs(429, [], 5000, 300_000, now), 5000);
  assert.equal(coolingMs(503, [], 5000, 300_000, now), 0, 'a 5xx without a hint: no cooling (health and circuits handle repeated failures)');
  assert.equal(coolingMs(503, h({ 'retry-after': '4' }), 5000, 300_000, now), 4000);
  assert.equal(coolingMs(429, h({ 'retry-after': '86400' }), 5000, 300_000, now), 300_000, 'capped at maxCooldown');
  assert.equal(coolingMs(429, h({ 'x-ratelimit-reset-requests': 'soon' }), 5000, 300_000, now), 5000, 'an unreadable header is ignored');
});

test('provider credentials: the client\'s are removed, the provider\'s set; an Anthropic version is added only when missing', () => {
  const openai = providerHeaders({ provider: 'openai', apiKey: 'sk-p' })!;
  const a: Record<string, string> = { authorization: 'Bearer client', 'x-api-key': 'c', 'api-key': 'c', 'openai-organization': 'o', 'openai-project': 'p', 'content-type': 'application/json' };
  openai(a);
  assert.deepEqual(a, { authorization: 'Bearer sk-p', 'content-type': 'application/json' });
  const anthropic = providerHeaders({ provider: 'anthropic', apiKey: 'sk-ant' })!;
  const b: Record<string, string> = { authorization: 'Bearer client', 'anthropic-version': '2024-01-01', 'anthropic-beta': 'x' };
  anthropic(b);
  assert.deepEqual(b, { 'x-api-key': 'sk-ant', 'anthropic-version': '2024-01-01', 'anthropic-beta': 'x' });
  const local = providerHeaders({ provider: 'openai-compatible' })!;
  const c: Record<string, string> = { authorization: 'Bearer client' };
  local(c);
  assert.deepEqual(c, {}, 'no key configured: the client\'s is still not forwarded');
  assert.equal(providerHeaders({}), null);
});
