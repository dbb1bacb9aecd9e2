import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Metrics } from '../observability/metrics.ts';
import type { RouteTable } from '../routing/table.ts';
import type { Config } from '../config/schema.ts';
import { maskSecrets } from './mask.ts';
import { describeRoutes } from '../routing/describe.ts';

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface AdminOptions {
  token: string;
  metrics: Metrics | null;
  table: RouteTable;
  config: Config;
  builtins: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  /** Extra admin routes other parts register ("GET /admin/upstreams", ...). */
  routes: Map<string, AdminHandler>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'cache-control': 'no-store' });
  res.end(s);
}

/**
 * The admin listener (loopback by default): /metrics, /healthz, /readyz and /admin/*.
 * With a token set, everything except the health probes needs `Authorization: Bearer <token>`.
 */
export function createAdminServer(o: AdminOptions): Server {
  const tokenHash = o.token ? createHash('sha256').update(o.token).digest() : null;
  const authorized = (req: IncomingMessage) => {
    if (tokenHash === null) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(createHash('sha256').update(m[1]).digest(), tokenHash);
  };
  o.routes.set('GET /admin/routes', (_req, res) => sendJson(res, 200, describeRoutes(o.table)));
  o.routes.set('GET /admin/config', (_req, res) => sendJson(res, 200, maskSecrets(o.config)));

  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const builtin = o.builtins.get(url.pathname);
    if (builtin) return builtin(req, res);
    if (!authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="gatehouse-admin"');
      return sendJson(res, 401, { type: 'urn:gatehouse:problem:unauthorized', title: 'Authentication required', status: 401, code: 'unauthorized' });
    }
    try {
      if (url.pathname === '/metrics' && o.metrics) {
        const body = await o.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': o.metrics.registry.contentType });
        return res.end(body);
      }
      const exact = o.routes.get(`${req.method} ${url.pathname}`);
      if (exact) return await exact(req, res, url);
      for (const [key, h] of o.routes) {
        const [method, pattern] = key.split(' ');
        if (method === req.method && pattern.includes(':') && new RegExp(`^${pattern.replace(/:[a-z]+/gi, '[^/]+')}$`).test(url.pathname)) return await h(req, res, url);
      }
      sendJson(res, 404, { type: 'urn:gatehouse:problem:not_found', title: 'Not found', status: 404, code: 'not_found' });
    } catch {
      if (!res.headersSent) sendJson(res, 500, { type: 'urn:gatehouse:problem:internal_error', title: 'Internal error', status: 500, code: 'internal_error' });
    }
  });
}
