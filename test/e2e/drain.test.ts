// Graceful drain of a gateway process: SIGTERM → not ready, no new connections, in-flight stream finishes, exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { startDemoServer } from '../../src/demo/services.ts';
import { startChildGateway } from '../support/child-gateway.ts';
import { eventually } from '../helpers.ts';

function refused(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });
}

test('SIGTERM drains: readiness turns 503, new connections are refused, the open SSE stream completes, exit code 0', async (t) => {
  const chat = await startDemoServer({ name: 'chat' });
  t.after(() => chat.close());
  const gw = await startChildGateway(`
server: { listen: 127.0.0.1:0, shutdownGrace: 20s, environment: production }
admin: { listen: 127.0.0.1:0 }
upstreams:
  chat: { targets: [ ${chat.url} ] }
defaults: { auth: public }
routes:
  - { name: chat-stream, match: { path: /v1/chat/stream, methods: [GET] }, upstream: chat }
`);
  t.after(() => gw.kill());

  const ready = await request(`${gw.adminUrl}/readyz`);
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();

  // ~2 s of events: 20 tokens 100 ms apart (headroom for the checks below on a busy machine).
  const n = 20;
  const r = await request(`${gw.url}/v1/chat/stream?n=${n}&delay=100`);
  assert.equal(r.statusCode, 200);
  const events: string[] = [];
  let ended = false;
  let failed: unknown = null;
  const firstEvent = new Promise<void>((resolve) => {
    (async () => {
      let buf = '';
      for await (const chunk of r.body) {
        buf += String(chunk);
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) { events.push(buf.slice(0, i)); buf = buf.slice(i + 2); resolve(); }
      }
      ended = true;
    })().catch((e) => { failed = e; resolve(); });
  });
  await firstEvent;
  assert.ok(events.length >= 1 && events.length < n, `drain must start mid-stream (got ${events.length} events)`);

  const signalledAt = performance.now();
  gw.proc.kill('SIGTERM');

  // While the stream is still running: not ready, and the listener takes no new connections.
  const notReady = await eventually(async () => {
    const res = await request(`${gw.adminUrl}/readyz`).catch(() => null);
    if (res === null) return false;
    await res.body.dump();
    return res.statusCode === 503;
  }, 5000);
  assert.ok(notReady);
  await eventually(() => refused(gw.url), 5000);
  assert.ok(!ended, 'the stream was still in flight while the gateway refused new work');

  const { code, signal } = await gw.exited;
  const drainMs = performance.now() - signalledAt;
  assert.equal(failed, null, `the in-flight stream failed: ${String(failed)}`);
  assert.ok(ended, 'the stream ended');
  assert.equal(events.length, n + 2, 'every token, the usage event and [DONE] arrived');
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
  assert.ok(drainMs < 15_000, `drained in ${drainMs.toFixed(0)} ms: it must end with the last stream, not wait out the 20 s grace`);
  assert.ok(gw.lines().some((l) => l.msg === 'draining'), 'the drain is logged');
  assert.equal(chat.stats.streamsAborted, 0);
});
