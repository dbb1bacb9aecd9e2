import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client, request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { extractField, peekBody } from '../../src/pipeline/body-peek.ts';
import type { CompiledRoute, RequestContext } from '../../src/pipeline/context.ts';
import { startGateway } from '../helpers.ts';

// ---- extractField -------------------------------------------------------------------------

test('extractField reads JSON by dot path, through objects and arrays', () => {
  const b = Buffer.from(JSON.stringify({ a: { b: [{ c: 'deep' }, { c: 7 }] }, flag: true, nil: null, obj: {} }));
  assert.equal(extractField(b, 'application/json; charset=utf-8', 'a.b.0.c'), 'deep');
  assert.equal(extractField(b, 'application/json', 'a.b.1.c'), '7');
  assert.equal(extractField(b, 'application/vnd.api+json', 'flag'), 'true');
  assert.equal(extractField(b, 'application/json', 'nil'), undefined);
  assert.equal(extractField(b, 'application/json', 'obj'), undefined);
  assert.equal(extractField(b, 'application/json', 'a.b.x'), undefined);
  assert.equal(extractField(b, 'application/json', 'a.b.5.c'), undefined);
  assert.equal(extractField(b, 'application/json', 'toString'), undefined, 'inherited properties are not fields');
  assert.equal(extractField(b, 'application/json', 'a.__proto__'), undefined);
  assert.equal(extractField(b.subarray(0, 20), 'application/json', 'flag'), undefined, 'a truncated document is not parseable');
  assert.equal(extractField(b, undefined, 'flag'), undefined);
  assert.equal(extractField(b, 'text/plain', 'flag'), undefined);
});

test('extractField reads urlencoded forms, decoding + and percent escapes', () => {
  const b = Buffer.from('email=a%40b.com&recaptcha_token=tok+en%2F1&empty=&caf%C3%A9=cr%C3%A8me');
  assert.equal(extractField(b, 'application/x-www-form-urlencoded', 'recaptcha_token'), 'tok en/1');
  assert.equal(extractField(b, 'Application/X-WWW-Form-Urlencoded; charset=UTF-8', 'email'), 'a@b.com');
  assert.equal(extractField(b, 'application/x-www-form-urlencoded', 'empty'), '');
  assert.equal(extractField(b, 'application/x-www-form-urlencoded', 'café'), 'crème');
  assert.equal(extractField(b, 'application/x-www-form-urlencoded', 'missing'), undefined);
});

function multipart(boundary: string, parts: Array<{ name: string; value: string | Buffer; filename?: string }>): Buffer {
  const out: Buffer[] = [Buffer.from('preamble to ignore\r\n')];
  for (const p of parts) {
    out.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"\r\nContent-Type: application/octet-stream` : ''}\r\n\r\n`));
    out.push(Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value));
    out.push(Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

test('extractField reads multipart fields that come before the first file part', () => {
  const boundary = '----WebKitFormBoundary7MA4YWxkTrZu0gW';
  const b = multipart(boundary, [
    { name: 'email', value: 'x@y.z' },
    { name: 'recaptcha_token', value: 'tok-123\r\nwith a line break' },
    { name: 'file', value: randomBytes(2000), filename: 'a.bin' },
    { name: 'after', value: 'not reachable' },
  ]);
  const ct = `multipart/form-data; boundary="${boundary}"`;
  assert.equal(extractField(b, ct, 'email'), 'x@y.z');
  assert.equal(extractField(b, ct, 'recaptcha_token'), 'tok-123\r\nwith a line break');
  assert.equal(extractField(b, ct, 'file'), undefined, 'file parts are not fields');
  assert.equal(extractField(b, ct, 'after'), undefined, 'fields after a file part are not read');
  assert.equal(extractField(b.subarray(0, 150), ct, 'recaptcha_token'), undefined, 'a part cut by the peek is not a value');
  assert.equal(extractField(b, 'multipart/form-data', 'email'), undefined, 'no boundary, no parse');
  assert.equal(extractField(b, `multipart/form-data; boundary=${boundary}`, 'email'), 'x@y.z');
});

// ---- peekBody over real sockets -------------------------------------------------------------

interface Seen { bytes: Buffer; complete: boolean; again: Buffer; buffered: number }

/** A gateway whose route chooser peeks (the content-routing hook), recording what the peek saw. */
async function peekingGateway(cap: number, t: { after(fn: () => Promise<void>): void }, opts: { reject?: boolean; maxBodySize?: string } = {}) {
  const up = await startDemoServer({ name: 'sink' });
  const g = await startGateway(`
upstreams:
  sink: { targets: [ ${up.url} ] }
routes:
  - { name: sink, match: { path: /, prefix: true }, upstream: sink, auth: public${opts.maxBodySize ? `, limits: { maxBodySize: ${opts.maxBodySize} }` : ''} }
`);
  t.after(async () => { await g.close(); await up.close(); });
  const seen: Seen[] = [];
  g.gw.current.choose = async (ctx: RequestContext, candidates: readonly CompiledRoute[]) => {
    const p = await peekBody(ctx, cap);
    const buffered = ctx.req.readableLength;
    const again = await peekBody(ctx, cap);
    seen.push({ bytes: Buffer.from(p.bytes), complete: p.complete, again: again.bytes, buffered });
    return opts.reject ? null : candidates[0];
  };
  return { g, up, seen };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunked(body: Buffer, piece = 16 * 1024): Readable {
  let at = 0;
  return new Readable({ read() { this.push(at < body.length ? body.subarray(at, (at += piece)) : null); } });
}

test('a body larger than the cap streams to the upstream intact, with or without Content-Length', async (t) => {
  const cap = 64 * 1024;
  const { g, seen } = await peekingGateway(cap, t);
  const body = randomBytes(3 * 1024 * 1024 + 17);

  const withLength = await request(`${g.url}/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(withLength.statusCode, 200);
  assert.deepEqual(await withLength.body.json(), { bytes: body.length, sha256: sha(body), contentType: 'application/octet-stream' });
  assert.equal(seen[0].complete, false);
  assert.ok(seen[0].bytes.equals(body.subarray(0, cap)), 'the peek is the first cap bytes');
  assert.ok(seen[0].again.equals(seen[0].bytes), 'a second peek returns the same bytes');
  // Past the cap only the stream's own buffer is held, not the body.
  assert.ok(seen[0].buffered <= 256 * 1024, `buffered past the cap: ${seen[0].buffered}`);

  const noLength = await request(`${g.url}/upload`, { method: 'POST', body: chunked(body), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(noLength.statusCode, 200);
  assert.deepEqual(await noLength.body.json(), { bytes: body.length, sha256: sha(body), contentType: 'application/octet-stream' });
  assert.equal(seen[1].complete, false);
  assert.ok(seen[1].bytes.equals(body.subarray(0, cap)));
});

test('a body the peek read whole is replayed with a correct content-length', async (t) => {
  const cap = 1024;
  const { g, seen } = await peekingGateway(cap, t);
  const json = Buffer.from(JSON.stringify({ project_id: 'User-181473_Project_15', text: 'hello' }));

  const r1 = await request(`${g.url}/echo`, { method: 'POST', body: json, headers: { 'content-type': 'application/json' } });
  const e1 = (await r1.body.json()) as { bodyBytes: number; headers: Record<string, string> };
  assert.equal(e1.bodyBytes, json.length);
  assert.equal(e1.headers['content-length'], String(json.length));
  assert.equal(seen[0].complete, true);
  assert.equal(extractField(seen[0].bytes, 'application/json', 'project_id'), 'User-181473_Project_15');

  // Chunked and small: the upstream gets the same bytes, now with a length.
  const r2 = await request(`${g.url}/upload`, { method: 'POST', body: chunked(json, 7), headers: { 'content-type': 'application/json' } });
  assert.deepEqual(await r2.body.json(), { bytes: json.length, sha256: sha(json), contentType: 'application/json' });
  assert.equal(seen[1].complete, true);
  assert.ok(seen[1].bytes.equals(json));
});

test('bodies of exactly the cap are complete; one byte more is not', async (t) => {
  const cap = 4096;
  const { g, seen } = await peekingGateway(cap, t);
  for (const [size, useLength] of [[cap, true], [cap, false], [cap + 1, true], [cap + 1, false]] as const) {
    const body = randomBytes(size);
    const r = await request(`${g.url}/upload`, { method: 'PUT', body: useLength ? body : chunked(body, 1000) });
    assert.deepEqual(await r.body.json(), { bytes: size, sha256: sha(body), contentType: null }, `size ${size}, length ${useLength}`);
    const s = seen.at(-1)!;
    assert.equal(s.complete, size === cap, `size ${size}, length ${useLength}`);
    assert.equal(s.bytes.length, cap);
  }
});

test('a request with no body peeks nothing and is proxied as before', async (t) => {
  const { g, seen } = await peekingGateway(1024, t);
  const r = await request(`${g.url}/echo`);
  const e = (await r.body.json()) as { bodyBytes: number; headers: Record<string, string> };
  assert.equal(e.bodyBytes, 0);
  assert.equal(e.headers['content-length'], undefined);
  assert.deepEqual(seen[0], { bytes: Buffer.alloc(0), complete: true, again: Buffer.alloc(0), buffered: 0 });
});

test('a request answered after a partial peek leaves its connection usable', async (t) => {
  const { g } = await peekingGateway(1024, t, { reject: true });
  const client = new Client(g.url, { pipelining: 1 });
  t.after(() => client.close());
  for (let i = 0; i < 3; i++) {
    const r = await client.request({ path: '/upload', method: 'POST', body: randomBytes(512 * 1024) });
    assert.equal(r.statusCode, 404);
    await r.body.dump();
  }
});

test('the route limit still holds when a peek read a whole chunked body', async (t) => {
  const { g } = await peekingGateway(64 * 1024, t, { maxBodySize: '1kb' });
  const r = await request(`${g.url}/upload`, { method: 'POST', body: chunked(randomBytes(3000), 500) });
  assert.equal(r.statusCode, 413);
  assert.equal(((await r.body.json()) as { code: string }).code, 'payload_too_large');
  const big = await request(`${g.url}/upload`, { method: 'POST', body: chunked(randomBytes(300 * 1024)) });
  assert.equal(big.statusCode, 413);
  await big.body.dump();
});

test('a later peek with a larger cap reads on from where the first stopped; the upstream still gets every byte once', async (t) => {
  const up = await startDemoServer({ name: 'sink' });
  const g = await startGateway(`
upstreams: { sink: { targets: [ ${up.url} ] } }
routes: [ { match: { path: /upload }, upstream: sink, auth: public } ]
`);
  t.after(async () => { await g.close(); await up.close(); });
  const seen: Array<{ small: Buffer; large: Buffer; complete: boolean; again: Buffer }> = [];
  g.gw.current.choose = async (ctx: RequestContext, candidates: readonly CompiledRoute[]) => {
    const small = Buffer.from((await peekBody(ctx, 1000)).bytes);
    const large = await peekBody(ctx, 50_000);
    const again = await peekBody(ctx, 1000);
    seen.push({ small, large: Buffer.from(large.bytes), complete: large.complete, again: again.bytes });
    return candidates[0];
  };
  const body = randomBytes(300_000);
  const r = await request(`${g.url}/upload`, { method: 'POST', body: chunked(body, 4096) });
  assert.deepEqual(await r.body.json(), { bytes: body.length, sha256: sha(body), contentType: null });
  assert.ok(seen[0].small.equals(body.subarray(0, 1000)));
  assert.ok(seen[0].large.equals(body.subarray(0, 50_000)));
  assert.equal(seen[0].complete, false);
  assert.ok(seen[0].again.equals(body.subarray(0, 1000)), 'a smaller cap gets the same leading bytes');
});

test('a client that goes away during the peek does not reach the upstream or disturb the gateway', async (t) => {
  const { g, up, seen } = await peekingGateway(64 * 1024, t);
  const { connect } = await import('node:net');
  const sock = connect(g.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'a'.repeat(1000));
  await new Promise((r) => setTimeout(r, 50));
  sock.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(up.stats.uploads, 0);
  assert.equal(seen.length, 0, 'the peek never resolved');
  const ok = await request(`${g.url}/upload`, { method: 'POST', body: 'still fine' });
  assert.equal(ok.statusCode, 200);
  await ok.body.dump();
});
