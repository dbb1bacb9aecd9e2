// Stand-in AI services for `gatehouse demo`, the tests and the benchmarks. They are deliberately
// real HTTP/WebSocket servers (not mocks) so that the gateway is exercised over real sockets,
// with the awkward behaviours an upstream can have: slow headers, dripping bodies, streams the
// client abandons, and bodies cut short.
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

export interface DemoStats {
  requests: number;
  streamsStarted: number;
  streamsCompleted: number;
  streamsAborted: number;
  uploads: number;
  lastHeaders: IncomingHttpHeaders | null;
}

export interface DemoServer {
  name: string;
  url: string;
  port: number;
  stats: DemoStats;
  close(): Promise<void>;
  server: http.Server;
}

const MAX_JSON_BODY = 1024 * 1024;
const MAX_WAIT_MS = 600_000;

interface Ctx {
  name: string;
  stats: DemoStats;
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: string;
  params: URLSearchParams;
}

function splitUrl(url: string | undefined): { path: string; query: string } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

function intParam(params: URLSearchParams, key: string, def: number, max: number): number {
  const raw = params.get(key);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? Math.min(max, Math.floor(n)) : def;
}

function countWords(s: string): number {
  const t = s.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: http.OutgoingHttpHeaders = {}): void {
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length, ...extra });
  res.end(buf);
}

// Resolves null when the body exceeds the limit, so the caller can answer 413 itself. Events rather
// than for-await: leaving a for-await loop early destroys the request and with it the socket.
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): unknown => req.off('data', onData).off('end', onEnd).off('error', onError);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      done();
      resolve(null);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

function tooLarge(ctx: Ctx): void {
  // The rest of the body is still in flight; closing keeps it from being parsed as a next request.
  sendJson(ctx.res, 413, { error: 'payload too large', limit: MAX_JSON_BODY }, { connection: 'close' });
  ctx.req.resume();
}

// Accepts both plain-string contents and OpenAI's array-of-parts form.
function promptTokens(body: unknown): number {
  let words = 0;
  const messages = (body as { messages?: unknown } | null)?.messages;
  if (Array.isArray(messages)) {
    for (const m of messages) {
      const content = (m as { content?: unknown } | null)?.content;
      if (typeof content === 'string') words += countWords(content);
      else if (Array.isArray(content)) {
        for (const part of content) {
          const text = (part as { text?: unknown } | null)?.text;
          if (typeof text === 'string') words += countWords(text);
        }
      }
    }
  }
  return Math.max(1, words);
}

async function handleChat(ctx: Ctx, forceStream: boolean): Promise<void> {
  let body: { model?: unknown; stream?: unknown } | null = null;
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
    const buf = await readBody(ctx.req, MAX_JSON_BODY);
    if (buf === null) return tooLarge(ctx);
    try {
      body = buf.length ? JSON.parse(buf.toString('utf8')) : null;
    } catch {
      return sendJson(ctx.res, 400, { error: 'invalid JSON body' });
    }
  }
  const model = typeof body?.model === 'string' ? body.model : 'demo-model';
  const prompt = promptTokens(body);
  const id = `chatcmpl-${randomBytes(8).toString('hex')}`;
  if (forceStream || body?.stream === true) return streamChat(ctx, id, model, prompt);
  const content = `This is a demo reply from ${ctx.name}.`;
  const completion = countWords(content);
  sendJson(ctx.res, 200, {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  });
}

function streamChat(ctx: Ctx, id: string, model: string, prompt: number): void {
  const { res, stats } = ctx;
  const n = intParam(ctx.params, 'n', 5, 10_000);
  const delay = intParam(ctx.params, 'delay', 20, MAX_WAIT_MS);
  stats.streamsStarted++;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // Headers go out before the first token so a proxy's time-to-first-byte is observable.
  res.flushHeaders();

  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  res.on('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) stats.streamsAborted++;
  });
  const event = (obj: unknown): boolean => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const schedule = (): void => {
    if (!res.destroyed) timer = setTimeout(step, delay);
  };
  const step = (): void => {
    timer = undefined;
    if (res.destroyed) return;
    if (i < n) {
      const ok = event({ id, object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: `tok${i} ` } }] });
      i++;
      // A slow reader pauses the token clock instead of making us buffer without bound.
      if (ok) schedule();
      else res.once('drain', schedule);
      return;
    }
    event({ id, object: 'chat.completion.chunk', model, choices: [], usage: { prompt_tokens: prompt, completion_tokens: n, total_tokens: prompt + n } });
    res.write('data: [DONE]\n\n');
    res.end(() => {
      stats.streamsCompleted++;
    });
  };
  step();
}

async function handleUpload(ctx: Ctx): Promise<void> {
  const hash = createHash('sha256');
  let bytes = 0;
  // Async iteration pulls one chunk at a time, so TCP backpressure reaches the sender.
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  ctx.stats.uploads++;
  sendJson(ctx.res, 200, { bytes, sha256: hash.digest('hex'), contentType: ctx.req.headers['content-type'] ?? null });
}

function handleSlow(ctx: Ctx): void {
  const ms = intParam(ctx.params, 'ms', 1000, MAX_WAIT_MS);
  ctx.req.resume();
  const timer = setTimeout(() => sendJson(ctx.res, 200, { slept: ms }), ms);
  ctx.res.on('close', () => clearTimeout(timer));
}

function handleDrip(ctx: Ctx): void {
  const { res } = ctx;
  const chunks = intParam(ctx.params, 'chunks', 5, 10_000);
  const ms = intParam(ctx.params, 'ms', 100, MAX_WAIT_MS);
  ctx.req.resume();
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  res.flushHeaders();
  // Every gap, including the one before the first chunk, is `ms` long, so an idle timeout
  // shorter than `ms` fires regardless of where it starts counting.
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    if (i >= chunks) return void res.end();
    res.write(`chunk ${i++}\n`);
    timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  res.on('close', () => clearTimeout(timer));
}

function handleTruncate(ctx: Ctx): void {
  const socket = ctx.req.socket;
  ctx.req.resume();
  ctx.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1000 });
  // Destroy only once the partial body has reached the kernel, so the client sees a short body
  // rather than a refused response.
  ctx.res.write(Buffer.alloc(100, 0x61), () => socket.destroy());
}

function handleStatus(ctx: Ctx, code: number): void {
  ctx.req.resume();
  if (code < 200 || code > 599) return sendJson(ctx.res, 400, { error: 'status must be 200-599' });
  if (code === 204 || code === 304) {
    ctx.res.writeHead(code);
    return void ctx.res.end();
  }
  sendJson(ctx.res, code, { status: code, service: ctx.name });
}

async function handleEcho(ctx: Ctx): Promise<void> {
  let bodyBytes = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) bodyBytes += chunk.length;
  sendJson(ctx.res, 200, {
    service: ctx.name,
    method: ctx.req.method,
    path: ctx.path,
    query: ctx.query,
    headers: ctx.req.headers,
    bodyBytes,
  });
}

async function route(ctx: Ctx): Promise<void> {
  const { path } = ctx;
  const method = ctx.req.method ?? 'GET';
  const isGet = method === 'GET' || method === 'HEAD';
  if (isGet && path.endsWith('/health')) {
    ctx.req.resume();
    return sendJson(ctx.res, 200, { status: 'ok', service: ctx.name });
  }
  if ((method === 'POST' || method === 'GET') && path.endsWith('/chat/stream')) return handleChat(ctx, true);
  if (method === 'POST' && (path.endsWith('/chat/completions') || path.endsWith('/chat'))) return handleChat(ctx, false);
  if ((method === 'POST' || method === 'PUT') && path.endsWith('/upload')) return handleUpload(ctx);
  if (isGet && path.endsWith('/slow')) return handleSlow(ctx);
  if (isGet && path.endsWith('/drip')) return handleDrip(ctx);
  if (isGet && path.endsWith('/truncate')) return handleTruncate(ctx);
  const status = /\/status\/(\d{3})$/.exec(path);
  if (isGet && status) return handleStatus(ctx, Number(status[1]));
  return handleEcho(ctx);
}

function isWsPath(path: string): boolean {
  return path.endsWith('/ws') || path.endsWith('/ws/echo');
}

export function startDemoServer(opts: { name?: string; host?: string; port?: number } = {}): Promise<DemoServer> {
  const name = opts.name ?? 'demo';
  const host = opts.host ?? '127.0.0.1';
  const stats: DemoStats = { requests: 0, streamsStarted: 0, streamsCompleted: 0, streamsAborted: 0, uploads: 0, lastHeaders: null };

  const server = http.createServer((req, res) => {
    stats.requests++;
    stats.lastHeaders = req.headers;
    // Identifying headers a real upstream leaks, so the gateway's stripping can be tested.
    res.setHeader('server', 'demo/1.0');
    res.setHeader('x-powered-by', 'demo');
    const { path, query } = splitUrl(req.url);
    const ctx: Ctx = { name, stats, req, res, path, query, params: new URLSearchParams(query) };
    route(ctx).catch(() => {
      // Mostly a client that went away mid-body; nothing useful can be sent either way.
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // Node's 5-minute default would cut off long uploads in benchmarks; the gateway owns timeouts.
  server.requestTimeout = 0;

  // Upgraded sockets leave the server's bookkeeping, so closeAllConnections() cannot reach them.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers) => headers.push('Server: demo/1.0', 'X-Powered-By: demo'));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    stats.requests++;
    stats.lastHeaders = req.headers;
    const { path, query } = splitUrl(req.url);
    if (!isWsPath(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      // ws already answers a close frame with the same code and reason, which is the behaviour
      // the gateway must preserve end to end.
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.send(JSON.stringify({ hello: name, path, query, headers: req.headers }));
    });
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.close(() => resolve());
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
    return closing;
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
      const urlHost = host.includes(':') ? `[${host}]` : host;
      resolve({ name, url: `http://${urlHost}:${port}`, port, stats, close, server });
    });
  });
}

export async function startDemoServices(
  opts: { host?: string } = {},
): Promise<{ chat: DemoServer; ingest: DemoServer; realtime: DemoServer; close(): Promise<void> }> {
  const names = ['chat', 'ingest', 'realtime'] as const;
  const results = await Promise.allSettled(names.map((name) => startDemoServer({ name, host: opts.host })));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((s) => s.close()));
    throw failed.reason;
  }
  const [chat, ingest, realtime] = started;
  return {
    chat,
    ingest,
    realtime,
    close: async () => {
      await Promise.all(started.map((s) => s.close()));
    },
  };
}
