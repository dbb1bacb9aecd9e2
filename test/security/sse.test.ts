// Server-sent events under abuse: a client that stops reading, clients that vanish, upstreams that stall, truncate
// or frame the stream ambiguously. The gateway must stream with backpressure, never buffer a stream in memory,
// release the upstream when the client leaves, and never present a cut stream as complete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { openSocket, rawExchange, rawRequest } from '../support/raw-http.ts';

let g: TestGateway;
let up: Server;
/** Per stream: bytes the upstream managed to hand to its socket, whether write() ever said "full", and whether it saw the close. */
const streams: Array<{ path: string; written: number; blocked: boolean; closed: boolean }> = [];

function sse(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

before(async () => {
  up = createServer((req, res) => {
    const rec = { path: req.url ?? '', written: 0, blocked: false, closed: false };
    streams.push(rec);
    res.on('close', () => { rec.closed = true; });
    if (req.url === '/events/firehose') {
      // Writes 64 KiB events until the socket says stop; resumes on drain (a well-behaved producer).
      sse(res);
      const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`;
      const pump = () => {
        while (!rec.closed && rec.written < 256 * 1024 * 1024) {
          rec.written += chunk.length;
          if (!res.write(chunk)) { rec.blocked = true; res.once('drain', pump); return; }
        }
      };
      pump();
    } else if (req.url === '/events/forever') {
      sse(res);
      const t = setInterval(() => { res.write('data: tick\n\n'); rec.written++; }, 50);
      res.on('close', () => clearInterval(t));
    } else if (req.url === '/events/stall') {
      sse(res);
      res.write('data: first\n\n');
    } else if (req.url === '/events/truncate') {
      sse(res);
      res.write('data: one\n\n');
      setTimeout(() => res.socket?.destroy(), 100);
    } else if (req.url === '/events/te') {
      // Raw framing the gateway must not relay (RFC 9112 §6.1).
      res.socket!.end('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked, chunked\r\n\r\nc\r\ndata: evil\n\n\r\n0\r\n\r\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  g = await startGateway(`
upstreams: { events: { targets: [ http://127.0.0.1:${(up.address() as AddressInfo).port} ] } }
defaults: { auth: public }
routes:
  - { name: events, match: { path: /events, prefix: true }, upstream: events, timeout: { response: 5s, idle: 1s } }
`);
});
after(async () => {
  await g.close();
  up.closeAllConnections();
  await new Promise<void>((r) => up.close(() => r()));
});

const last = (path: string) => streams.filter((s) => s.path === path).at(-1);

test('slow reader: a client that stops reading stops the upstream (backpressure), the stream is never buffered whole', async () => {
  const s = await openSocket(g.port);
  s.write('GET /events/firehose HTTP/1.1\r\nHost: gw.test\r\n\r\n');
  s.pause(); // read nothing
  await eventually(() => last('/events/firehose')?.blocked, 5000);
  const rec = last('/events/firehose')!;
  await new Promise((r) => setTimeout(r, 500));
  const settled = rec.written;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(rec.written, settled, 'the upstream kept writing into the gateway while the client read nothing');
  assert.ok(settled < 64 * 1024 * 1024, `${settled} bytes taken from the upstream for a client that read none`);
  s.destroy();
  await eventually(() => rec.closed, 5000);
});

test('client abort: 50 SSE clients that vanish release their upstream streams and the in-flight gauge returns to 0', async () => {
  const n = streams.length;
  const sockets = await Promise.all(Array.from({ length: 50 }, () => openSocket(g.port)));
  for (const s of sockets) s.write('GET /events/forever HTTP/1.1\r\nHost: gw.test\r\n\r\n');
  await eventually(() => streams.slice(n).filter((s) => s.path === '/events/forever').length === 50, 5000);
  for (const s of sockets) s.destroy();
  await eventually(() => streams.slice(n).every((s) => s.closed), 5000);
  await eventually(async () => {
    const text = await (await request(`${g.adminUrl}/metrics`)).body.text();
    const m = /gatehouse_inflight_streams\{kind="sse"\} (\d+)/.exec(text);
    return m !== null && m[1] === '0';
  }, 5000);
});

test('stalled upstream: a stream idle past the idle timeout is cut at the client, not left open', async () => {
  const text = await rawExchange(g.port, 'GET /events/stall HTTP/1.1\r\nHost: gw.test\r\n\r\n', 8000);
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.ok(text.includes('data: first'));
  assert.ok(!text.endsWith('0\r\n\r\n'), 'the cut stream was terminated as if complete');
});

test('RFC 9112 §6.3: an upstream that dies mid-stream leaves the client stream unterminated (no final chunk)', async () => {
  const text = await rawExchange(g.port, 'GET /events/truncate HTTP/1.1\r\nHost: gw.test\r\n\r\n', 5000);
  assert.ok(text.includes('data: one'));
  assert.ok(!text.endsWith('0\r\n\r\n'), 'a truncated stream was presented as complete');
});

test('RFC 9112 §6.1 / issue 11.8: an event stream framed with Transfer-Encoding: chunked, chunked is a 502, no event relayed', async () => {
  const r = await rawRequest(g.port, 'GET /events/te HTTP/1.1\r\nHost: gw.test');
  assert.equal(r.status, 502);
  assert.ok(!r.raw.includes('evil'));
});
