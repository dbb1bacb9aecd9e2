// A stand-in OpenTelemetry collector: a real HTTP server on an ephemeral port that accepts OTLP/HTTP JSON trace
// exports (POST /v1/traces), decodes them, and keeps every span with its attributes flattened.
import http from 'node:http';
import type { Socket } from 'node:net';

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: number;
  service: string;
}

export interface OtlpCollector {
  url: string;
  spans: CollectedSpan[];
  /** Headers of every export request (to check the configured ones arrive). */
  requests: http.IncomingHttpHeaders[];
  /** Raw export bodies, for "this text never appears" assertions. */
  raw: string[];
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

/** OTLP JSON ids are hex; protobuf-JSON mappings use base64: accept both. */
function hexId(v: string | undefined): string {
  if (v === undefined || v === '') return '';
  return /^[0-9a-f]+$/i.test(v) && (v.length === 32 || v.length === 16) ? v.toLowerCase() : Buffer.from(v, 'base64').toString('hex');
}

function value(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? '';
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const o: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) o[kv.key] = value(kv.value);
  return o;
}

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const sockets = new Set<Socket>();
  const c: OtlpCollector = {
    url: '', spans: [], requests: [], raw: [],
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      c.requests.push(req.headers);
      c.raw.push(text);
      if (req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') { res.writeHead(415).end(); return; }
      const body = JSON.parse(text) as { resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> };
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) {
          c.spans.push({
            traceId: hexId(s.traceId as string), spanId: hexId(s.spanId as string), parentSpanId: hexId(s.parentSpanId as string | undefined),
            name: s.name as string, kind: s.kind as number, attributes: attrs(s.attributes as KeyValue[]),
            status: (s.status as { code?: number } | undefined)?.code ?? 0, service,
          });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`;
  return c;
}
