// admin.token is required whenever the admin listener is reachable from other machines (src/config/check.ts):
// the admin API changes consumers, keys, weights and the config itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';
import { isLoopback } from '../../src/config/check.ts';

const ROUTES = `upstreams:
  chat: { targets: [ http://127.0.0.1:8002 ] }
routes:
  - { name: chat, match: { path: /v1/chat }, upstream: chat, auth: public }
`;

function load(yaml: string, env: NodeJS.ProcessEnv = {}) {
  try {
    return { config: loadConfigText(yaml, 'gw.yaml', { env }).config, errors: [] as string[] };
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return { config: null, errors: e.issues.map(formatIssue) };
  }
}

test('an admin listener off loopback without admin.token does not load, positioned at file:line', () => {
  const { errors } = load(`admin:
  listen: 0.0.0.0:9901
${ROUTES}`);
  assert.deepEqual(errors, ['gw.yaml:2:3 admin.token: the admin listener is on 0.0.0.0, reachable from other machines: set admin.token (e.g. "${GATEHOUSE_ADMIN_TOKEN}"), or listen on 127.0.0.1']);

  // an empty token from the environment is no token
  const fromEnv = load(`admin:
  listen: "[::]:9901"
  token: "\${GATEHOUSE_ADMIN_TOKEN:-}"
${ROUTES}`);
  assert.deepEqual(fromEnv.errors, ['gw.yaml:3:10 admin.token: the admin listener is on ::, reachable from other machines: set admin.token (e.g. "${GATEHOUSE_ADMIN_TOKEN}"), or listen on 127.0.0.1']);
});

test('with a token, on loopback, or with the admin listener disabled, it loads', () => {
  const token = `admin:
  listen: 0.0.0.0:9901
  token: "\${GATEHOUSE_ADMIN_TOKEN}"
${ROUTES}`;
  assert.equal(load(token, { GATEHOUSE_ADMIN_TOKEN: 'b7c1e09a4f2d4e8c9a61d3f5e2b80c47' }).config?.admin.token, 'b7c1e09a4f2d4e8c9a61d3f5e2b80c47');
  for (const listen of ['127.0.0.1:9901', '127.0.0.2:9901', 'localhost:9901', '"[::1]:9901"']) {
    assert.deepEqual(load(`admin: { listen: ${listen} }\n${ROUTES}`).errors, [], listen);
  }
  assert.deepEqual(load(ROUTES).errors, [], 'the default is 127.0.0.1:9901');
  assert.deepEqual(load(`admin: { listen: 0.0.0.0:9901, enabled: false }\n${ROUTES}`).errors, []);
});

test('loopback means loopback: a host name that starts with "127." is not', () => {
  assert.deepEqual(load(`admin: { listen: "127.example.com:9901" }\n${ROUTES}`).errors.map((l) => l.replace(/:.*? admin/, ' admin')), [
    'gw.yaml admin.token: the admin listener is on 127.example.com, reachable from other machines: set admin.token (e.g. "${GATEHOUSE_ADMIN_TOKEN}"), or listen on 127.0.0.1',
  ]);
  for (const h of ['localhost', '127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '::2', '1::1', '127.example.com', '::ffff:10.0.0.1']) assert.equal(isLoopback(h), false, h);
});
