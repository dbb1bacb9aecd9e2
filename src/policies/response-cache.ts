import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Counter } from 'prom-client';
import { obj, duration, size } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import type { RequestContext, ResponseTap, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { readBody } from '../pipeline/request-body.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../state/store.ts';

/**
 * A response cache for identical requests (`cache:` on a route, opt-in): the key is the method, the normalized
 * path and query, the request headers the route lists, a SHA-256 of the body as the client sent it, and the
 * consumer (private per consumer unless `shared: true`). Entries live in the state store: the memory store's
 * bounded LRU (`state.cacheSize`) or Redis (shared by every gateway).
 *
 * JSON answers are kept as received; an SSE answer is recorded while it streams to the first client (each event
 * with its time) and replayed event by event to later ones, at once or at the original pace (`replay: timed`).
 * Only complete 200 answers are stored: never one with Set-Cookie, `Cache-Control: no-store` or `private`, an error,
 * a stream the client left, or an entry over `maxEntrySize`. A request's own `Cache-Control: no-store` bypasses the
 * cache, `no-cache` skips the lookup (the answer may be stored). Every answer says what happened in `Cache-Status`
 * (RFC 9211); a hit settles 0 tokens and 0 cost. See docs/ai-traffic.md.
 */
export const cacheRouteKeys = {
  cache: obj({
    ttl: duration.prefault('5m').describe('How long an entry is served.'),
    maxEntrySize: size.prefault('1mb').describe('Answers larger than this are not stored.'),
    shared: z.boolean().prefault(false).describe('false: an entry serves only the consumer whose request made it; true: every consumer.'),
    headers: z.array(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a header name')).prefault([]).describe('Request headers that are part of the key (a different value is a different entry).'),
    replay: z.enum(['fast', 'timed']).prefault('fast').describe('SSE replay: `fast` (every event as soon as the client takes it) or `timed` (at the pace they first arrived).'),
  }).optional().describe('Cache complete 200 answers (JSON and SSE) in the state store (docs/ai-traffic.md).'),
};
type RouteCache = NonNullable<z.output<(typeof cacheRouteKeys)['cache']>>;

interface Needs {
  server: { limits: { bodyPeek: number } };
  routes: ReadonlyArray<{ cache?: RouteCache; websocket: boolean; auth: string }>;
}
type Route = { name: string; upstream: string; cache?: RouteCache; models?: unknown; transform?: unknown };

const NAME = 'gatehouse';
/** Response headers that belong to one exchange and are never stored. */
const PER_EXCHANGE = new Set(['x-request-id', 'ratelimit', 'ratelimit-policy', 'cache-status', 'age', 'date', 'set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive']);

export const responseCachePolicy: Policy<Needs, Route> = {
  name: 'cache',
  check(c, out: Issue[]) {
    c.routes.forEach((r, i) => {
      if (r.cache === undefined) return;
      if (r.websocket) out.push({ path: ['routes', i, 'cache'], message: 'a WebSocket tunnel has no response to cache' });
      if (r.cache.shared && r.auth !== 'public') out.push({ path: ['routes', i, 'cache', 'shared'], message: 'a shared cache serves one consumer\'s answer to every other consumer with the same request', warning: true });
    });
  },
  compile({ config, route, env }) {
    const c = route.cache;
    if (c === undefined) return undefined;
    const store = env.store;
    const warn = env.storeWarn;
    const m = cacheMetrics(env.metrics);
    const hits = m.results.labels(route.name, 'hit');
    const misses = m.results.labels(route.name, 'miss');
    const bypasses = m.results.labels(route.name, 'bypass');
    const stored = m.results.labels(route.name, 'stored');
    // What shapes the answer besides the request: a route whose models or upstream change starts afresh.
    const scope = createHash('sha256').update(JSON.stringify([route.name, route.upstream, route.models ?? null, route.transform ?? null])).digest('base64url').slice(0, 16);
    const keyHeaders = c.headers.map((h) => h.toLowerCase());
    const cap = config.server.limits.bodyPeek;
    const settings: Settings = { ttl: c.ttl, max: c.maxEntrySize, timed: c.replay === 'timed' };

    const step: Step = (ctx) => {
      const cc = ctx.req.headers['cache-control'];
      const noStore = cc !== undefined && /(^|,)\s*no-store\s*(,|$)/i.test(cc);
      if (noStore) return status(ctx, `${NAME}; fwd=bypass; detail=no-store`, bypasses);
      return readBody(ctx, cap).then((body) => {
        if (!body.complete) return status(ctx, `${NAME}; fwd=bypass; detail=too-large`, bypasses);
        const h = createHash('sha256').update(scope).update('\0').update(ctx.req.method ?? 'GET').update('\0').update(ctx.path).update('\0').update(ctx.query ?? '');
        for (const n of keyHeaders) { const v = ctx.req.headers[n]; h.update('\0').update(Array.isArray(v) ? v.join(', ') : v ?? ''); }
        const id = ctx.identity;
        h.update('\0').update(c.shared || id === null ? '' : id.consumer ?? id.id);
        h.update('\0').update(createHash('sha256').update(body.bytes).digest());
        const key = h.digest('base64url');
        const record = () => {
          misses.inc();
          ctx.cacheStatus = `${NAME}; fwd=${cc !== undefined && /no-cache/i.test(cc) ? 'request' : 'uri-miss'}`;
          ctx.addResponseHeader('cache-status', ctx.cacheStatus);
          ctx.tap = new CacheRecorder(ctx, ctx.tap, store, key, settings, warn, stored);
        };
        if (cc !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(cc)) return record();
        const found = (entry: Buffer | null) => {
          const e = entry === null ? null : decode(entry);
          if (e === null) return record();
          hits.inc();
          ctx.cacheHit = true;
          const age = Math.max(0, Math.floor((Date.now() - e.storedAt) / 1000));
          ctx.cacheStatus = `${NAME}; hit; ttl=${Math.max(0, Math.floor((e.storedAt + c.ttl - Date.now()) / 1000))}`;
          ctx.serve = (x) => replay(x, e, age, settings.timed);
        };
        let got: Buffer | null | Promise<Buffer | null>;
        try { got = store.cacheGet(key); } catch (err) { warn('response cache: lookup failed; forwarding', err); return record(); }
        if (got instanceof Promise) return got.then(found, (err) => { warn('response cache: lookup failed; forwarding', err); record(); });
        found(got);
      });
    };
    return step;
  },
};

interface Settings { ttl: number; max: number; timed: boolean }

function status(ctx: RequestContext, value: string, counter: { inc(): void }): void {
  counter.inc();
  ctx.cacheStatus = value;
  ctx.addResponseHeader('cache-status', value);
}

interface Entry {
  status: number;
  headers: string[];
  sse: boolean;
  /** SSE: [end offset, ms since the first byte] per event. */
  events: Array<[number, number]>;
  storedAt: number;
  body: Buffer;
}

/** [4-byte head length][head JSON][body]. */
function encode(e: Entry): Buffer {
  const head = Buffer.from(JSON.stringify({ v: 1, status: e.status, headers: e.headers, sse: e.sse, events: e.events, storedAt: e.storedAt }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  return Buffer.concat([len, head, e.body]);
}

function decode(b: Buffer): Entry | null {
  try {
    const n = b.readUInt32BE(0);
    const head = JSON.parse(b.toString('utf8', 4, 4 + n)) as Omit<Entry, 'body'> & { v: number };
    if (head.v !== 1) return null;
    return { ...head, body: b.subarray(4 + n) };
  } catch {
    return null;
  }
}

/**
 * Records the answer as it streams to the first client (never holding it up): the head as the client got it,
 * the bytes up to `maxEntrySize` (past that the recording is dropped), and for SSE the time each chunk arrived.
 */
class CacheRecorder implements ResponseTap {
  private recording = false;
  private sse = false;
  private headers: string[] = [];
  private chunks: Buffer[] = [];
  /** SSE: [end offset of the chunk, ms since the first byte]. */
  private times: Array<[number, number]> = [];
  private size = 0;
  private t0 = 0;

  constructor(private readonly ctx: RequestContext, private readonly next: ResponseTap | null, private readonly store: Store, private readonly key: string,
    private readonly s: Settings, private readonly warn: (m: string, e?: unknown) => void, private readonly stored: { inc(): void }) {}

  onHeaders(status: number, contentType: string | undefined, headers: readonly string[]): void {
    this.next?.onHeaders?.(status, contentType, headers);
    const ct = contentType?.toLowerCase() ?? '';
    this.sse = ct.startsWith('text/event-stream');
    if (status !== 200 || !(this.sse || ct.includes('json'))) return;
    const kept: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i].toLowerCase();
      if (n === 'set-cookie') return;
      if (n === 'cache-control' && /(^|,)\s*(no-store|private)\b/i.test(headers[i + 1])) return;
      if (PER_EXCHANGE.has(n) || n.startsWith('access-control-')) continue;
      kept.push(headers[i], headers[i + 1]);
    }
    this.headers = kept;
    this.recording = true;
    this.t0 = performance.now();
  }

  onData(chunk: Buffer): void {
    this.next?.onData?.(chunk);
    if (!this.recording) return;
    this.size += chunk.length;
    if (this.size > this.s.max) { this.recording = false; this.chunks = []; this.times = []; return; }
    this.chunks.push(chunk);
    if (this.sse) this.times.push([this.size, Math.round(performance.now() - this.t0)]);
  }

  onEnd(ok: boolean, status: number): void {
    this.next?.onEnd(ok, status);
    if (!ok || !this.recording || this.ctx.clientGone) return;
    const body = Buffer.concat(this.chunks, this.size);
    const entry = encode({ status: 200, headers: this.headers, sse: this.sse, events: this.sse ? events(body, this.times) : [], storedAt: Date.now(), body });
    this.chunks = [];
    try {
      const r = this.store.cachePut(this.key, entry, this.s.ttl);
      if (r instanceof Promise) r.then(() => this.stored.inc(), (e) => this.warn('response cache: store failed', e));
      else this.stored.inc();
    } catch (e) {
      this.warn('response cache: store failed', e);
    }
  }
}

/** The end offset of every SSE event (after its blank line) and when the chunk completing it arrived. */
function events(body: Buffer, times: ReadonlyArray<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  let c = 0;
  for (;;) {
    const lf = body.indexOf('\n\n', at);
    const crlf = body.indexOf('\r\n\r\n', at);
    let end = -1;
    if (lf >= 0 && (crlf < 0 || lf < crlf)) end = lf + 2;
    else if (crlf >= 0) end = crlf + 4;
    if (end < 0) break;
    while (c < times.length - 1 && times[c][0] < end) c++;
    out.push([end, times[c]?.[1] ?? 0]);
    at = end;
  }
  if (at < body.length) out.push([body.length, times[times.length - 1]?.[1] ?? 0]);
  return out;
}

/** Answers from the cache: the stored head plus this exchange's own fields, then the body or the events one by one. */
function replay(ctx: RequestContext, e: Entry, age: number, timed: boolean): void {
  const res = ctx.res;
  const headers = e.headers.slice();
  headers.push('x-request-id', ctx.requestId, 'age', String(age));
  const extra = ctx.responseHeaders;
  if (extra !== null) for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  headers.push('cache-status', ctx.cacheStatus!);
  ctx.status = e.status;
  ctx.bytesOut = e.body.length;
  if (!e.sse) {
    headers.push('content-length', String(e.body.length));
    res.writeHead(e.status, headers);
    res.end(ctx.req.method === 'HEAD' ? undefined : e.body);
    return;
  }
  ctx.streaming = true;
  res.writeHead(e.status, headers);
  res.flushHeaders();
  let i = 0;
  let from = 0;
  const start = performance.now();
  const step = (): void => {
    while (i < e.events.length) {
      if (res.destroyed) return;
      const [end, t] = e.events[i];
      if (timed) {
        const wait = t - (performance.now() - start);
        if (wait > 1) { setTimeout(step, wait); return; }
      }
      const ok = res.write(e.body.subarray(from, end));
      from = end;
      i++;
      // One event per write, each in its own turn of the loop, so a client reads them as separate events.
      if (!ok) { res.once('drain', step); return; }
      if (!timed) { setImmediate(step); return; }
    }
    res.end();
  };
  step();
}

class CacheMetrics {
  readonly results: Counter<string>;
  constructor(m: Metrics) {
    this.results = new Counter({ name: 'gatehouse_cache_requests_total', help: 'Response-cache outcomes by route: hit, miss (forwarded), bypass (no-store or a body too large to key), stored.', labelNames: ['route', 'result'], registers: [m.registry] });
  }
}
const metricsCache = new WeakMap<Metrics, CacheMetrics>();
function cacheMetrics(m: Metrics): CacheMetrics {
  let x = metricsCache.get(m);
  if (x === undefined) { x = new CacheMetrics(m); metricsCache.set(m, x); }
  return x;
}
