// Stand-in LLM providers for the AI-traffic tests: an OpenAI-shaped (`POST /v1/chat/completions`) or
// Anthropic-shaped (`POST /v1/messages`) server on an ephemeral port, answering JSON or SSE (`"stream": true`)
// with a usage block, and recording every request it received (headers, body) and how many were in flight.
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Shape = 'openai' | 'anthropic';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as received, text. */
  raw: string;
  body: Record<string, unknown>;
}

/** What the next requests get instead of a normal answer (each entry used once, in order). */
export interface Failure {
  status?: number;
  headers?: Record<string, string>;
  /** Send the SSE head and this many events, then cut the connection (a failure after the first byte). */
  cutAfterEvents?: number;
  /** Refuse to answer at all: destroy the socket when the request arrives. */
  destroy?: boolean;
}

export interface LlmStub {
  name: string;
  shape: Shape;
  url: string;
  received: Received[];
  /** Queued failures, consumed first. */
  failures: Failure[];
  /** Usage every answer reports. */
  usage: { input: number; output: number };
  /** SSE: number of content events and the pause between them (ms). */
  events: number;
  eventDelayMs: number;
  /** Requests being answered now, and the most at once since the last reset. */
  inFlight: number;
  maxInFlight: number;
  completed: number;
  aborted: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startLlmStub(name: string, shape: Shape): Promise<LlmStub> {
  const sockets = new Set<Socket>();
  const stub: LlmStub = {
    name, shape, url: '', received: [], failures: [], usage: { input: 1000, output: 500 }, events: 3, eventDelayMs: 0,
    inFlight: 0, maxInFlight: 0, completed: 0, aborted: 0,
    reset() { this.received = []; this.failures = []; this.maxInFlight = this.inFlight; this.completed = 0; this.aborted = 0; },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> = {};
      try { body = JSON.parse(raw); } catch { /* recorded raw */ }
      stub.received.push({ path: req.url ?? '/', headers: req.headers, raw, body });
      const f = stub.failures.shift();
      if (f?.destroy) { req.socket.destroy(); return; }
      if (f?.status !== undefined) {
        res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers });
        res.end(JSON.stringify({ error: { message: `stub ${name} failing with ${f.status}`, type: 'stub' } }));
        return;
      }
      stub.inFlight++;
      stub.maxInFlight = Math.max(stub.maxInFlight, stub.inFlight);
      let done = false;
      const end = (ok: boolean) => {
        if (done) return;
        done = true;
        stub.inFlight--;
        if (ok) stub.completed++; else stub.aborted++;
      };
      res.on('close', () => end(res.writableFinished));
      // Counted out just before the last byte is written: the gateway cannot see the end earlier, so a request it
      // sends after seeing it is never counted together with this one (a 'close' event may come later than that).
      (res as ServerResponse & { done?: () => void }).done = () => end(true);
      const model = typeof body.model === 'string' ? body.model : 'unknown';
      if (body.stream === true) void stream(stub, res, model, f?.cutAfterEvents);
      else json(stub, res, model);
    });
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return stub;
}

function json(stub: LlmStub, res: ServerResponse, model: string): void {
  const text = `answer from ${stub.name}`;
  const out = stub.shape === 'openai'
    ? { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: stub.usage.input, completion_tokens: stub.usage.output, total_tokens: stub.usage.input + stub.usage.output } }
    : { id: 'msg_1', type: 'message', role: 'assistant', model, content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: stub.usage.input, output_tokens: stub.usage.output } };
  const b = JSON.stringify(out);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  (res as ServerResponse & { done?: () => void }).done?.();
  res.end(b);
}

/** The events of one streamed answer, as the provider writes them. */
export function sseEvents(stub: Pick<LlmStub, 'shape' | 'name' | 'usage' | 'events'>, model: string): string[] {
  const out: string[] = [];
  const ev = (data: unknown, event?: string) => out.push(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  if (stub.shape === 'openai') {
    for (let i = 0; i < stub.events; i++) ev({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: { content: `${stub.name}-${i} ` }, finish_reason: null }] });
    ev({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    ev({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [], usage: { prompt_tokens: stub.usage.input, completion_tokens: stub.usage.output, total_tokens: stub.usage.input + stub.usage.output } });
    out.push('data: [DONE]\n\n');
  } else {
    ev({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: stub.usage.input, output_tokens: 1 } } }, 'message_start');
    ev({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
    for (let i = 0; i < stub.events; i++) ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `${stub.name}-${i} ` } }, 'content_block_delta');
    ev({ type: 'content_block_stop', index: 0 }, 'content_block_stop');
    ev({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: stub.usage.output } }, 'message_delta');
    ev({ type: 'message_stop' }, 'message_stop');
  }
  return out;
}

async function stream(stub: LlmStub, res: ServerResponse, model: string, cutAfter: number | undefined): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const events = sseEvents(stub, model);
  for (let i = 0; i < events.length; i++) {
    if (res.destroyed) return;
    // let what was written reach the gateway first: the failure is after the first byte
    if (cutAfter !== undefined && i === cutAfter) { await new Promise((r) => setTimeout(r, 50)); res.socket?.destroy(); return; }
    if (i === events.length - 1) (res as ServerResponse & { done?: () => void }).done?.();
    res.write(events[i]);
    if (stub.eventDelayMs > 0 && i < events.length - 1) await new Promise((r) => setTimeout(r, stub.eventDelayMs));
  }
  res.end();
}

/** Reads an SSE body into its events' data (parsed JSON, or the raw text for `[DONE]`). */
export function sseData(text: string): unknown[] {
  return text.split('\n\n').filter((e) => e.trim() !== '').map((e) => {
    const data = e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    try { return JSON.parse(data); } catch { return data; }
  });
}
