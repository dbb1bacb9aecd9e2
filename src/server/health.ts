import type { IncomingMessage, ServerResponse } from 'node:http';

export interface HealthSource {
  startedAt: number;
  environment: string;
  isReady(): boolean;
  /** Per-upstream status from background checks (filled in by upstream health work); never a blocking fan-out. */
  services?(): Record<string, { status: 'healthy' | 'degraded' | 'unhealthy'; status_code?: number; response_time_ms?: number; critical?: boolean }>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'cache-control': 'no-store' });
  res.end(res.req?.method === 'HEAD' ? undefined : s);
}

/** `/healthz`: seed 004's cascade shape, answered from cached state. */
export function healthz(src: HealthSource) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    const t0 = performance.now();
    const services = src.services?.() ?? {};
    let status: 'healthy' | 'degraded' | 'unhealthy' = 'healthy';
    for (const s of Object.values(services)) {
      if (s.status === 'healthy') continue;
      if (s.critical !== false && s.status === 'unhealthy') status = 'unhealthy';
      else if (status === 'healthy') status = 'degraded';
    }
    if (!src.isReady() && status === 'healthy') status = 'degraded';
    json(res, status === 'unhealthy' ? 503 : 200, {
      status,
      timestamp: new Date().toISOString(),
      services,
      gateway: {
        uptime_seconds: Math.round((Date.now() - src.startedAt) / 1000),
        environment: src.environment,
        response_time_ms: Math.round((performance.now() - t0) * 1000) / 1000,
      },
    });
  };
}

/** `/readyz`: 200 once config is live, 503 while draining. */
export function readyz(src: HealthSource) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    const ready = src.isReady();
    json(res, ready ? 200 : 503, { ready });
  };
}

/**
 * `/livez`: 200 while the process can answer at all. It reflects the process only, never its upstreams or its
 * store, and stays 200 while draining: a liveness probe that failed on an upstream outage would restart every
 * pod at once and turn an outage into a bigger one.
 */
export function livez() {
  return (_req: IncomingMessage, res: ServerResponse) => json(res, 200, { live: true });
}
