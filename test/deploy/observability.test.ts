// deploy/observability/: the Grafana dashboard and the Prometheus alert rules reference only metrics a running
// gateway exports (histograms through their _bucket/_sum/_count series), read from its /metrics after traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { parse } from 'yaml';
import { startGateway } from '../helpers.ts';
import { startLlmStub } from '../support/llm-stub.ts';

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'observability');

/** Series names a Prometheus scrape can hold, from the # TYPE lines of the exposition. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

const referenced = (exprs: string[]) => new Set(exprs.flatMap((e) => [...e.matchAll(/\bgatehouse_[a-z0-9_]+/g)].map((m) => m[0])));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- dashboard JSON is read by key path
type Obj = Record<string, any>;

function dashboardExprs(d: Obj): string[] {
  const out: string[] = [];
  for (const p of d.panels as Obj[]) for (const t of (p.targets ?? []) as Obj[]) out.push(t.expr as string);
  for (const v of d.templating.list as Obj[]) if (v.query?.query) out.push(v.query.query as string);
  for (const a of d.annotations.list as Obj[]) if (a.expr) out.push(a.expr as string);
  return out;
}

test('every metric the dashboard and the alert rules use is one the gateway exports', async (t) => {
  const llm = await startLlmStub('llm', 'openai');
  const g = await startGateway(`
observability: { log: { level: warn } }
upstreams: { llm: { targets: [ ${llm.url} ], health: { path: /health, interval: 1s } } }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: llm
    auth: public
    rateLimit: [ { limit: 1000000, window: 1m, unit: tokens, by: route } ]
`);
  t.after(async () => { await g.close(); await llm.close(); });
  for (const stream of [false, true]) {
    const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o', stream }) });
    assert.equal(r.statusCode, 200);
    await r.body.text();
  }
  const exported = exportedNames(await (await request(`${g.adminUrl}/metrics`)).body.text());
  assert.ok(exported.has('gatehouse_requests_total') && exported.has('gatehouse_request_duration_seconds_bucket'), 'the scrape was read');

  const dashboard = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as Obj;
  const rules = parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as { groups: Array<{ name: string; rules: Obj[] }> };
  const alertExprs = rules.groups.flatMap((gr) => gr.rules.map((r) => r.expr as string));

  for (const [what, exprs] of [['dashboard', dashboardExprs(dashboard)], ['alerts', alertExprs]] as const) {
    const names = referenced(exprs);
    assert.ok(names.size >= 10, `${what} references metrics`);
    const unknown = [...names].filter((n) => !exported.has(n));
    assert.deepEqual(unknown, [], `${what} references metrics the gateway does not export`);
  }
});

test('the alert rules and the dashboard are well-formed', () => {
  const rules = parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as { groups: Array<{ name: string; rules: Obj[] }> };
  const seen = new Set<string>();
  for (const gr of rules.groups) {
    assert.ok(gr.name && gr.rules.length > 0);
    for (const r of gr.rules) {
      assert.match(r.alert, /^Gatehouse[A-Za-z]+$/);
      assert.ok(!seen.has(r.alert), `duplicate alert ${r.alert}`);
      seen.add(r.alert);
      assert.equal(typeof r.expr, 'string');
      assert.ok(['page', 'ticket', 'info'].includes(r.labels?.severity), `${r.alert}: severity`);
      assert.ok(typeof r.annotations?.summary === 'string', `${r.alert}: summary`);
      if (r.for !== undefined) assert.match(r.for, /^\d+[smh]$/);
      // balanced parentheses and braces: a cheap guard against a broken PromQL edit
      for (const [o, c] of [['(', ')'], ['{', '}']]) assert.equal(r.expr.split(o).length, r.expr.split(c).length, `${r.alert}: ${o}${c} balanced`);
    }
  }
  const d = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as Obj;
  const ids = (d.panels as Obj[]).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  assert.ok(d.uid && d.title && d.templating.list.some((v: Obj) => v.name === 'datasource'));
  for (const p of d.panels as Obj[]) if (p.type !== 'row') assert.equal(p.datasource.uid, '${datasource}', `${p.title}: uses the datasource variable`);
});
