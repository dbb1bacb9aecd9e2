// A small HTTP/2 client over node:http2, for tests: one request on a session, the answer with its chunks and
// when each arrived.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';

export interface H2Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Each DATA chunk as it arrived, with ms since the request was sent. */
  chunks: Array<{ at: number; text: string }>;
}

/** `https://host:port` with `ca` and SNI `servername`; or `http://…` for h2c. */
export function h2connect(origin: string, opts: { ca?: string | Buffer; servername?: string; cert?: string | Buffer; key?: string | Buffer } = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(origin, { ca: opts.ca, servername: opts.servername, cert: opts.cert, key: opts.key, host: '127.0.0.1' } as never);
    s.once('error', reject);
    s.once('connect', () => { s.off('error', reject); s.on('error', () => {}); resolve(s); });
  });
}

export function h2request(s: ClientHttp2Session, path: string, o: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer | Readable } = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const hasBody = o.body !== undefined;
    const req = s.request({ ':method': o.method ?? (hasBody ? 'POST' : 'GET'), ':path': path, ...o.headers }, { endStream: !hasBody });
    const chunks: H2Answer['chunks'] = [];
    let headers: IncomingHttpHeaders = {};
    req.on('response', (h) => { headers = h; });
    req.setEncoding('utf8');
    req.on('data', (c: string) => chunks.push({ at: performance.now() - t0, text: c }));
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body: chunks.map((c) => c.text).join(''), chunks }));
    req.on('error', reject);
    if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) req.end(o.body);
    else if (o.body !== undefined) o.body.pipe(req);
  });
}
