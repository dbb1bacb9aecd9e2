import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { describeRoutes } from '../routing/describe.ts';
import { maskSecrets } from './mask.ts';
import { registerUpstreamAdmin } from './upstreams.ts';
import { registerUsageAdmin } from './usage.ts';
import { registerConsumerAdmin } from './consumers.ts';
import { adminProblem, AdminInputError, sendJson, type AdminHandler, type AdminHost } from './http.ts';
import { DashboardEvents } from './events.ts';
import { dashboardAsset, dashboardPage } from './dashboard.ts';
import { openApiHandler } from './openapi.ts';

export type { AdminHost };

export interface AdminRoutes {
  /** `METHOD /path` (`:name` for a path segment) → handler: every endpoint of the admin listener but the health probes. */
  routes: Map<string, AdminHandler>;
  /** Endpoints served without the admin token: the dashboard's page and assets, which hold no data. */
  open: ReadonlySet<string>;
  events: DashboardEvents;
}

/**
 * Every admin endpoint, registered here and in the modules beside this one. src/admin/openapi.ts describes each
 * of them (test/admin/openapi.test.ts checks both ways).
 */
export function adminRoutes(host: AdminHost): AdminRoutes {
  const routes = new Map<string, AdminHandler>();
  const events = new DashboardEvents(host);
  routes.set('GET /', dashboardPage(host));
  routes.set('GET /ui/:file', dashboardAsset);
  routes.set('GET /openapi.json', openApiHandler());
  routes.set('GET /metrics', async (req, res, url) => {
    if (!host.settings.observability.metrics.enabled) return adminProblem(req, res, 'not_found', `No admin endpoint ${req.method} ${url.pathname} (observability.metrics.enabled is false).`);
    const body = await host.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': host.metrics.registry.contentType });
    res.end(body);
  });
  routes.set('GET /admin/events', events.handler);
  routes.set('GET /admin/routes', (_req, res) => sendJson(res, 200, describeRoutes(host.current.table)));
  routes.set('GET /admin/config', (_req, res) => {
    const g = host.current;
    sendJson(res, 200, { generation: g.id, hash: g.hash, loadedAt: g.loadedAt.toISOString(), file: g.file ?? null, lastReload: host.lastReload, config: maskSecrets(g.config) });
  });
  routes.set('POST /admin/reload', async (req, res) => {
    const r = await host.reloadEverywhere();
    if (r.ok) sendJson(res, 200, r);
    else adminProblem(req, res, 'config_invalid', 'The config was refused; the running config keeps serving.', { extra: { problems: r.problems ?? [], generation: host.current.id, hash: host.current.hash } });
  });
  registerUpstreamAdmin(routes, host);
  registerUsageAdmin(routes, host);
  registerConsumerAdmin(routes, host);
  return { routes, open: new Set(['GET /', 'GET /ui/:file']), events };
}

/**
 * The admin listener (loopback by default; a token is required anywhere else): the dashboard at /, /metrics,
 * /healthz, /readyz, /livez, /openapi.json and /admin/*. With `admin.token` set, everything except the health
 * probes and the dashboard's static files needs `Authorization: Bearer <token>`; the token is read from the
 * serving generation, so a reload can rotate it. A request a browser sends from another origin (its `Origin`
 * names another host) is refused, so a web page cannot drive an admin listener that has no token.
 */
export function createAdminServer(host: AdminHost): Server {
  const { routes, open, events } = adminRoutes(host);
  let cachedToken = '';
  let cachedHash: Buffer | null = null;
  const tokenHash = (): Buffer | null => {
    const t = host.current.config.admin.token;
    if (t !== cachedToken) { cachedToken = t; cachedHash = t ? createHash('sha256').update(t).digest() : null; }
    return cachedHash;
  };
  const authorized = (req: IncomingMessage) => {
    const want = tokenHash();
    if (want === null) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(createHash('sha256').update(m[1]).digest(), want);
  };

  const find = (method: string, path: string): [string, AdminHandler] | undefined => {
    const key = `${method} ${path}`;
    const exact = routes.get(key);
    if (exact) return [key, exact];
    for (const [k, h] of routes) {
      const [m, pattern] = k.split(' ');
      if (m === method && pattern.includes(':') && new RegExp(`^${pattern.replace(/:[a-z]+/gi, '[^/]+')}$`).test(path)) return [k, h];
    }
    return undefined;
  };

  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    // The dashboard is the admin listener's `/`, ahead of the main listener's info page.
    const builtin = url.pathname !== '/' ? host.builtins.get(url.pathname) : undefined;
    if (builtin) return builtin(req, res);
    if (foreignOrigin(req)) return adminProblem(req, res, 'forbidden', 'The admin API does not answer requests from pages of another origin.');
    const method = req.method ?? 'GET';
    const found = find(method, url.pathname);
    if (!(found !== undefined && open.has(found[0])) && !authorized(req)) return adminProblem(req, res, 'unauthorized', 'The admin API needs "Authorization: Bearer <admin token>".', { headers: { 'www-authenticate': 'Bearer realm="gatehouse-admin"' } });
    try {
      if (found === undefined) return adminProblem(req, res, 'not_found', `No admin endpoint ${method} ${url.pathname}.`);
      await found[1](req, res, url);
      if (method !== 'GET' && res.statusCode < 400) events.changed();
    } catch (e) {
      if (res.headersSent) { res.destroy(); return; }
      if (e instanceof AdminInputError) adminProblem(req, res, 'bad_request', e.message);
      else adminProblem(req, res, 'internal_error', 'The admin request failed.');
    }
  });
}

/**
 * A browser request from a page of another origin (`Origin: null` included); tools like curl send no Origin.
 * Behind a proxy that rewrites Host, the browser's host is in X-Forwarded-Host (which a page of another origin
 * cannot set without a CORS preflight, which this listener never grants).
 */
function foreignOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  let host: string;
  try { host = new URL(origin).host; } catch { return true; }
  return host !== req.headers.host && host !== req.headers['x-forwarded-host'];
}
