import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';
import { GatewayError } from '../errors.ts';
import type { Issue } from '../config/errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import { resourceKey, type Policy } from '../pipeline/policy.ts';
import { ForwardAuthClient, type Decision } from '../rules/forward-auth-client.ts';
import { HEADER_NAME } from './header-syntax.ts';

/**
 * `auth: forward` with `forwardAuth: { url, ... }` on a route: an authentication service decides (Envoy ext_authz,
 * Traefik forwardAuth, APISIX forward-auth). The gateway sends it the request's credential headers and a few facts
 * (X-Forwarded-Method/-Uri/-Host/-Proto/-For); a 2xx lets the request through with the listed response headers copied
 * upstream (and stripped from every inbound request, like identity headers), 401/3xx is 401 and any other 4xx is 403,
 * and no answer, a connection error or a 5xx is 503 with Retry-After: fail closed, never open.
 * Decisions are cached per credential (2xx only) and asked once for concurrent requests (src/rules/forward-auth-client.ts).
 */
const forwardAuthSchema = obj({
  url: z.string().url().describe('The auth service endpoint: a 2xx lets the request through, 401 or a redirect is 401, another 4xx is 403, no answer or a 5xx is 503.'),
  method: z.enum(['GET', 'POST']).prefault('GET').describe('Method of the call to the auth service.'),
  requestHeaders: z.array(z.string()).min(1).prefault(['authorization', 'cookie']).describe('Request headers sent to the auth service; their values are the credential (and its cache key).'),
  responseHeaders: z.array(z.string()).prefault([]).describe('Headers of a 2xx answer copied onto the upstream request (inbound copies removed).'),
  identityHeader: z.string().optional().describe('A header of the 2xx answer naming who the caller is: the identity rate limits (by: consumer) and bind use.'),
  timeout: duration.prefault('2s').describe('An auth call without an answer within this is 503 (fail closed).'),
  cacheTtl: duration.prefault('30s').describe('How long a 2xx decision is cached per credential (0: ask every time).'),
  cacheSize: positiveInt.prefault(10000).describe('Cached decisions at most.'),
  retryAfter: duration.prefault('5s').describe('Retry-After on a 503 while the service does not answer.'),
}).describe('With `auth: forward`: the external auth service that decides each request.');
export type ForwardAuthConfig = z.output<typeof forwardAuthSchema>;
export const forwardAuthRouteKeys = { forwardAuth: forwardAuthSchema.optional() };

interface Needs {
  server: { environment: string };
  routes: ReadonlyArray<{ auth: string; forwardAuth?: ForwardAuthConfig; authorize?: unknown; websocket: boolean }>;
}
type Route = { auth: string; forwardAuth?: ForwardAuthConfig; websocket: boolean };

export const forwardAuthPolicy: Policy<Needs, Route> = {
  name: 'forward-auth',
  check: checkForwardAuth,
  compile({ route, env }) {
    const f = route.forwardAuth;
    if (route.auth !== 'forward' || f === undefined) return undefined;
    const client = env.resources.get(resourceKey('forward-auth', new URL(f.url).host, f), () => new ForwardAuthClient({ ...f, requestHeaders: f.requestHeaders.map((h) => h.toLowerCase()) }, env.logger), (c) => c.close());
    // What the service vouches for must not be spoofable: inbound copies are stripped on every route.
    for (const h of f.responseHeaders) env.identityHeaders.add(h.toLowerCase());
    const retryAfter = { 'retry-after': String(Math.max(1, Math.ceil(f.retryAfter / 1000))) };

    const apply = (ctx: RequestContext, d: Decision): void => {
      if (d.kind === 'allow') {
        for (let i = 0; i < d.headers.length; i += 2) ctx.addUpstreamHeader(d.headers[i], d.headers[i + 1]);
        if (d.identity !== undefined) ctx.identity = { kind: 'forward', id: d.identity };
        return;
      }
      if (d.kind === 'unavailable') throw new GatewayError('auth_service_unavailable', 'The authentication service did not answer; please retry shortly.', { headers: retryAfter });
      if (d.status === 401) throw new GatewayError('unauthorized', 'The authentication service did not accept the credentials.', d.wwwAuthenticate !== undefined ? { headers: { 'www-authenticate': d.wwwAuthenticate } } : undefined);
      throw new GatewayError('forbidden', 'The authentication service refused this request.');
    };
    const step: Step = (ctx) => {
      const h = ctx.req.headers;
      const d = client.decide(client.key(h), h, {
        method: ctx.req.method ?? 'GET',
        uri: ctx.query === null ? ctx.path : `${ctx.path}?${ctx.query}`,
        host: h.host ?? '',
        proto: (ctx.req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http',
        clientIp: ctx.clientIp,
      });
      if (d instanceof Promise) return d.then((x) => apply(ctx, x));
      apply(ctx, d);
    };
    return step;
  },
};

function checkForwardAuth(c: Needs, out: Issue[]): void {
  c.routes.forEach((r, i) => {
    const at = (...k: PropertyKey[]) => ['routes', i, ...k];
    const f = r.forwardAuth;
    if (r.auth === 'forward' && f === undefined) { out.push({ path: at('auth'), message: 'auth: forward needs forwardAuth: { url } on this route' }); return; }
    if (f === undefined) return;
    if (r.auth !== 'forward') out.push({ path: at('forwardAuth'), message: 'forwardAuth is only used with auth: forward' });
    if (r.authorize !== undefined && r.auth === 'forward') out.push({ path: at('authorize'), message: 'with auth: forward the authentication service decides; authorize does not apply' });
    if (!/^https?:\/\//.test(f.url)) out.push({ path: at('forwardAuth', 'url'), message: 'the authentication service URL must be http:// or https://' });
    else if (f.url.startsWith('http://') && c.server.environment === 'production' && !/^http:\/\/(localhost|127\.|\[::1\]|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|[a-z0-9-]+(:\d+)?\/)/i.test(f.url)) {
      out.push({ path: at('forwardAuth', 'url'), message: 'credentials would cross the network in clear text; use https', warning: true });
    }
    for (const k of ['requestHeaders', 'responseHeaders'] as const) f[k].forEach((h, j) => { if (!HEADER_NAME.test(h)) out.push({ path: at('forwardAuth', k, j), message: `"${h}" is not a header name` }); });
    f.responseHeaders.forEach((h, j) => {
      if (['host', 'content-length', 'transfer-encoding', 'connection', 'authorization', 'x-request-id', 'traceparent'].includes(h.toLowerCase())) out.push({ path: at('forwardAuth', 'responseHeaders', j), message: `${h} cannot be copied from the authentication service` });
    });
    if (f.identityHeader !== undefined && !HEADER_NAME.test(f.identityHeader)) out.push({ path: at('forwardAuth', 'identityHeader'), message: `"${f.identityHeader}" is not a header name` });
    if (f.timeout > 30_000) out.push({ path: at('forwardAuth', 'timeout'), message: 'every request on this route waits this long for an answer when the service hangs', warning: true });
  });
}
