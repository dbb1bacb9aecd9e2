// Small stand-in services for the end-to-end suites: real HTTP/WebSocket servers on ephemeral
// ports. Each answers with its name, the method, path, query and headers it received, and the
// size and sha256 of the body (so a test can prove a body arrived byte for byte).
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash } from 'node:crypto';
import { WebSocketServer } from 'ws';

export interface StubEcho {
  service: string;
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  contentType: string | null;
  /** The body, base64, when it is at most 1 MiB or the request says `x-stub-keep-body: 1` (so a test can check a rewritten body byte for byte). */
  body?: string;
  /** Transfer-Encoding as received (a rewritten multipart body is chunked). */
  transferEncoding?: string;
}

export interface Stub {
  name: string;
  url: string;
  port: number;
  /** Every request seen, in arrival order (headers known at arrival; bytes filled in as the body streams). */
  seen: Array<{ method: string; path: string; headers: IncomingHttpHeaders; bytes: number }>;
  /** healthy: answer normally; failing: answer 500 to everything, health checks included. */
  setMode(mode: 'healthy' | 'failing'): void;
  close(): Promise<void>;
}

/**
 * Control headers a test sends (they reach the stub through the gateway like any header):
 *   x-stub-sleep-ms: wait this long after the body before answering (timeout tiers);
 *   x-stub-status:   answer with this status;
 *   x-stub-usage:    add an OpenAI-style `usage` with this many total tokens (metering).
 */
export function startStub(name: string, host = '127.0.0.1'): Promise<Stub> {
  let mode: 'healthy' | 'failing' = 'healthy';
  const seen: Stub['seen'] = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const entry = { method: req.method ?? '', path, headers: req.headers, bytes: 0 };
    seen.push(entry);
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    const keepAll = req.headers['x-stub-keep-body'] === '1';
    req.on('data', (c: Buffer) => { entry.bytes += c.length; hash.update(c); if (keepAll || entry.bytes <= 1 << 20) kept.push(c); });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (mode === 'failing') return send(res, 500, { service: name, error: 'failing on purpose' });
      if (path.endsWith('/health') || path.endsWith('/healthz')) return send(res, 200, { status: 'ok', service: name });
      const echo: StubEcho = { service: name, method: req.method ?? '', path, query, headers: req.headers, bytes: entry.bytes, sha256: hash.digest('hex'), contentType: req.headers['content-type'] ?? null };
      if (keepAll || entry.bytes <= 1 << 20) echo.body = Buffer.concat(kept).toString('base64');
      if (req.headers['transfer-encoding'] !== undefined) echo.transferEncoding = req.headers['transfer-encoding'];
      const usage = Number(req.headers['x-stub-usage'] ?? 0);
      if (usage > 0) (echo as StubEcho & { usage?: unknown }).usage = { prompt_tokens: usage - 1, completion_tokens: 1, total_tokens: usage };
      const status = Number(req.headers['x-stub-status'] ?? 200);
      const sleep = Number(req.headers['x-stub-sleep-ms'] ?? 0);
      if (sleep > 0) {
        const t = setTimeout(() => send(res, status, echo), sleep);
        res.on('close', () => clearTimeout(t));
      } else send(res, status, echo);
    });
  });
  server.requestTimeout = 0;
  const sockets = new Set<Socket | Duplex>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    seen.push({ method: 'GET', path: q < 0 ? url : url.slice(0, q), headers: req.headers, bytes: 0 });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.send(JSON.stringify({ service: name, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: req.headers }));
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as { port: number }).port;
      let closing: Promise<void> | undefined;
      resolve({
        name,
        port,
        url: `http://${host}:${port}`,
        seen,
        setMode: (m) => { mode = m; },
        close: () => (closing ??= new Promise<void>((r) => {
          for (const ws of wss.clients) ws.terminate();
          wss.close();
          server.close(() => r());
          server.closeAllConnections();
          for (const s of sockets) s.destroy();
        })),
      });
    });
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length });
  res.end(buf);
}

/** Starts one stub per name; all or nothing. */
export async function startStubs(names: readonly string[]): Promise<Map<string, Stub> & { closeAll(): Promise<void> }> {
  const results = await Promise.allSettled(names.map((n) => startStub(n)));
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) { await Promise.all(ok.map((s) => s.close())); throw failed.reason; }
  const map = new Map(ok.map((s) => [s.name, s])) as Map<string, Stub> & { closeAll(): Promise<void> };
  map.closeAll = async () => { await Promise.all(ok.map((s) => s.close())); };
  return map;
}

/** A multipart/form-data body from fields and files, with its content type. */
export function multipart(fields: Record<string, string>, files: Array<{ name: string; filename: string; type: string; data: Buffer }> = []): { body: Buffer; contentType: string } {
  const boundary = `----gatehouse${Math.random().toString(16).slice(2)}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${f.name}"; filename="${f.filename}"\r\ncontent-type: ${f.type}\r\n\r\n`), f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * The parts of a multipart body, parsed independently of the gateway's own parser (a test must not check the code
 * with itself): name, filename, and content bytes of each part.
 */
export function parseMultipart(body: Buffer, contentType: string): Array<{ name: string; filename?: string; data: Buffer }> {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`);
  const out: Array<{ name: string; filename?: string; data: Buffer }> = [];
  let at = body.indexOf(delim);
  if (at < 0) throw new Error('no delimiter');
  for (;;) {
    at += delim.length;
    if (body.subarray(at, at + 2).toString() === '--') return out;
    const headEnd = body.indexOf('\r\n\r\n', at);
    const head = body.subarray(at + 2, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headEnd + 4);
    if (headEnd < 0 || next < 0) throw new Error('truncated multipart body');
    const name = /name="([^"]*)"/i.exec(head.replace(/filename="[^"]*"/i, ''))?.[1] ?? '';
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    out.push({ name, filename, data: body.subarray(headEnd + 4, next) });
    at = next + 2;
  }
}

/** The fields of a JSON, urlencoded or multipart body an echo carried, as name → values (files: sha256 of their bytes). */
export function echoedFields(echo: StubEcho): Record<string, string[]> {
  const body = Buffer.from(echo.body ?? '', 'base64');
  const out: Record<string, string[]> = {};
  const add = (k: string, v: string) => { (out[k] ??= []).push(v); };
  const ct = echo.contentType ?? '';
  if (ct.startsWith('application/json')) for (const [k, v] of Object.entries(JSON.parse(body.toString()) as Record<string, unknown>)) add(k, typeof v === 'string' ? v : JSON.stringify(v));
  else if (ct.startsWith('application/x-www-form-urlencoded')) for (const [k, v] of new URLSearchParams(body.toString())) add(k, v);
  else if (ct.startsWith('multipart/form-data')) for (const p of parseMultipart(body, ct)) add(p.name, p.filename !== undefined ? `file:${p.filename}:${sha256(p.data)}` : p.data.toString('utf8'));
  return out;
}
