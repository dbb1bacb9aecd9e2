// The configuration contract: positions in errors, "did you mean", interpolation, precedence, units.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';
import { parseDuration, parseSize } from '../../src/config/units.ts';

/** Loads, expecting failure; returns the formatted lines (`file:line:col key.path: message`). */
function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}, overrides?: Record<string, unknown>): string[] {
  try {
    loadConfigText(yaml, 'gw.yaml', { env, overrides });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.message, e.issues.map(formatIssue).join('\n'));
    return e.issues.map(formatIssue);
  }
  assert.fail('the config loaded');
}

const BASE = `upstreams:
  chat: { targets: [ http://127.0.0.1:8002 ] }
routes:
  - name: chat
    match: { path: /v1/chat, methods: [POST] }
    upstream: chat
    auth: public
`;

test('errors carry file:line:col, the key path, and "did you mean" for unknown keys, all reported at once', () => {
  const lines = errorsOf(`server:
  listen: 127.0.0.1:8000
  limitz: { maxBodySize: 1mb }
  shutdownGrace: 5 parsecs
upstreams:
  chat: { targets: [ http://127.0.0.1:8002 ] }
routes:
  - match: { path: /x, methodz: [POST] }
    upstream: chat
    auth: public
    timeout: 5 fortnights
`);
  assert.ok(lines.includes('gw.yaml:3:3 server.limitz: unknown key "limitz" (did you mean "limits"?)'), lines.join('\n'));
  assert.ok(lines.includes('gw.yaml:4:18 server.shutdownGrace: "5 parsecs" is not a duration; use a number with ms, s, m, h or d (e.g. "30s")'), lines.join('\n'));
  assert.ok(lines.includes('gw.yaml:8:24 routes[0].match.methodz: unknown key "methodz" (did you mean "methods"?)'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('gw.yaml:11:14 routes[0].timeout: "5 fortnights" is not a duration')), lines.join('\n'));
  assert.equal(lines.length, 4);
});

test('shorthand-or-object keys (timeout, targets) say what is wrong, not "Invalid input"', () => {
  let lines = errorsOf(BASE + '    timeout: { connect: 1s, idle: soon }\n');
  assert.deepEqual(lines, ['gw.yaml:8:14 routes[0].timeout: idle: "soon" is not a duration; use a number with ms, s, m, h or d (e.g. "30s")']);
  lines = errorsOf(BASE + '    timeout: 30\n');
  assert.deepEqual(lines, ['gw.yaml:8:14 routes[0].timeout: expected a duration with a unit, e.g. "30s"']);
  lines = errorsOf(BASE.replace('[ http://127.0.0.1:8002 ]', '[ not-a-url, { url: http://x:1, weight: -1 } ]'));
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0], /^gw\.yaml:2:22 upstreams\.chat\.targets\[0\]: Invalid URL/);
  assert.match(lines[1], /^gw\.yaml:2:\d+ upstreams\.chat\.targets\[1\]\.weight: .*>=0/);
});

test('YAML syntax errors are positioned too', () => {
  const lines = errorsOf('upstreams:\n  chat: { targets: [ http://x ]\nroutes: []\n');
  assert.equal(lines.length >= 1, true);
  assert.match(lines[0], /^gw\.yaml:\d+:\d+ /);
});

test('an unknown upstream gets a suggestion, at the line of the reference', () => {
  const lines = errorsOf(BASE.replace('upstream: chat', 'upstream: caht'));
  assert.deepEqual(lines, ['gw.yaml:6:15 routes[0].upstream: unknown upstream "caht" (did you mean "chat"?)']);
});

test('a route without auth and no defaults.auth does not load; defaults.auth fills it in', () => {
  const noAuth = BASE.replace('    auth: public\n', '');
  assert.deepEqual(errorsOf(noAuth), ['gw.yaml:4:5 routes[0].auth: every route states its auth (public, jwt, apikey or any), or set defaults.auth']);
  const { config } = loadConfigText(noAuth + 'defaults: { auth: public }\n', 'gw.yaml', { env: {} });
  assert.equal(config.defaults.auth, 'public');
});

test('${VAR} and ${VAR:-default} interpolate; a missing variable names the key and the variable', () => {
  const yaml = `server:
  listen: \${HOST:-127.0.0.1}:\${PORT:-8000}
admin:
  token: "\${ADMIN_TOKEN}"
upstreams:
  chat:
    targets: [ "\${CHAT_URL}" ]
    pool:
      connections: \${CONNS:-64}   # block style: "{" starts a flow mapping inside { ... }
routes:
  - { name: chat, match: { path: /v1/chat }, upstream: chat, auth: public, rewrite: { path: "/literal/$\${kept}" } }
`;
  const { config } = loadConfigText(yaml, 'gw.yaml', { env: { PORT: '9100', ADMIN_TOKEN: '12345', CHAT_URL: 'http://10.1.2.3:8002' } });
  assert.deepEqual(config.server.listen, { host: '127.0.0.1', port: 9100 });
  assert.equal(config.admin.token, '12345', 'a quoted scalar stays a string even when it looks like a number');
  assert.equal(config.upstreams.chat.targets[0].url, 'http://10.1.2.3:8002');
  assert.equal(config.upstreams.chat.pool.connections, 64, 'a plain ${VAR:-64} becomes a number');
  assert.equal(config.routes[0].rewrite?.path, '/literal/${kept}', '$${ escapes a literal ${');

  const lines = errorsOf(yaml, { ADMIN_TOKEN: 'x' });
  assert.deepEqual(lines, ['gw.yaml:7:16 upstreams.chat.targets[0]: environment variable CHAT_URL is not set (use ${CHAT_URL:-default} for a default)']);
});

test('a plain ${PORT:-8000} is a number', () => {
  const port = loadConfigText(`server:\n  listen: \${PORT:-8000}\n${BASE}`, 'gw.yaml', { env: {} }).config.server.listen;
  assert.deepEqual(port, { host: '0.0.0.0', port: 8000 });
});

test('GATEHOUSE_* environment overrides beat the file; CLI flags beat both', () => {
  const file = `server:
  listen: 127.0.0.1:8000
  trustedProxies: [ 10.0.0.0/8 ]
  limits: { maxBodySize: 1mb }
observability: { log: { level: info } }
${BASE}`;
  const env = { GATEHOUSE_LISTEN: '127.0.0.1:9000', GATEHOUSE_TRUSTED_PROXIES: '192.168.0.0/16, 127.0.0.1', GATEHOUSE_MAX_BODY_SIZE: '5mb', GATEHOUSE_LOG_LEVEL: 'debug', GATEHOUSE_SHUTDOWN_GRACE: '2s' };
  let { config } = loadConfigText(file, 'gw.yaml', { env });
  assert.deepEqual(config.server.listen, { host: '127.0.0.1', port: 9000 });
  assert.deepEqual(config.server.trustedProxies, ['192.168.0.0/16', '127.0.0.1']);
  assert.equal(config.server.limits.maxBodySize, 5 * 1024 * 1024);
  assert.equal(config.observability.log.level, 'debug');
  assert.equal(config.server.shutdownGrace, 2000);

  ({ config } = loadConfigText(file, 'gw.yaml', { env, overrides: { 'server.listen': '127.0.0.1:7000', 'observability.log.level': 'warn' } }));
  assert.deepEqual(config.server.listen, { host: '127.0.0.1', port: 7000 });
  assert.equal(config.observability.log.level, 'warn');

  // A bad override says where it came from instead of pointing into the file.
  assert.deepEqual(errorsOf(file, { GATEHOUSE_SHUTDOWN_GRACE: 'forever' }), ['environment variable GATEHOUSE_SHUTDOWN_GRACE server.shutdownGrace: "forever" is not a duration; use a number with ms, s, m, h or d (e.g. "30s")']);
  assert.deepEqual(errorsOf(file, {}, { 'server.listen': 'nowhere' }), ['command-line flag server.listen: "nowhere" is not a listen address; use host:port, e.g. 0.0.0.0:8000']);
});

test('durations and sizes parse to milliseconds and bytes', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1d'), 86_400_000);
  for (const bad of ['30', 30, '1w', 's', '-1s', '']) assert.equal(typeof parseDuration(bad), 'string', String(bad));
  assert.equal(parseSize('16kb'), 16 * 1024);
  assert.equal(parseSize('10mb'), 10 * 1024 * 1024);
  assert.equal(parseSize('1gb'), 1024 ** 3);
  assert.equal(parseSize('1.5KB'), 1536);
  assert.equal(parseSize(2048), 2048);
  assert.equal(parseSize('2048'), 2048);
  for (const bad of ['10 parsecs', '1tb', -1, 1.5, 'mb']) assert.equal(typeof parseSize(bad), 'string', String(bad));

  const { config } = loadConfigText(`server:
  limits: { maxBodySize: 10mb, maxHeaderSize: 16kb, headersTimeout: 250ms, requestTimeout: 5m }
  shutdownGrace: 1.5s
${BASE.replace('    auth: public\n', '    auth: public\n    timeout: { response: 2m, idle: 30s }\n    limits: { maxBodySize: 1gb }\n')}`, 'gw.yaml', { env: {} });
  assert.deepEqual(config.server.limits, { ...config.server.limits, maxBodySize: 10485760, maxHeaderSize: 16384, headersTimeout: 250, requestTimeout: 300_000 });
  assert.equal(config.server.shutdownGrace, 1500);
  assert.deepEqual(config.routes[0].timeouts, { connect: 5000, response: 120_000, idle: 30_000 });
  assert.equal(config.routes[0].maxBodySize, 1024 ** 3);
});

test('a route-level connect timeout is refused at load, naming where it belongs', () => {
  const lines = errorsOf(BASE.replace('    auth: public\n', '    auth: public\n    timeout: { connect: 1s }\n'));
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], /routes\[0\]\.timeout\.connect: the connect timeout belongs to the upstream's connection pool: set upstreams\.\w+\.timeout\.connect/);
  assert.match(lines[0], /^gw\.yaml:\d+:\d+ /);
});

test('a misspelt upstream is reported in the same run as schema errors elsewhere', () => {
  const lines = errorsOf(`upstreams:
  chat: { targets: [ http://127.0.0.1:8002 ] }
routes:
  - match: { path: /v1/chat, methdos: [POST] }
    upstream: caht
    auth: public
`);
  assert.deepEqual(lines, [
    'gw.yaml:4:30 routes[0].match.methdos: unknown key "methdos" (did you mean "methods"?)',
    'gw.yaml:5:15 routes[0].upstream: unknown upstream "caht" (did you mean "chat"?)',
  ]);
});
