import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { describeRoutes } from '../routing/describe.ts';
import { maskSecrets } from './mask.ts';
import { registerUpstreamAdmin } from './upstreams.ts';
import { registerUsageAdmin } from './usage.ts';
import { registerConsumerAdmin } from './consumers.ts';
import { adminProblem, AdminInputError, sendJson, type AdminHandler, type AdminHost } from './http.ts';

export type { AdminHost };

/**
 * The admin listener (loopback by default; a token is required anywhere else): /metrics, /healthz, /readyz and
 * /admin/*. With `admin.token` set, everything except the health probes needs `Authorization: Bearer <token>`;
 * the token is read from the serving generation, so a reload can rotate it.
 */
export function createAdminServer(host: AdminHost): Server {
  const routes = new Map<string, AdminHandler>();
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

  return createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const builtin = host.builtins.get(url.pathname);
    if (builtin) return builtin(req, res);
    if (!authorized(req)) return adminProblem(req, res, 'unauthorized', 'The admin API needs "Authorization: Bearer <admin token>".', { headers: { 'www-authenticate': 'Bearer realm="gatehouse-admin"' } });
    try {
      if (url.pathname === '/metrics' && host.settings.observability.metrics.enabled) {
        const body = await host.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': host.metrics.registry.contentType });
        return res.end(body);
      }
      const exact = routes.get(`${req.method} ${url.pathname}`);
      if (exact) return await exact(req, res, url);
      for (const [key, h] of routes) {
        const [method, pattern] = key.split(' ');
        if (method === req.method && pattern.includes(':') && new RegExp(`^${pattern.replace(/:[a-z]+/gi, '[^/]+')}$`).test(url.pathname)) return await h(req, res, url);
      }
      adminProblem(req, res, 'not_found', `No admin endpoint ${req.method} ${url.pathname}.`);
    } catch (e) {
      if (res.headersSent) { res.destroy(); return; }
      if (e instanceof AdminInputError) adminProblem(req, res, 'bad_request', e.message);
      else adminProblem(req, res, 'internal_error', 'The admin request failed.');
    }
  });
}
