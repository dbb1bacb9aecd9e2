// Metric labels stay bounded: route names, never paths, whatever clients send.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Pool, request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, type TestGateway } from '../helpers.ts';

let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  g = await startGateway(`
observability: { log: { level: warn } }
upstreams:
  demo: { targets: [ ${up.url} ] }
defaults: { auth: public }
routes:
  - { name: users, match: { path: /v1/users/:id, methods: [GET] }, upstream: demo }
`);
});
after(async () => {
  await g.close();
  await up.close();
});

async function metrics(): Promise<string> {
  const r = await request(`${g.adminUrl}/metrics`);
  assert.equal(r.statusCode, 200);
  return r.body.text();
}

/** Series = sample lines (not # HELP / # TYPE). */
function series(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

test('10,000 requests to random unknown paths do not add series; route names are labels, paths never', async () => {
  const pool = new Pool(g.url, { connections: 50, pipelining: 1 });
  try {
    // Warm up every series these requests can touch: one unknown path, one routed request.
    for (const path of ['/warm-up-unknown', '/v1/users/warm']) {
      const r = await pool.request({ path, method: 'GET' });
      await r.body.dump();
    }
    const before = series(await metrics());

    const total = 10_000;
    const seen: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const token = randomBytes(6).toString('hex');
        if (i < 20) seen.push(token);
        // Mostly unknown paths; every tenth hits a routed path with a random parameter.
        const path = i % 10 === 0 ? `/v1/users/u${token}` : `/nope/${token}/${i}`;
        const r = await pool.request({ path, method: 'GET' });
        await r.body.dump();
        assert.equal(r.statusCode, i % 10 === 0 ? 200 : 404);
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));

    const text = await metrics();
    const after = series(text);
    const names = (l: string[]) => l.map((s) => s.slice(0, s.lastIndexOf(' '))).sort();
    assert.deepEqual(names(after), names(before), 'the set of series is unchanged');
    assert.match(text, /gatehouse_requests_total\{[^}]*route="users"[^}]*\} \d+/);
    assert.match(text, /gatehouse_requests_total\{[^}]*route="none"[^}]*status_class="4xx"[^}]*\} \d+/);
    for (const token of seen) assert.ok(!text.includes(token), `a path fragment (${token}) became a label`);
    assert.ok(!text.includes('/nope') && !text.includes('/v1/users'), 'no path in any label');
  } finally {
    await pool.close();
  }
});
