// Raw HTTP/1.1 over node:net, for what a well-behaved client library refuses to send
// (hop-by-hop headers, conflicting framing, dot segments, byte-by-byte headers).
import { connect, createServer, type Server, type Socket } from 'node:net';
import assert from 'node:assert/strict';

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent, as text. */
  raw: string;
}

/** Opens a socket to 127.0.0.1:port and resolves once it is connected. */
export function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

/** Everything the peer sends until it closes the connection (or `timeoutMs` passes: then rejects). */
export function readUntilClose(s: Socket, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connection still open after ${timeoutMs} ms; got: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`)); }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => { /* a reset after the response is still a close */ });
    s.once('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
  });
}

/** Sends `data` as-is on a fresh connection and returns what came back before the server closed it. */
export async function rawExchange(port: number, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  const s = await openSocket(port);
  const done = readUntilClose(s, timeoutMs);
  s.write(data);
  return done;
}

/** One request with `Connection: close`; `head` is the request line and headers without the blank line. */
export async function rawRequest(port: number, head: string, body = ''): Promise<RawResponse> {
  const text = await rawExchange(port, `${head}\r\nConnection: close\r\n\r\n${body}`);
  return parseResponse(text);
}

export function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete response head in: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  assert.ok(m, `bad status line ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let body = text.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status: Number(m[1]), headers, body, raw: text };
}

function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', i);
    if (nl < 0) break;
    const n = parseInt(s.slice(i, nl), 16);
    if (!n) break;
    out += s.slice(nl + 2, nl + 2 + n);
    i = nl + 2 + n + 2;
  }
  return out;
}

/** A TCP server that misbehaves as an HTTP upstream: `garbage` answers bytes that are not HTTP, `reset` sends an RST. */
export function badUpstream(kind: 'garbage' | 'reset'): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.once('data', () => {
      if (kind === 'garbage') s.end('this is not HTTP at all\r\n\r\n');
      else s.resetAndDestroy();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  })));
}

/** A port nothing listens on (bound, then released). */
export function deadPort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    server.close(() => resolve(port));
  }));
}
