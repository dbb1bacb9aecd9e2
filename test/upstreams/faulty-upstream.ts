// A real HTTP upstream whose failure mode the test switches at runtime: refused (stopped), reset before or in
// the middle of a response, hang, slow headers, 5xx, and a /health endpoint that can fail, hang or flap.
import http from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';

export type Mode = 'ok' | 'status' | 'reset' | 'reset-mid' | 'hang' | 'slow';
export type HealthMode = 'ok' | 'fail' | 'hang' | 'flap';

export interface FaultyUpstream {
  name: string;
  url: string;
  port: number;
  /** Requests received, /health excluded. */
  calls: number;
  /** Request methods received, in order (/health excluded). */
  methods: string[];
  healthCalls: number;
  mode: Mode;
  status: number;
  delayMs: number;
  healthMode: HealthMode;
  /** Stops listening and cuts every connection: new connections are refused. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaulty(name: string, opts: { mode?: Mode; status?: number; delayMs?: number; port?: number } = {}): Promise<FaultyUpstream> {
  const sockets = new Set<Socket>();
  let flap = false;
  const u: FaultyUpstream = {
    name, url: '', port: 0, calls: 0, methods: [], healthCalls: 0,
    mode: opts.mode ?? 'ok', status: opts.status ?? 503, delayMs: opts.delayMs ?? 0, healthMode: 'ok',
    stop, start, close: stop,
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      u.healthCalls++;
      req.resume();
      const hm = u.healthMode === 'flap' ? ((flap = !flap) ? 'fail' : 'ok') : u.healthMode;
      if (hm === 'hang') return;
      res.writeHead(hm === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ status: hm === 'ok' ? 'ok' : 'down', service: name }));
    }
    u.calls++;
    u.methods.push(req.method ?? '');
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => { bodyBytes += c.length; });
    const answer = () => {
      switch (u.mode) {
        case 'hang': return;
        case 'reset': return req.socket.destroy();
        case 'reset-mid':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
          res.write('partial', () => req.socket.destroy());
          return;
        case 'status':
          res.writeHead(u.status, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ service: name, status: u.status }));
        default: {
          const send = () => {
            if (res.destroyed) return;
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ service: name, method: req.method, bodyBytes }));
          };
          if (u.mode === 'slow') setTimeout(send, u.delayMs);
          else send();
        }
      }
    };
    // 'reset' and 'hang' act as soon as the head arrives; the others answer once the body is in.
    if (u.mode === 'reset' || u.mode === 'hang') answer();
    else req.on('end', answer);
  });
  server.keepAliveTimeout = 10_000;
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });

  function start(): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(u.port || opts.port || 0, '127.0.0.1', () => {
        server.off('error', reject);
        u.port = (server.address() as { port: number }).port;
        u.url = `http://127.0.0.1:${u.port}`;
        resolve();
      });
    });
  }
  function stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!server.listening) { for (const s of sockets) s.destroy(); return resolve(); }
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  }
  await start();
  return u;
}

/** A port nothing listens on: connections to it are refused. */
export async function refusedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP server that accepts connections and never answers (an upstream hung at the socket level). */
export async function hangingServer(): Promise<{ url: string; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const out = { url: '', connections: 0, close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }) };
  const srv = createNetServer((s) => { out.connections++; sockets.add(s); s.on('error', () => {}); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  out.url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  return out;
}

/** Reads one metric sample's value from Prometheus text, or undefined. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
