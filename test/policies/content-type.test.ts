import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { loadConfigText } from '../../src/config/load.ts';
import { startGateway } from '../helpers.ts';

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const up = await startDemoServer({ name: 'api' });
  const g = await startGateway(`
server: { limits: { maxBodySize: 4kb } }
upstreams: { api: { targets: [ ${up.url} ] } }
routes:
  - { name: typed, match: { path: /typed, prefix: true }, upstream: api, auth: public, contentTypes: [application/json, multipart/form-data, "image/*"] }
  - { name: small, match: { path: /small, prefix: true }, upstream: api, auth: public, limits: { maxBodySize: 1kb } }
  - { name: big, match: { path: /big, prefix: true }, upstream: api, auth: public }
`);
  t.after(async () => { await g.close(); await up.close(); });
  return { g, up };
}

test('415 for a body whose media type the route does not list; parameters and case do not matter', async (t) => {
  const { g, up } = await setup(t);
  const send = async (contentType: string | undefined, body: string | null = '{}', method = 'POST') => {
    const r = await request(`${g.url}/typed/echo`, { method: method as 'POST', body: body ?? undefined, headers: contentType ? { 'content-type': contentType } : {} });
    const text = await r.body.text();
    return { status: r.statusCode, type: r.headers['content-type'], text };
  };
  for (const ct of ['application/json', 'Application/JSON; charset=utf-8', 'multipart/form-data; boundary=xyz', 'image/png', ' application/json ']) {
    const r = await send(ct); assert.equal(r.status, 200, `${ct}: ${r.text}`);
  }
  const before = up.stats.requests;
  for (const ct of ['text/plain', 'application/jsonx', 'application/x-www-form-urlencoded', 'image', 'image/', undefined]) {
    const r = await send(ct);
    assert.equal(r.status, 415, String(ct));
    assert.equal(r.type, 'application/problem+json');
    const p = JSON.parse(r.text) as { code: string; accepted: string[] };
    assert.equal(p.code, 'unsupported_media_type');
    assert.deepEqual(p.accepted, ['application/json', 'multipart/form-data', 'image/*']);
  }
  assert.equal(up.stats.requests, before, 'rejected bodies never reach the upstream');
  // No body, nothing to type.
  assert.equal((await send(undefined, null, 'GET')).status, 200);
  assert.equal((await send('text/plain', '', 'POST')).status, 200, 'an empty body (Content-Length: 0) has no type to check');
  const chunked = await request(`${g.url}/typed/echo`, { method: 'POST', body: Readable.from([Buffer.from('abc')]), headers: { 'content-type': 'text/csv' } });
  assert.equal(chunked.statusCode, 415, 'a chunked body is a body');
  await chunked.body.dump();
});

test('413 by Content-Length before anything is sent upstream, and while a chunked body streams', async (t) => {
  const { g, up } = await setup(t);
  const before = up.stats.requests;
  const declared = await request(`${g.url}/small/upload`, { method: 'POST', body: Buffer.alloc(1025) });
  assert.equal(declared.statusCode, 413);
  assert.equal(((await declared.body.json()) as { code: string }).code, 'payload_too_large');
  assert.equal(up.stats.requests, before, 'a declared oversize body is refused before the upstream is contacted');

  const exact = await request(`${g.url}/small/upload`, { method: 'POST', body: Buffer.alloc(1024, 1) });
  assert.equal(exact.statusCode, 200);
  assert.equal(((await exact.body.json()) as { bytes: number }).bytes, 1024);

  let sent = 0;
  const stream = new Readable({ read() { if (sent >= 16 * 1024 * 1024) return void this.push(null); sent += 16384; this.push(Buffer.alloc(16384)); } });
  const streamed = await request(`${g.url}/small/upload`, { method: 'POST', body: stream }).catch((e: Error) => e);
  // The gateway answers 413 and closes; depending on timing the client sees the answer or the reset.
  if (!(streamed instanceof Error)) {
    assert.equal(streamed.statusCode, 413);
    await streamed.body.dump();
  }
  assert.ok(sent < 16 * 1024 * 1024, 'the gateway stopped reading long before the client finished');

  // The server-wide limit applies to routes without their own.
  const server = await request(`${g.url}/big/upload`, { method: 'POST', body: Buffer.alloc(4097) });
  assert.equal(server.statusCode, 413);
  await server.body.dump();
  const fits = await request(`${g.url}/big/upload`, { method: 'POST', body: Buffer.alloc(4096) });
  assert.equal(fits.statusCode, 200);
  await fits.body.dump();
});

test('contentTypes entries must be media types', () => {
  assert.throws(() => loadConfigText(`
upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }
routes: [ { match: { path: /a }, upstream: a, auth: public, contentTypes: [json, "application/json; charset=utf-8"] } ]
`, 't.yaml', { env: {} }), (e: Error) => {
    assert.match(e.message, /"json" is not a media type/);
    assert.match(e.message, /"application\/json; charset=utf-8" is not a media type/);
    return true;
  });
});
