// An upstream that records every request it receives (and every byte), for the adversarial suite: what reached
// the service behind the gateway is the only thing that matters in a smuggling or path-confusion case.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { startGateway, type TestGateway } from '../helpers.ts';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

export interface RecordingUpstream {
  url: string;
  port: number;
  /** Every request, in arrival order. */
  received: Received[];
  /** Everything written to the upstream on every connection, as latin1 text (request lines and bodies). */
  wire(): string;
  /** Requests whose head reached the upstream (completed or not). */
  heads: number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * `handle` may answer instead of the default (200 JSON `{ path, bytes }`); it sees the full body. A request whose
 * body never completes is still counted in `heads`.
 */
export function startRecordingUpstream(handle?: (r: Received, res: ServerResponse) => boolean): Promise<RecordingUpstream> {
  const sockets = new Set<Socket>();
  let wire: Buffer[] = [];
  const state = { received: [] as Received[], heads: 0 };
  const server = createServer((req, res) => {
    state.heads++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      state.received.push(r);
      if (handle?.(r, res)) return;
      const body = JSON.stringify({ path: r.url, bytes: r.body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('data', (c: Buffer) => wire.push(c));
    s.once('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    resolve({
      url: `http://127.0.0.1:${port}`,
      port,
      get received() { return state.received; },
      get heads() { return state.heads; },
      wire: () => Buffer.concat(wire).toString('latin1'),
      reset: () => { state.received = []; state.heads = 0; wire = []; },
      close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    });
  }));
}

/**
 * The adversarial suite's usual setup: a recording upstream named `app` behind a gateway with h2c beside HTTP/1.1
 * and public routes; `routes` is the YAML list under `routes:` (one `  - {...}` item a line).
 */
export async function startAppGateway(routes: string): Promise<{ up: RecordingUpstream; g: TestGateway }> {
  const up = await startRecordingUpstream();
  const g = await startGateway(`
server:
  http2: { cleartext: true }
upstreams:
  app: { targets: [ ${up.url} ] }
defaults: { auth: public }
routes:
${routes}
`);
  return { up, g };
}
