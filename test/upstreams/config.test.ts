import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';

const base = (upstreams: string) => `
upstreams:
${upstreams}
routes:
  - { match: { path: /x }, upstream: a, auth: public }
`;

function issues(yaml: string): string[] {
  try {
    loadConfigText(yaml, 't.yaml', { env: {} });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
}

test('resilience settings parse with their defaults', () => {
  const { config } = loadConfigText(base(`  a: { targets: [ http://127.0.0.1:1 ], passiveHealth: {}, retry: {}, circuitBreaker: {}, health: {} }`), 't.yaml', { env: {} });
  const a = config.upstreams.a;
  assert.deepEqual(a.passiveHealth, { failures: 5, minRequests: 20, ejectFor: 1000, maxEjectFor: 30_000 });
  assert.deepEqual(a.retry, { attempts: 2, budget: '20%', backoff: 25, minRetries: 10, retryOn: [502, 503, 504] });
  assert.deepEqual(a.circuitBreaker, { failures: 5, minRequests: 20, resetAfter: 60_000, halfOpenRequests: 1 });
  assert.equal(a.health!.interval, 30_000);
  assert.equal(a.critical, true);
});

test('a fallback cycle and a reversed ejection range are config errors; so are a misspelt key and a budget that is not a percentage', () => {
  const refs = issues(base(`  a: { targets: [ http://127.0.0.1:1 ], fallback: b }
  b: { targets: [ http://127.0.0.1:2 ], fallback: a, passiveHealth: { ejectFor: 10s, maxEjectFor: 1s } }`)).join('\n');
  assert.match(refs, /fallback cycle: a → b → a/);
  assert.match(refs, /fallback cycle: b → a → b/);
  assert.match(refs, /maxEjectFor is shorter than ejectFor/);
  const schema = issues(base(`  a: { targets: [ http://127.0.0.1:3 ], retry: { budget: "20" }, circuitBreaker: { failurs: 3 } }`)).join('\n');
  assert.match(schema, /retry\.budget: a percentage, e\.g\. "20%"/);
  assert.match(schema, /unknown key "failurs" \(did you mean "failures"\?\)/);
});

test('round-robin with differing weights warns that only 0 matters', () => {
  const { warnings } = loadConfigText(base(`  a: { targets: [ { url: "http://127.0.0.1:1", weight: 90 }, { url: "http://127.0.0.1:2", weight: 10 } ] }`), 't.yaml', { env: {} });
  assert.ok(warnings.some((w) => /round-robin ignores weights/.test(w)), warnings.join('\n'));
  const { warnings: none } = loadConfigText(base(`  a: { balance: weighted, targets: [ { url: "http://127.0.0.1:1", weight: 90 }, { url: "http://127.0.0.1:2", weight: 10 } ] }`), 't.yaml', { env: {} });
  assert.ok(!none.some((w) => /round-robin/.test(w)));
});
