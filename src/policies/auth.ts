import type { Policy, Step } from './types.ts';
import type { GatewayServices } from '../services.ts';
import type { Identity, RequestContext } from '../server/context.ts';
import { GatewayError } from '../errors.ts';
import { JwtVerifier, type VerifiedToken } from '../auth/jwt-verifier.ts';
import { ApiKeyStore } from '../auth/api-keys.ts';
import { identityHeaderNames } from '../auth/identity-headers.ts';
import { compileAuthorize } from '../auth/authorize.ts';
import { bearerToken, looksLikeJwt, takeQueryToken } from '../auth/credentials.ts';
import { forbidden, invalidToken, missingCredentials } from '../auth/challenge.ts';

/** Built once per config load and shared by every route (services.shared 'auth'). */
interface AuthRuntime {
  services: GatewayServices;
  verifier: JwtVerifier | null;
  keys: ApiKeyStore | null;
  apiKeyHeader: string;
  hideKey: boolean;
  /** Query parameters a WebSocket handshake may carry a token in (providers' `queryParam`). */
  queryParams: string[];
}

function runtime(s: GatewayServices): AuthRuntime {
  let rt = s.shared.get('auth') as AuthRuntime | undefined;
  if (rt !== undefined) return rt;
  const c = s.config;
  // Every route, public ones included, must drop inbound copies of what the gateway may set.
  for (const h of identityHeaderNames(c)) s.identityHeaders.add(h);
  rt = {
    services: s,
    verifier: null,
    keys: null,
    apiKeyHeader: c.auth.apiKeys.header.toLowerCase(),
    hideKey: c.auth.apiKeys.hideCredentials,
    queryParams: c.auth.jwt.flatMap((p) => (p.queryParam !== undefined ? [p.queryParam] : [])),
  };
  s.shared.set('auth', rt);
  return rt;
}

function verifier(rt: AuthRuntime): JwtVerifier {
  if (rt.verifier === null) {
    const v = new JwtVerifier(rt.services.config, rt.services.logger);
    rt.services.closers.push(() => v.close());
    rt.verifier = v;
  }
  return rt.verifier;
}

function keyStore(rt: AuthRuntime): ApiKeyStore {
  return (rt.keys ??= new ApiKeyStore(rt.services.config.consumers, rt.services.config.defaults.plan));
}

const NEED = {
  jwt: 'This route needs a bearer token: send "Authorization: Bearer <token>".',
  apikey: 'This route needs an API key: send it in the {header} header or as "Authorization: Bearer <key>".',
  any: 'This route needs a bearer token or an API key ("Authorization: Bearer <token>", or the {header} header).',
} as const;

/**
 * Who is calling: `auth: public | jwt | apikey | any` per route (or `defaults.auth`), then the route's
 * `authorize:` rule (403). Sets ctx.identity and the identity headers for the upstream. A cached token or an
 * API key answers synchronously; only a token seen for the first time waits for verification.
 */
export const authPolicy: Policy = {
  name: 'auth',
  compile({ route, config, services }) {
    const rt = runtime(services);
    const mode = route.auth ?? config.defaults.auth ?? 'public';
    if (mode === 'public') return undefined;
    const wantJwt = mode === 'jwt' || mode === 'any';
    const wantKey = mode === 'apikey' || mode === 'any';
    if (wantJwt && config.auth.jwt.length === 0 && mode === 'jwt') throw new Error('auth: jwt needs a provider under auth.jwt');
    const jwt = wantJwt && config.auth.jwt.length > 0 ? verifier(rt) : null;
    const keys = wantKey ? keyStore(rt) : null;
    const authorize = compileAuthorize(route.authorize);
    const keyHeader = rt.apiKeyHeader;
    const hideKey = rt.hideKey;
    // Query tokens: accepted on WebSocket handshakes only (a browser cannot set headers there), and
    // removed from the query sent upstream on every request of a route that takes JWTs.
    const queryNames = jwt !== null && rt.queryParams.length > 0 ? rt.queryParams : null;
    const acceptQuery = queryNames !== null && route.websocket;
    const need = missingCredentials(NEED[mode].replace('{header}', keyHeader));

    const accept = (ctx: RequestContext, identity: Identity, headers: readonly string[]): void => {
      ctx.identity = identity;
      if (authorize !== null && !authorize(identity)) throw forbidden();
      for (let i = 0; i < headers.length; i += 2) ctx.addUpstreamHeader(headers[i], headers[i + 1]);
    };
    const viaJwt = (ctx: RequestContext, token: string): void | Promise<void> => {
      const v = jwt!.verify(token);
      if (v instanceof Promise) return v.then((t: VerifiedToken) => accept(ctx, t.identity, t.headers));
      accept(ctx, v.identity, v.headers);
    };
    const viaKey = (ctx: RequestContext, key: string, from: string): void => {
      const c = keys!.lookup(key);
      if (c === null) throw invalidToken('The API key is not recognized.');
      // The key is the gateway's credential; the upstream learns the consumer from X-Consumer-Id instead.
      if (hideKey) delete ctx.req.headers[from];
      accept(ctx, c.identity, c.headers);
    };

    const step: Step = (ctx) => {
      let queryToken: string | null = null;
      if (queryNames !== null && ctx.query !== null && mentions(ctx.query, queryNames)) {
        const q = takeQueryToken(ctx.query, queryNames);
        ctx.query = q.rest;
        if (q.repeated) throw new GatewayError('bad_request', 'The access token parameter is given more than once.');
        if (acceptQuery && ctx.req.headers.upgrade !== undefined) queryToken = q.token;
      }
      const h = ctx.req.headers;
      const authz = h.authorization;
      if (authz !== undefined) {
        const token = bearerToken(authz);
        if (token === null) throw need;
        if (jwt !== null && (keys === null || looksLikeJwt(token))) return viaJwt(ctx, token);
        if (keys !== null) return viaKey(ctx, token, 'authorization');
        throw invalidToken('The token is malformed.');
      }
      if (keys !== null) {
        const key = h[keyHeader];
        if (typeof key === 'string' && key !== '') return viaKey(ctx, key, keyHeader);
      }
      if (queryToken !== null) return viaJwt(ctx, queryToken);
      throw need;
    };
    return step;
  },
};

function mentions(query: string, names: readonly string[]): boolean {
  for (const n of names) if (query.indexOf(n) !== -1) return true;
  // A percent-encoded name ("access%5Ftoken") still has to be found and removed.
  return query.indexOf('%') !== -1;
}
