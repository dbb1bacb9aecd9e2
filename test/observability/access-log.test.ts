// The access log: one line per request with the agreed fields, and no credential anywhere in the logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { deadPort } from '../support/raw-http.ts';

let up: DemoServer;
let g: TestGateway;

before(async () => {
  up = await startDemoServer({ name: 'demo' });
  g = await startGateway(`
observability: { log: { level: debug, format: json } }
upstreams:
  demo: { targets: [ ${up.url} ] }
  gone: { targets: [ http://127.0.0.1:${await deadPort()} ] }
defaults: { auth: public }
routes:
  - { name: echo, match: { path: /echo, prefix: true }, upstream: demo }
  - { name: gone, match: { path: /gone }, upstream: gone }
`);
});
after(async () => {
  await g.close();
  await up.close();
});

const SECRETS = { authorization: 'Bearer secret-token-123', cookie: 'session=abc', 'x-api-key': 'key-456' };
const QUERY = '?access_token=tok-789&api_key=k';
const NEEDLES = ['secret-token-123', 'Bearer', 'session=abc', 'key-456', 'tok-789', 'access_token', 'api_key'];

test('credentials in headers and query never reach the logs, whatever the outcome', async () => {
  for (const [path, want] of [['/echo/a', 200], ['/nowhere', 404], ['/gone', 502], ['/echo/b', 200]] as const) {
    const r = await request(`${g.url}${path}${QUERY}`, { method: 'POST', headers: { ...SECRETS, 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(r.statusCode, want, path);
    await r.body.dump();
  }
  await eventually(() => g.logs.filter((l) => l.type === 'access').length >= 4);
  const raw = g.rawLogs();
  for (const s of NEEDLES) assert.ok(!raw.includes(s), `"${s}" leaked into the logs`);
});

test('the access line has time, requestId, method, route, path without query, status, bytes, durations, upstream, error', async () => {
  const body = 'x'.repeat(1234);
  const r = await request(`${g.url}/echo/fields${QUERY}`, { method: 'POST', headers: { 'x-request-id': 'log-fields-1', ...SECRETS }, body });
  const answer = await r.body.text();
  const line = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.requestId === 'log-fields-1')))!;
  // epoch milliseconds (cheaper than ISO per line) or an ISO string: either way, now
  const time = typeof line.time === 'number' ? line.time : Date.parse(String(line.time));
  assert.ok(Math.abs(time - Date.now()) < 60_000, `time ${line.time}`);
  assert.equal(line.method, 'POST');
  assert.equal(line.route, 'echo');
  assert.equal(line.path, '/echo/fields');
  assert.equal(line.status, 200);
  assert.equal(line.bytesIn, 1234);
  assert.equal(line.bytesOut, Buffer.byteLength(answer));
  assert.equal(typeof line.durationMs, 'number');
  assert.equal(line.upstream, up.url);
  assert.equal(typeof line.upstreamMs, 'number');
  assert.ok((line.upstreamMs as number) <= (line.durationMs as number));
  assert.equal(line.error, undefined);

  const failed = await request(`${g.url}/gone`, { headers: { 'x-request-id': 'log-fields-2' } });
  await failed.body.dump();
  const bad = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.requestId === 'log-fields-2')))!;
  assert.equal(bad.status, 502);
  assert.equal(bad.route, 'gone');
  assert.equal(bad.error, 'upstream_failed');
  assert.equal(typeof bad.durationMs, 'number');

  const miss = await request(`${g.url}/nowhere`, { headers: { 'x-request-id': 'log-fields-3' } });
  await miss.body.dump();
  const nf = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.requestId === 'log-fields-3')))!;
  assert.equal(nf.status, 404);
  assert.equal(nf.error, 'not_found');
});

test('a chunked upload is counted in bytesIn', async () => {
  const r = await request(`${g.url}/echo/chunked`, { method: 'POST', headers: { 'x-request-id': 'log-chunked' }, body: Readable.from([Buffer.alloc(1000), Buffer.alloc(500)]) });
  assert.equal(((await r.body.json()) as { bodyBytes: number }).bodyBytes, 1500);
  const line = (await eventually(() => g.logs.find((l) => l.type === 'access' && l.requestId === 'log-chunked')))!;
  assert.equal(line.bytesIn, 1500);
});

test('hostile request ids, paths and methods still give one valid JSON access line each (values are quoted, not pasted)', async () => {
  const cases: Array<{ path: string; method: string; id: string }> = [
    { path: '/echo/q%22uote%5Cback', method: 'GET', id: 'a"b\\c' },
    { path: '/echo/%E2%9C%93%0A', method: 'PURGE', id: 'x'.repeat(129) },
    { path: '/echo/plain', method: 'GET', id: 'ok-id-hostile-3' },
  ];
  for (const c of cases) {
    const r = await request(`${g.url}${c.path}`, { method: c.method, headers: { 'x-request-id': c.id } });
    await r.body.dump();
  }
  await eventually(() => g.logs.some((l) => l.type === 'access' && l.requestId === 'ok-id-hostile-3'));
  const lines = g.rawLogs().split('\n').filter((l) => l.includes('"type":"access"'));
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  // An id outside the accepted charset or length is replaced, never written as sent.
  assert.ok(!parsed.some((l) => l.requestId === 'a"b\\c' || l.requestId === 'x'.repeat(129)));
  assert.ok(parsed.some((l) => l.method === 'PURGE'));
});
