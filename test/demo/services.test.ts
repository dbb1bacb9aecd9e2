import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request, fetch } from 'undici';
import WebSocket from 'ws';
import { startDemoServer, startDemoServices, type DemoServer } from '../../src/demo/services.ts';

let srv: DemoServer;
before(async () => {
  srv = await startDemoServer({ name: 'unit' });
});
after(async () => {
  await srv.close();
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface SseEvent {
  at: number;
  data: string;
}

// Splits SSE frames as bytes arrive, stamping each with its own arrival time.
async function readSse(body: AsyncIterable<Uint8Array>, onEvent?: (e: SseEvent) => void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let idx: number;
    while ((idx = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      assert.ok(frame.startsWith('data: '), `unexpected frame ${frame}`);
      const e = { at: performance.now(), data: frame.slice(6) };
      events.push(e);
      onEvent?.(e);
    }
  }
  assert.equal(buf, '');
  return events;
}

test('health names the service', async () => {
  const res = await request(`${srv.url}/health`);
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { status: 'ok', service: 'unit' });
});

test('chat completion has deterministic usage, also under a path prefix', async () => {
  for (const path of ['/v1/chat/completions', '/api/v1/chat/completions?x=1', '/chat']) {
    const res = await request(`${srv.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-test',
        messages: [
          { role: 'system', content: 'be  brief' },
          { role: 'user', content: [{ type: 'text', text: ' hello there world ' }] },
        ],
      }),
    });
    assert.equal(res.statusCode, 200, path);
    const body = (await res.body.json()) as {
      object: string;
      model: string;
      choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.model, 'gpt-test');
    assert.equal(body.choices[0].message.role, 'assistant');
    assert.equal(body.choices[0].finish_reason, 'stop');
    const words = body.choices[0].message.content.trim().split(/\s+/).length;
    assert.deepEqual(body.usage, { prompt_tokens: 5, completion_tokens: words, total_tokens: 5 + words });
  }
});

test('chat with an empty prompt still counts one prompt token; bad JSON is 400', async () => {
  const ok = await request(`${srv.url}/v1/chat/completions`, { method: 'POST', body: '{"messages":[]}' });
  const usage = ((await ok.body.json()) as { usage: { prompt_tokens: number } }).usage;
  assert.equal(usage.prompt_tokens, 1);
  const bad = await request(`${srv.url}/v1/chat/completions`, { method: 'POST', body: '{nope' });
  assert.equal(bad.statusCode, 400);
  await bad.body.dump();
});

test('chat body over 1 MiB is refused with 413', async () => {
  const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024 + 10) }] });
  const res = await request(`${srv.url}/v1/chat/completions`, { method: 'POST', body: big });
  assert.equal(res.statusCode, 413);
  await res.body.dump();
});

test('SSE events arrive one by one, then usage, then [DONE]', async () => {
  const n = 6;
  const delay = 40;
  const before = srv.stats.streamsCompleted;
  const res = await request(`${srv.url}/v1/chat/stream?n=${n}&delay=${delay}`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  assert.equal(res.headers['cache-control'], 'no-cache');
  const events = await readSse(res.body);
  assert.equal(events.length, n + 2);
  assert.equal(events[n + 1].data, '[DONE]');
  const chunks = events.slice(0, n).map((e) => JSON.parse(e.data));
  chunks.forEach((c, i) => {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.choices[0].delta.content, `tok${i} `);
  });
  const spread = events[n - 1].at - events[0].at;
  assert.ok(spread >= (n - 1) * delay * 0.8, `events bunched together: spread ${spread} ms`);
  const final = JSON.parse(events[n].data);
  assert.deepEqual(final.choices, []);
  assert.deepEqual(final.usage, { prompt_tokens: 1, completion_tokens: n, total_tokens: 1 + n });
  await waitFor(() => srv.stats.streamsCompleted === before + 1, 500);
});

test('chat with stream:true answers as SSE with prompt usage from the body', async () => {
  const res = await request(`${srv.url}/api/chat/completions?n=3&delay=0`, {
    method: 'POST',
    body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'one two three four' }] }),
  });
  assert.equal(res.headers['content-type'], 'text/event-stream');
  const events = await readSse(res.body);
  assert.equal(events.length, 5);
  assert.deepEqual(JSON.parse(events[3].data).usage, { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
});

test('upload of 5 MiB streams through with the right size and sha256', async () => {
  const data = randomBytes(5 * 1024 * 1024);
  const expected = createHash('sha256').update(data).digest('hex');
  const before = srv.stats.uploads;
  // Fed in pieces so the server sees a chunked, streamed body rather than one buffer.
  const pieces = Array.from({ length: 80 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
  const res = await request(`${srv.url}/files/upload`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-demo' },
    body: Readable.from(pieces),
  });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { bytes: data.length, sha256: expected, contentType: 'application/x-demo' });
  assert.equal(srv.stats.uploads, before + 1);
});

test('client abort of a stream is counted within 500 ms', async () => {
  const before = { aborted: srv.stats.streamsAborted, started: srv.stats.streamsStarted };
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/chat/stream?n=10000&delay=20`, { signal: ac.signal });
  assert.ok(res.body);
  const reader = res.body.getReader();
  await reader.read();
  assert.equal(srv.stats.streamsStarted, before.started + 1);
  ac.abort();
  await reader.read().catch(() => undefined);
  await waitFor(() => srv.stats.streamsAborted === before.aborted + 1, 500);
});

test('WebSocket says hello, echoes text and binary, and propagates the close code', async () => {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/realtime/ws?room=7`, { headers: { 'x-probe': 'yes' } });
  const messages: { data: Buffer; isBinary: boolean }[] = [];
  ws.on('message', (data, isBinary) => messages.push({ data: data as Buffer, isBinary }));
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  await waitFor(() => messages.length === 1, 1000);
  const hello = JSON.parse(messages[0].data.toString());
  assert.equal(hello.hello, 'unit');
  assert.equal(hello.path, '/realtime/ws');
  assert.equal(hello.query, 'room=7');
  assert.equal(hello.headers['x-probe'], 'yes');

  ws.send('ping text');
  ws.send(Buffer.from([0, 1, 2, 255]));
  await waitFor(() => messages.length === 3, 1000);
  assert.deepEqual(messages[1], { data: Buffer.from('ping text'), isBinary: false });
  assert.deepEqual(messages[2], { data: Buffer.from([0, 1, 2, 255]), isBinary: true });

  const closed = new Promise<[number, string]>((r) => ws.once('close', (code, reason) => r([code, reason.toString()])));
  ws.close(4001, 'bye now');
  assert.deepEqual(await closed, [4001, 'bye now']);
});

test('WebSocket upgrade on a non-ws path is refused', async () => {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/nope`);
  const err = await new Promise<Error>((r) => ws.once('error', r));
  assert.match(err.message, /404/);
});

test('truncated upstream body is an error on the client', async () => {
  const res = await request(`${srv.url}/truncate`);
  assert.equal(res.headers['content-length'], '1000');
  await assert.rejects(res.body.arrayBuffer());
  const viaFetch = await fetch(`${srv.url}/truncate`);
  await assert.rejects(viaFetch.text());
});

test('echo reports the request and leaks identifying headers', async () => {
  const res = await request(`${srv.url}/some/where?a=1&b=2`, {
    method: 'PATCH',
    headers: { 'x-trace': 'abc' },
    body: 'twelve bytes',
  });
  assert.equal(res.headers.server, 'demo/1.0');
  assert.equal(res.headers['x-powered-by'], 'demo');
  const body = (await res.body.json()) as { service: string; method: string; path: string; query: string; headers: Record<string, string>; bodyBytes: number };
  assert.equal(body.service, 'unit');
  assert.equal(body.method, 'PATCH');
  assert.equal(body.path, '/some/where');
  assert.equal(body.query, 'a=1&b=2');
  assert.equal(body.headers['x-trace'], 'abc');
  assert.equal(body.bodyBytes, 12);
  assert.equal(srv.stats.lastHeaders?.['x-trace'], 'abc');

  const bare = (await (await request(`${srv.url}/echo`)).body.json()) as { query: string; bodyBytes: number };
  assert.equal(bare.query, '');
  assert.equal(bare.bodyBytes, 0);
});

test('status, slow and drip behave as documented', async () => {
  const s = await request(`${srv.url}/x/status/503`);
  assert.equal(s.statusCode, 503);
  assert.deepEqual(await s.body.json(), { status: 503, service: 'unit' });

  const t0 = performance.now();
  const slow = await request(`${srv.url}/slow?ms=120`);
  assert.ok(performance.now() - t0 >= 100);
  assert.deepEqual(await slow.body.json(), { slept: 120 });

  const drip = await request(`${srv.url}/drip?chunks=3&ms=30`);
  assert.equal(drip.statusCode, 200);
  assert.equal(await drip.body.text(), 'chunk 0\nchunk 1\nchunk 2\n');
});

test('requests are counted', async () => {
  const before = srv.stats.requests;
  await (await request(`${srv.url}/health`)).body.dump();
  await (await request(`${srv.url}/echo`)).body.dump();
  assert.equal(srv.stats.requests, before + 2);
});

test('startDemoServices starts three named instances and close() ends open streams and sockets', async () => {
  const svc = await startDemoServices();
  assert.deepEqual([svc.chat.name, svc.ingest.name, svc.realtime.name], ['chat', 'ingest', 'realtime']);
  assert.equal(new Set([svc.chat.port, svc.ingest.port, svc.realtime.port]).size, 3);
  const health = await request(`${svc.ingest.url}/health`);
  assert.deepEqual(await health.body.json(), { status: 'ok', service: 'ingest' });

  const stream = await request(`${svc.chat.url}/chat/stream?n=10000&delay=50`);
  const ws = new WebSocket(`${svc.realtime.url.replace('http', 'ws')}/ws`);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const wsClosed = new Promise((r) => ws.once('close', r));
  const slow = request(`${svc.ingest.url}/slow?ms=600000`).catch((e: unknown) => e);

  const t0 = performance.now();
  await svc.close();
  assert.ok(performance.now() - t0 < 1000, 'close() waited for open connections');
  await assert.rejects(stream.body.text());
  await wsClosed;
  assert.ok((await slow) instanceof Error);
  await waitFor(() => svc.chat.stats.streamsAborted === 1, 500);
});
