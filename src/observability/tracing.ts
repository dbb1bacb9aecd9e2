import type { IncomingMessage } from 'node:http';
import type { Span, SpanContext, Tracer, Context } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { AttemptSpan, RequestContext, RequestTrace } from '../pipeline/context.ts';
import { parseTraceparent, randomHex } from './trace.ts';

/** `observability.tracing` as the schema parses it (src/config/schema.ts). */
export interface TracingConfig {
  endpoint: string;
  sampleRatio: number;
  headers: Record<string, string>;
  serviceName: string;
  maxQueueSize: number;
}

/** Process-level tracing: starts a request's server span; null on the Runtime when tracing is off. */
export interface RequestTracing {
  /** Starts the server span and sets ctx.trace and ctx.traceparent (the span's own context). */
  start(ctx: RequestContext): void;
  /** Ends the server span (once, from finishExchange). */
  end(ctx: RequestContext, status: number): void;
  /** Exports what is queued and stops. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Counts spans lost: queue_full (the collector is slower than traffic) or export_failed. */
  dropped(n: number, reason: 'queue_full' | 'export_failed'): void;
  /** Batch delay; tests shorten it. */
  scheduledDelayMillis?: number;
  /** Per export request; the exporter retries within it. */
  exportTimeoutMillis?: number;
}

type Api = typeof import('@opentelemetry/api');

/**
 * Loads the OpenTelemetry SDK and the OTLP/HTTP (JSON) exporter. Imported only here, and only when
 * `observability.tracing` is configured, so a gateway without tracing neither loads nor pays for them.
 */
export async function createTracing(cfg: TracingConfig, opts: TracingOptions): Promise<RequestTracing> {
  const [api, sdk, otlp, res] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const exporter = new otlp.OTLPTraceExporter({ url: cfg.endpoint, headers: { ...cfg.headers }, timeoutMillis: opts.exportTimeoutMillis ?? 10_000 });
  const bounded = new BoundedProcessor(cfg.maxQueueSize, opts.dropped);
  bounded.inner = new sdk.BatchSpanProcessor({
    exporter: new CountingExporter(exporter, bounded, opts.dropped),
    maxQueueSize: cfg.maxQueueSize,
    maxExportBatchSize: Math.min(512, cfg.maxQueueSize),
    scheduledDelayMillis: opts.scheduledDelayMillis ?? 5000,
    exportTimeoutMillis: opts.exportTimeoutMillis ?? 10_000,
  });
  const provider = new sdk.TracerProvider({
    resource: res.resourceFromAttributes({ 'service.name': cfg.serviceName }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(cfg.sampleRatio) }),
    spanProcessors: [bounded],
  });
  return new Tracing(api, provider.getTracer('gatehouse'), provider);
}

/**
 * Bounds what waits for export: the batch processor would drop silently past its queue, so spans are counted
 * in here (handed over, not yet exported) and refused, counted, at the same bound. Memory stays flat while the
 * collector is down.
 */
class BoundedProcessor implements SpanProcessor {
  inner!: SpanProcessor;
  pending = 0;
  constructor(private readonly max: number, private readonly dropped: TracingOptions['dropped']) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if (this.pending >= this.max) { this.dropped(1, 'queue_full'); return; }
    this.pending++;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> { return this.inner.forceFlush(); }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
}

class CountingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly queue: BoundedProcessor, private readonly dropped: TracingOptions['dropped']) {}
  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans, (r) => {
      this.queue.pending -= spans.length;
      if (r.code !== 0) this.dropped(spans.length, 'export_failed');
      done(r);
    });
  }
  shutdown(): Promise<void> { return this.inner.shutdown(); }
  forceFlush(): Promise<void> { return this.inner.forceFlush?.() ?? Promise.resolve(); }
}

const SERVER = 1; // SpanKind.SERVER
const CLIENT = 2; // SpanKind.CLIENT
const ERROR = 2; // SpanStatusCode.ERROR

class Tracing implements RequestTracing {
  constructor(private readonly api: Api, private readonly tracer: Tracer, private readonly provider: { shutdown(): Promise<void> }) {}

  start(ctx: RequestContext): void {
    const req = ctx.req;
    const inbound = parseTraceparent(req.headers.traceparent as string | undefined);
    const api = this.api;
    const parent = inbound === null ? api.ROOT_CONTEXT : api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: inbound.traceId, spanId: inbound.spanId, traceFlags: parseInt(inbound.flags, 16) & 1, isRemote: true });
    const span = this.tracer.startSpan(req.method ?? 'GET', { kind: SERVER }, parent);
    const sc = span.spanContext();
    ctx.traceparent = format(sc);
    // A request sampled out still needs a fresh span id per attempt (its traceparent), but none of its children
    // would be recorded (parent-based): it gets ids only, no SDK span, no context object.
    ctx.trace = span.isRecording() ? new SpanTrace(this, span, api.trace.setSpan(api.ROOT_CONTEXT, span)) : new UnsampledTrace(span, sc.traceId);
  }

  end(ctx: RequestContext, status: number): void {
    const t = ctx.trace as SpanTrace | UnsampledTrace | null;
    if (t === null || ctx.status === -1) return; // built-in endpoints (/healthz) are not traffic: never exported
    const span = t.span;
    if (span.isRecording()) {
      const req = ctx.req;
      // Only facts the gateway owns: the method (bounded), the protocol, the Host, the normalized path without its
      // query string; no header value, credential or body is ever an attribute.
      span.setAttribute('http.request.method', methodOf(req));
      span.setAttribute('network.protocol.version', req.httpVersion);
      span.setAttribute('server.address', hostOf(req));
      const route = ctx.route;
      span.setAttribute('url.path', ctx.path);
      span.setAttribute('http.response.status_code', status);
      if (route !== null) { span.setAttribute('http.route', route.name); span.updateName(`${methodOf(ctx.req)} ${route.name}`); }
      const ai = ctx.ai;
      const usage = ctx.usage;
      // Model routing knows the model asked for; otherwise metering knows only the one the response named.
      if (ai !== null) span.setAttribute('gen_ai.request.model', ai.requested);
      const answered = ai !== null && ai.upstream !== '' ? ai.model : usage?.model;
      if (answered !== undefined && answered !== '') span.setAttribute('gen_ai.response.model', answered);
      if (usage !== null) { span.setAttribute('gen_ai.usage.input_tokens', usage.input); span.setAttribute('gen_ai.usage.output_tokens', usage.output); }
      if (ctx.errorCode !== undefined || status >= 500) {
        span.setAttribute('error.type', ctx.errorCode ?? String(status));
        if (status >= 500 || status === 499) span.setStatus({ code: ERROR });
      }
    }
    span.end();
  }

  child(t: SpanTrace, name: string, kind: number, attributes?: Record<string, string | number>): Span {
    return this.tracer.startSpan(name, { kind, attributes }, t.context);
  }

  shutdown(): Promise<void> { return this.provider.shutdown(); }
}

/** A request sampled out: valid, unsampled traceparents for its attempts, nothing recorded. */
class UnsampledTrace implements RequestTrace {
  constructor(readonly span: Span, private readonly traceId: string) {}
  phase(): (err?: unknown) => void { return noop; }
  attempt(): AttemptSpan { return { traceparent: `00-${this.traceId}-${randomHex(8)}-00`, end: noop }; }
}
const noop = () => {};

/** One request's spans (ctx.trace): children of the server span. */
class SpanTrace implements RequestTrace {
  constructor(private readonly tracing: Tracing, readonly span: Span, readonly context: Context) {}

  phase(name: string): (err?: unknown) => void {
    const s = this.tracing.child(this, name, 0);
    return (err) => { if (err !== undefined) { s.setAttribute('error.type', errorType(err)); s.setStatus({ code: ERROR }); } s.end(); };
  }

  attempt(method: string, upstream: string, host: string, resend: number): AttemptSpan {
    const colon = host.lastIndexOf(':');
    const port = colon > 0 && !host.endsWith(']') ? host.slice(colon + 1) : '';
    const attrs: Record<string, string | number> = { 'http.request.method': method, 'server.address': port === '' ? host : host.slice(0, colon), 'gatehouse.upstream': upstream };
    if (port !== '') attrs['server.port'] = Number(port);
    if (resend > 0) attrs['http.request.resend_count'] = resend;
    const s = this.tracing.child(this, method, CLIENT, attrs);
    return new Attempt(s, format(s.spanContext()));
  }
}

class Attempt implements AttemptSpan {
  constructor(private readonly span: Span, readonly traceparent: string) {}
  end(status: number, err: unknown): void {
    const s = this.span;
    if (status > 0) s.setAttribute('http.response.status_code', status);
    if (err !== null && err !== undefined) { s.setAttribute('error.type', errorType(err)); s.setStatus({ code: ERROR }); }
    else if (status >= 500) { s.setAttribute('error.type', String(status)); s.setStatus({ code: ERROR }); }
    s.end();
  }
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);
function methodOf(req: IncomingMessage): string {
  const m = req.method ?? 'GET';
  return METHODS.has(m) ? m : '_OTHER';
}

/** The Host without userinfo or port: the name the client addressed, never a credential. */
function hostOf(req: IncomingMessage): string {
  const h = req.headers.host ?? '';
  const at = h.lastIndexOf('@');
  const s = at >= 0 ? h.slice(at + 1) : h;
  const colon = s.startsWith('[') ? s.indexOf(']') + 1 : s.indexOf(':');
  return colon > 0 ? s.slice(0, colon) : s;
}

/** A bounded class of error: the gateway's error code, a system error code, or the error's class name (never its message). */
function errorType(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e?.code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(e.code)) return e.code;
  return typeof e?.name === 'string' ? e.name : '_OTHER';
}

function format(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}
