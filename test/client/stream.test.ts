// gatehouse/client's SSE iterator: events parsed as the WHATWG spec says, yielded as they arrive through the
// gateway (each one before the upstream sends the next), the usage of the last event before [DONE], and
// abort or break mid-stream reaching the upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDemoServer, type DemoServer } from '../../src/demo/services.ts';
import { startGateway, eventually, type TestGateway } from '../helpers.ts';
import { Gatehouse, parseEventStream, type SseEvent } from '../../src/client/index.ts';

/** An upstream that sends `n` events `gap` ms apart, recording when it wrote each, then usage and [DONE]. */
interface Timed { url: string; sent: number[]; closedEarly: number; server: http.Server }
async function timedUpstream(): Promise<Timed> {
  const t: Timed = { url: '', sent: [], closedEarly: 0, server: null as unknown as http.Server };
  t.server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const n = Number(u.searchParams.get('n') ?? 4);
    const gap = Number(u.searchParams.get('gap') ?? 250);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': keep-alive comment\n\n');
    t.sent = [];
    let i = 0;
    let finished = false;
    const timer = setInterval(() => {
      if (i < n) {
        t.sent.push(performance.now() + performance.timeOrigin);
        // CRLF line ends, an id, a named event and two data lines on the odd ones.
        res.write(i % 2 ? `event: delta\r\nid: ${i}\r\ndata: {"i":${i},\r\ndata: "odd":true}\r\n\r\n` : `id: ${i}\ndata: {"i":${i}}\n\n`);
        i++;
        return;
      }
      clearInterval(timer);
      res.write(`data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":${n},"total_tokens":${11 + n}}}\n\n`);
      res.end('data: [DONE]\n\n');
      finished = true;
    }, gap);
    res.on('close', () => { clearInterval(timer); if (!finished) t.closedEarly++; });
  });
  await new Promise<void>((r) => t.server.listen(0, '127.0.0.1', r));
  t.url = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
  return t;
}

let timed: Timed;
let demo: DemoServer;
let g: TestGateway;
let gh: Gatehouse;

before(async () => {
  timed = await timedUpstream();
  demo = await startDemoServer({ name: 'chat' });
  g = await startGateway(`
upstreams:
  timed: { targets: [ ${timed.url} ] }
  chat: { targets: [ ${demo.url} ] }
defaults: { auth: public }
routes:
  - { name: timed, match: { path: /timed, methods: [GET] }, upstream: timed }
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat }
`);
  gh = new Gatehouse({ baseUrl: g.url });
});
after(async () => { await g.close(); await demo.close(); timed.server.closeAllConnections(); await new Promise((r) => timed.server.close(r)); });

test('events are yielded as they arrive: each one before the upstream sends the next; usage at the end', async () => {
  const stream = await gh.stream('/timed', { query: { n: 4, gap: 250 } });
  assert.equal(stream.response.headers.get('content-type'), 'text/event-stream');
  assert.ok(stream.requestId);
  const got: Array<{ e: SseEvent; at: number }> = [];
  for await (const e of stream) {
    got.push({ e, at: performance.now() + performance.timeOrigin });
    if (got.length <= 4) assert.equal(stream.usage, undefined, 'no usage before the usage event');
  }
  assert.equal(got.length, 5, 'four events and the usage event; [DONE] is not yielded');
  for (let i = 0; i < 4; i++) {
    assert.ok(got[i].at >= timed.sent[i], `event ${i} arrived before it was sent?`);
    if (i < 3) assert.ok(got[i].at < timed.sent[i + 1], `event ${i} arrived ${(got[i].at - timed.sent[i]).toFixed(0)} ms after it was sent, after event ${i + 1} was sent (buffered)`);
  }
  assert.deepEqual(got.slice(0, 4).map((x) => [x.e.event, x.e.id, x.e.json()]), [
    ['message', '0', { i: 0 }], ['delta', '1', { i: 1, odd: true }], ['message', '2', { i: 2 }], ['delta', '3', { i: 3, odd: true }],
  ]);
  assert.equal(got[1].e.data, '{"i":1,\n"odd":true}', 'data lines joined with LF');
  assert.equal(got[4].e.id, '3', 'the last event id persists');
  assert.equal(stream.done, true);
  assert.deepEqual({ ...stream.usage, raw: undefined }, { inputTokens: 11, outputTokens: 4, totalTokens: 15, raw: undefined });
  assert.equal(stream.lastEventId, '3');
});

test('a POST stream to an OpenAI-shaped service (the demo chat): tokens, then usage from the last chunk before [DONE]', async () => {
  const stream = await gh.stream('/v1/chat/completions', { json: { model: 'demo-1', stream: true, messages: [{ role: 'user', content: 'one two three' }] } });
  let text = '';
  for await (const e of stream) text += e.json<{ choices: Array<{ delta?: { content?: string } }> }>().choices[0]?.delta?.content ?? '';
  assert.equal(text, 'tok0 tok1 tok2 tok3 tok4 ');
  assert.equal(stream.usage!.outputTokens, 5);
  assert.ok(stream.usage!.inputTokens > 0);
  assert.equal(stream.usage!.totalTokens, stream.usage!.inputTokens + 5);
  assert.equal(stream.done, true);
});

test('abort mid-stream: the iterator throws AbortError and the upstream sees the client leave', async () => {
  const before = timed.closedEarly;
  const ac = new AbortController();
  const stream = await gh.stream('/timed', { query: { n: 50, gap: 50 }, signal: ac.signal });
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const e of stream) { seen.push(e.id); if (seen.length === 2) ac.abort(); }
  }, (e: Error) => e.name === 'AbortError');
  assert.deepEqual(seen, ['0', '1']);
  await eventually(() => timed.closedEarly === before + 1, 3000);
  assert.equal(stream.done, false);
});

test('breaking out of the loop ends the request too', async () => {
  const before = timed.closedEarly;
  const stream = await gh.stream('/timed', { query: { n: 50, gap: 50 } });
  for await (const e of stream) if (e.id === '2') break;
  await eventually(() => timed.closedEarly === before + 1, 3000);
});

/** Feeds `text` to the parser in chunks of `size` bytes (1 = byte by byte, splitting CRLF and UTF-8 sequences). */
async function parse(text: string, size: number): Promise<SseEvent[]> {
  const bytes = new TextEncoder().encode(text);
  async function* chunks() { for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size); }
  const out: SseEvent[] = [];
  for await (const e of parseEventStream(chunks())) out.push(e);
  return out;
}

test('the parser follows the WHATWG event stream rules, whatever the chunking', async () => {
  const text = '\uFEFFretry: 3000\r\n: comment\r\ndata:no space\rdata:  two spaces\n\nevent: x\nid: 7\ndata\n\n' +
    'id: 8\0bad\ndata: keeps id 7\n\nevent: only-a-type\n\nretry: 12a\ndata: ünïcødé ✓\n\ndata: cut off at the end';
  for (const size of [1, 2, 3, 7, 1000]) {
    const evs = await parse(text, size);
    assert.deepEqual(evs.map((e) => ({ event: e.event, data: e.data, id: e.id, retry: e.retry })), [
      { event: 'message', data: 'no space\n two spaces', id: '', retry: 3000 },
      { event: 'x', data: '', id: '7', retry: undefined },
      { event: 'message', data: 'keeps id 7', id: '7', retry: undefined },
      { event: 'message', data: 'ünïcødé ✓', id: '7', retry: undefined },
    ], `chunk size ${size}`);
  }
});
