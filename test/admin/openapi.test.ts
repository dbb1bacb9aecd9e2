import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { Gateway } from '../../src/gateway.ts';
import { adminRoutes } from '../../src/admin/server.ts';
import { ADMIN_OPENAPI } from '../../src/admin/openapi.ts';
import { startDemoServer } from '../../src/demo/services.ts';
import { startGateway, call } from '../helpers.ts';

const YAML = `
upstreams:
  api: { targets: [ http://127.0.0.1:9 ] }
routes:
  - { match: { path: /x }, upstream: api, auth: public }
`;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function documented(): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(ADMIN_OPENAPI.paths)) {
    for (const m of Object.keys(item)) if (METHODS.includes(m)) out.add(`${m.toUpperCase()} ${path}`);
  }
  return out;
}

test('GET /openapi.json describes every admin route registered in src/admin/ and nothing else', () => {
  const gw = new Gateway(loadConfigText(YAML, 'test.yaml', { env: {} }), { defaultMetrics: false });
  try {
    const { routes } = adminRoutes(gw);
    const registered = new Set([...routes.keys()].map((k) => k.replace(/:([A-Za-z]+)/g, '{$1}')));
    // The health probes are the runtime's built-ins, answered on the admin listener too ('/' is the dashboard there).
    for (const p of gw.builtins.keys()) if (p !== '/') registered.add(`GET ${p}`);
    const doc = documented();
    assert.deepEqual([...registered].filter((r) => !doc.has(r)).sort(), [], 'registered but not in src/admin/openapi.ts');
    assert.deepEqual([...doc].filter((r) => !registered.has(r)).sort(), [], 'in src/admin/openapi.ts but not registered');
  } finally {
    void gw.close();
  }
});

test('the OpenAPI document is 3.1, every operation has a unique operationId, responses and declared path parameters, and every $ref resolves', () => {
  assert.equal(ADMIN_OPENAPI.openapi, '3.1.0');
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(ADMIN_OPENAPI.paths)) {
    for (const [m, op] of Object.entries(item as Record<string, { operationId: string; responses: object; parameters?: Array<{ name: string; in: string }> }>)) {
      assert.ok(METHODS.includes(m), `${path}: ${m}`);
      assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      assert.ok(Object.keys(op.responses).length > 0, `${m} ${path} has responses`);
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]).sort();
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
      assert.deepEqual(declared, inPath, `${m} ${path}: path parameters`);
    }
  }
  const text = JSON.stringify(ADMIN_OPENAPI);
  for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)) {
    assert.ok(Object.hasOwn(ADMIN_OPENAPI.components.schemas, name), `$ref ${name} resolves`);
  }
});

test('GET /openapi.json on the admin listener (behind the token); every documented GET without parameters answers, none with 404', async (t) => {
  const svc = await startDemoServer();
  const g = await startGateway(`
admin: { token: openapi-h15a-token }
upstreams:
  api: { targets: [ ${svc.url} ] }
routes:
  - { match: { path: /x }, upstream: api, auth: public }
`);
  t.after(async () => { await g.close(); await svc.close(); });
  const auth = { authorization: 'Bearer openapi-h15a-token' };
  assert.equal((await call(`${g.adminUrl}/openapi.json`)).status, 401);
  const r = await call(`${g.adminUrl}/openapi.json`, { headers: auth });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), JSON.parse(JSON.stringify(ADMIN_OPENAPI)));
  for (const key of documented()) {
    const [method, path] = key.split(' ');
    if (method !== 'GET' || path.includes('{') || path === '/admin/events') continue;
    const res = await call(`${g.adminUrl}${path}`, { headers: auth });
    assert.notEqual(res.status, 404, `${key} answers`);
    assert.ok(res.status < 500, `${key}: ${res.status}`);
  }
});
