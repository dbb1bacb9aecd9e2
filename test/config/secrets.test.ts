import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { placeholderReason } from '../../src/config/secrets.ts';

const yaml = (environment: string, s: { captcha?: string; jwt?: string; admin?: string }) => `
server: { environment: ${environment} }
admin: { token: "${s.admin ?? ''}" }
captcha:
  login: { provider: recaptcha-v2, secret: "${s.captcha ?? 'c0rrect-h0rse-battery-staple-captcha'}" }
auth:
  jwt: [ { name: main, issuer: https://auth.example.com/, secret: "${s.jwt ?? 'k'.repeat(32)}", algorithms: [HS256] } ]
upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }
routes: [ { match: { path: /a }, upstream: a, auth: public, captcha: login } ]
`;

function refusal(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfigText(text, 'gatehouse.yaml', { env });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
  }
  assert.fail('the config loaded');
}

test('the placeholder list: the seeds\' defaults and their families', () => {
  for (const v of ['your_secret_key', 'changeme', 'secret', 'password', 'dev-secret-key-change-in-production', 'dev-gateway-key-12345', 'your_api_key_here', 'change-this-please', 'CHANGEME', '  ', '']) {
    assert.notEqual(placeholderReason(v), null, JSON.stringify(v));
  }
  for (const v of ['6f1c0a0e2b4d48c9a8e4b1f3c5d7e9a1', 'x7Kq-secret-rotated-2024', 'mysecretkey123456']) assert.equal(placeholderReason(v), null, v);
});

test('production refuses placeholder and empty secrets, naming the key and never the value', () => {
  const text = refusal(yaml('production', { captcha: 'your_secret_key', jwt: 'dev-secret-key-change-in-production', admin: 'changeme' }));
  assert.match(text, /captcha\.login\.secret: is a placeholder value; refusing to start in production/);
  assert.match(text, /auth\.jwt\[0\]\.secret: is a placeholder value; refusing/);
  assert.match(text, /admin\.token: is a placeholder value; refusing/);
  for (const v of ['your_secret_key', 'dev-secret-key-change-in-production', 'changeme']) assert.ok(!text.includes(v), `the value ${v} leaked`);

  assert.match(refusal(yaml('production', { captcha: '' })), /captcha\.login\.secret: is empty; refusing/);
  // Through interpolation, as seed 001 did it: the variable unset, the default a placeholder.
  assert.match(refusal(yaml('production', { captcha: '${RECAPTCHA_SECRET_KEY:-your_secret_key}' })), /captcha\.login\.secret: is a placeholder value/);
  assert.match(refusal(yaml('production', { captcha: '${RECAPTCHA_SECRET_KEY:-}' })), /captcha\.login\.secret: is empty/);
});

test('production refuses HS secrets under 32 bytes and providers\' public test secrets', () => {
  const short = refusal(yaml('production', { jwt: 'a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p' }));
  assert.match(short, /auth\.jwt\[0\]\.secret: is 31 bytes; HS secrets need at least 32 random bytes; refusing/);
  assert.ok(!short.includes('a1b2c3d4'));
  assert.match(refusal(yaml('production', { captcha: '1x0000000000000000000000000000000AA' })), /captcha\.login\.secret: is the provider's public test secret/);
  assert.match(refusal(yaml('production', { captcha: '6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe' })), /public test secret/);
});

test('development and staging load with warnings instead', () => {
  for (const env of ['development', 'staging']) {
    const { warnings } = loadConfigText(yaml(env, { captcha: 'your_secret_key', jwt: 'short', admin: 'password' }), 'gatehouse.yaml', { env: {} });
    assert.ok(warnings.some((w) => /^captcha\.login\.secret: is a placeholder value; this would refuse to start in production/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /^auth\.jwt\[0\]\.secret: is a placeholder value/.test(w)) || warnings.some((w) => /^auth\.jwt\[0\]\.secret: is 5 bytes/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /^admin\.token: is a placeholder value/.test(w)));
    assert.ok(!warnings.join('\n').includes('your_secret_key'));
  }
  // Test secrets are what development is for.
  const { warnings } = loadConfigText(yaml('development', { captcha: '1x0000000000000000000000000000000AA' }), 'gatehouse.yaml', { env: {} });
  assert.deepEqual(warnings.filter((w) => w.startsWith('captcha')), []);
});

test('real secrets load cleanly in production; an empty admin token means none', () => {
  const { warnings } = loadConfigText(yaml('production', {}), 'gatehouse.yaml', { env: {} });
  assert.deepEqual(warnings.filter((w) => /secret|token/.test(w)), []);
});
