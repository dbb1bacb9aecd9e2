// A 256 MiB upload over HTTP/2 (TLS, ALPN h2) through a gateway in its own process: streamed with flow control
// end to end, every byte arrives (sha256), in bounded gateway memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startDemoServer } from '../../src/demo/services.ts';
import { startChildGateway, memoryOf, runsCompiledBuild } from '../support/child-gateway.ts';
import { makeCa } from '../support/certs.ts';
import { h2connect, h2request } from '../support/h2.ts';
import { eventually } from '../helpers.ts';

const MiB = 1024 * 1024;
const TOTAL_MIB = 256;
// The same loose ceiling as the HTTP/1.1 upload test (test/e2e/upload.test.ts), plus TLS and HTTP/2 buffers.
const PEAK_RSS_LIMIT = (runsCompiledBuild() ? 170 : 210) * 1e6;

test('a 256 MiB upload over HTTP/2 streams through with the right byte count and sha256, in bounded gateway memory', async (t) => {
  const ca = makeCa();
  const cert = ca.server('server', ['upload.example.test']);
  const sink = await startDemoServer({ name: 'ingest' });
  const gw = await startChildGateway(`
server:
  listen: 127.0.0.1:0
  environment: production
  tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
admin: { listen: 127.0.0.1:0 }
upstreams:
  ingest: { targets: [ ${sink.url} ], timeout: 120s }
defaults: { auth: public }
routes:
  - { name: upload, match: { path: /v1/upload, methods: [POST, PUT] }, upstream: ingest, limits: { maxBodySize: 1gb } }
`);
  t.after(async () => { await gw.kill(); await sink.close(); ca.cleanup(); });
  const port = new URL(gw.url).port;
  const s = await h2connect(`https://upload.example.test:${port}`, { ca: ca.certPem });
  t.after(() => s.close());

  let peak = memoryOf(gw.pid).rss;
  const sampler = setInterval(() => { try { peak = Math.max(peak, memoryOf(gw.pid).rss); } catch { /* exited */ } }, 50);
  const block = randomBytes(MiB);
  const expected = createHash('sha256');
  let sent = 0;
  const body = new Readable({
    read() {
      if (sent === TOTAL_MIB) { this.push(null); return; }
      sent++;
      expected.update(block);
      this.push(block);
    },
  });
  try {
    // No content-length: HTTP/2 frames the body itself (the gateway forwards it chunked).
    const r = await h2request(s, '/v1/upload', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
    assert.equal(r.status, 200, r.body);
    const answer = JSON.parse(r.body) as { bytes: number; sha256: string };
    assert.equal(answer.bytes, TOTAL_MIB * MiB);
    assert.equal(answer.sha256, expected.digest('hex'));
  } finally {
    clearInterval(sampler);
  }
  assert.ok(peak < PEAK_RSS_LIMIT, `gateway peak RSS ${(peak / 1e6).toFixed(0)} MB (limit ${PEAK_RSS_LIMIT / 1e6} MB): the body must stream, not buffer`);
  const access = (await eventually(() => gw.lines().find((l) => l.type === 'access' && l.route === 'upload'), 5000))!;
  assert.equal(access.bytesIn, TOTAL_MIB * MiB);
  assert.equal(access.status, 200);
});
