// Properties of the body peek (src/pipeline/body-peek.ts) with fast-check: whatever the body, its framing and
// however TCP splits it, the peek sees the body's first bytes and the replay (prefix + rest) is the body, byte
// for byte. Real sockets: the client writes each piece separately so the server reads it in those pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { peekBody, replayBody } from '../../src/pipeline/body-peek.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import { openSocket, parseResponse, readUntilClose } from '../support/raw-http.ts';
import { startGateway } from '../helpers.ts';

interface Seen { prefix: string; complete: boolean; second: string | null; replay: string; error?: string }

test('property (150 runs): any body, framing (Content-Length or chunked), split and caps: the peek is the body\'s start and the replay is the body byte for byte', async (t) => {
  const server = createServer(async (req, res) => {
    const ctx = new RequestContext(req, res, 0);
    const cap = Number(req.headers['x-cap']);
    const cap2 = req.headers['x-cap2'] === undefined ? null : Number(req.headers['x-cap2']);
    const seen: Seen = { prefix: '', complete: false, second: null, replay: '' };
    try {
      const p = await peekBody(ctx, cap);
      seen.prefix = p.bytes.toString('base64');
      seen.complete = p.complete;
      if (cap2 !== null) seen.second = (await peekBody(ctx, cap2)).bytes.toString('base64');
      const body = replayBody(ctx.bodyPrefix ?? Buffer.alloc(0), req);
      const chunks: Buffer[] = [];
      if (Buffer.isBuffer(body)) chunks.push(body);
      else for await (const c of body) chunks.push(c as Buffer);
      seen.replay = Buffer.concat(chunks).toString('base64');
    } catch (e) { seen.error = (e as Error).message; }
    res.setHeader('content-type', 'application/json').end(JSON.stringify(seen));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  t.after(() => server.close());

  const arb = fc.record({
    body: fc.uint8Array({ maxLength: 6000 }),
    cuts: fc.array(fc.nat(), { maxLength: 7 }),
    chunked: fc.boolean(),
    cap: fc.integer({ min: 0, max: 7000 }),
    cap2: fc.option(fc.integer({ min: 0, max: 7000 }), { nil: undefined }),
    headInFirst: fc.boolean(),
  });
  await fc.assert(fc.asyncProperty(arb, async ({ body: u8, cuts, chunked, cap, cap2, headInFirst }) => {
    const body = Buffer.from(u8);
    const points = [...new Set(cuts.map((c) => (body.length ? c % body.length : 0)))].filter((c) => c > 0).sort((a, b) => a - b);
    const pieces = [0, ...points].map((from, i) => body.subarray(from, points[i] ?? body.length)).filter((b) => b.length > 0);
    const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
    const head = Buffer.from(`POST /peek HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Cap: ${cap}\r\n${cap2 === undefined ? '' : `X-Cap2: ${cap2}\r\n`}${framing}\r\n\r\n`);
    const wire = pieces.map((p) => chunked ? Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]) : p);
    if (chunked) wire.push(Buffer.from('0\r\n\r\n'));
    const s = await openSocket(port);
    s.setNoDelay(true);
    const done = readUntilClose(s, 10_000);
    if (headInFirst && wire.length) wire[0] = Buffer.concat([head, wire[0]]); else s.write(head);
    for (const w of wire) {
      s.write(w);
      await new Promise((r) => setTimeout(r, 1)); // separate reads on the server
    }
    const r = parseResponse(await done);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Seen;
    assert.equal(seen.error, undefined);
    const want = (n: number) => body.subarray(0, Math.min(n, body.length)).toString('base64');
    assert.equal(seen.prefix, want(cap), 'the peek holds the first min(cap, length) bytes');
    assert.equal(seen.complete, body.length <= cap, 'complete exactly when the whole body fits the cap');
    if (cap2 !== undefined) assert.equal(seen.second, want(cap2), 'a second peek (smaller or larger cap) holds the first min(cap2, length) bytes');
    assert.equal(seen.replay, body.toString('base64'), 'the replay is the body, byte for byte');
  }), { numRuns: 150 });
});

test('property (120 runs, end to end): through a gateway that routes on a body field (peek capped at 1 KB), any body and split reaches the upstream byte for byte, and the route is the one the body names', async (t) => {
  const up = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      const body = Buffer.concat(chunks);
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ url: req.url, sha: createHash('sha256').update(body).digest('hex'), n: body.length }));
    });
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const upPort = (up.address() as { port: number }).port;
  const gw = await startGateway(`
server: { limits: { bodyPeek: 1kb } }
upstreams:
  a: { targets: [ http://127.0.0.1:${upPort}/a ] }
  b: { targets: [ http://127.0.0.1:${upPort}/b ] }
routes:
  - { name: a, match: { path: /route, methods: [POST], body: { field: project, in: [p15] } }, upstream: a, auth: public }
  - { name: b, match: { path: /route, methods: [POST] }, upstream: b, auth: public }
`);
  t.after(async () => { await gw.close(); up.close(); });
  const arb = fc.record({
    project: fc.constantFrom('p15', 'p16', undefined),
    pad: fc.integer({ min: 0, max: 3000 }),
    tail: fc.uint8Array({ maxLength: 200 }),
    json: fc.boolean(),
    cuts: fc.array(fc.nat(), { maxLength: 6 }),
    chunked: fc.boolean(),
  });
  await fc.assert(fc.asyncProperty(arb, async ({ project, pad, tail, json, cuts, chunked }) => {
    const doc = JSON.stringify({ ...(project === undefined ? {} : { project }), pad: 'x'.repeat(pad) });
    // Not JSON at all half the time: the bytes still pass untouched, and no condition holds.
    const body = json ? Buffer.from(doc) : Buffer.concat([Buffer.from(doc.slice(0, doc.length - 1)), Buffer.from(tail)]);
    const points = [...new Set(cuts.map((c) => c % body.length))].filter((c) => c > 0).sort((x, y) => x - y);
    const pieces = [0, ...points].map((from, i) => body.subarray(from, points[i] ?? body.length));
    const head = `POST /route HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`}\r\n\r\n`;
    const s = await openSocket(gw.port);
    s.setNoDelay(true);
    const done = readUntilClose(s, 10_000);
    s.write(head);
    for (const p of pieces) {
      s.write(chunked ? Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]) : p);
      await new Promise((r) => setTimeout(r, 1));
    }
    if (chunked) s.write('0\r\n\r\n');
    const r = parseResponse(await done);
    assert.equal(r.status, 200, r.raw.slice(0, 300));
    const got = JSON.parse(r.body) as { url: string; sha: string; n: number };
    assert.equal(got.n, body.length);
    assert.equal(got.sha, createHash('sha256').update(body).digest('hex'), 'the upstream receives the body byte for byte');
    const fits = body.length <= 1024;
    // The oracle reads the bytes sent, not the generator's flags: a random tail can happen to close the JSON again
    // (a tail of exactly "}" rebuilds the document; CI found it).
    let named = false;
    try { named = (JSON.parse(body.toString('utf8')) as { project?: unknown }).project === 'p15'; } catch { /* not JSON: no condition holds */ }
    assert.equal(got.url, fits && named ? '/a/route' : '/b/route', 'the body names the route (within the peek)');
  }), { numRuns: 120 });
});
