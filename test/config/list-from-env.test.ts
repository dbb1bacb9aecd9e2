import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';

const yaml = `
server:
  cors: { origins: ["\${CORS_ORIGINS:-http://localhost:3000}"], credentials: false }
  trustedProxies:
    - 127.0.0.1
    - \${EXTRA_PROXIES:-10.0.0.0/8}
    - 192.168.0.0/16
upstreams:
  svc: { targets: [ "\${SVC_URL:-http://127.0.0.1:9}" ] }
routes:
  - { name: r, match: { path: /x, methods: [GET] }, upstream: svc, auth: jwt, authorize: { claims: { team: ["research, applied"] } } }
auth: { jwt: [ { name: m, secret: "k3Yq9v2mZr8TtW1pLx4NcB7sHd0GfJe6", algorithms: [HS256] } ] }
`;

test('a list item that is exactly one ${VAR} takes a comma-separated value as several items', () => {
  const { config } = loadConfigText(yaml, 'x.yaml', { env: { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com,', EXTRA_PROXIES: '10.1.0.0/16,10.2.0.0/16' } });
  assert.deepEqual(config.server.cors?.origins, ['https://app.example.com', 'https://admin.example.com']);
  assert.deepEqual(config.server.trustedProxies, ['127.0.0.1', '10.1.0.0/16', '10.2.0.0/16', '192.168.0.0/16']);
});

test('defaults split the same way; single values, and text around a reference, stay one item', () => {
  const one = loadConfigText(yaml, 'x.yaml', { env: {} }).config;
  assert.deepEqual(one.server.cors?.origins, ['http://localhost:3000']);
  assert.deepEqual(one.server.trustedProxies, ['127.0.0.1', '10.0.0.0/8', '192.168.0.0/16']);
  // A literal comma that is not a whole-item reference is left alone.
  assert.deepEqual(one.routes[0].authorize?.claims?.team, ['research, applied']);
  const two = loadConfigText(yaml.replace('"${CORS_ORIGINS:-http://localhost:3000}"', '"${CORS_ORIGINS:-http://localhost:3000,http://localhost:5173}"'), 'x.yaml', { env: {} }).config;
  assert.deepEqual(two.server.cors?.origins, ['http://localhost:3000', 'http://localhost:5173']);
});

test('a bad item from a split value is reported at the list', () => {
  assert.throws(() => loadConfigText(yaml, 'x.yaml', { env: { CORS_ORIGINS: 'https://ok.example.com,not an origin' } }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const msg = e.issues.map((i) => `${i.path} ${i.message} @${i.line}`).join('\n');
    assert.match(msg, /server\.cors\.origins\[1\] "not an origin" is not an origin.*@3/);
    return true;
  });
});
