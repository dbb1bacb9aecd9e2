import { GatewayError } from '../errors.ts';
import type { Issue } from '../config/errors.ts';
import { suggest } from '../config/suggest.ts';
import type { Identity, RequestContext, Step } from '../pipeline/context.ts';
import { resourceKey, type CompileEnv, type PlanView, type Policy } from '../pipeline/policy.ts';
import { authModeSchema, authorizeSchema, type AuthMode, type AuthorizeRule, type JwtProviderConfig } from '../auth/schema.ts';
import { checkAuthSections, type AuthSections } from '../auth/check-auth.ts';
import { JwtVerifier, type VerifiedToken } from '../auth/jwt-verifier.ts';
import { JwksCache } from '../auth/jwks.ts';
import { ApiKeyStore, keyDigest } from '../auth/api-keys.ts';
import { identityHeaderNames } from '../auth/identity-headers.ts';
import { compileAuthorize } from '../auth/authorize.ts';
import { bearerToken, looksLikeJwt, takeQueryToken } from '../auth/credentials.ts';
import { forbidden, invalidToken, missingCredentials } from '../auth/challenge.ts';
import { AuthFailureLimiter, DEFAULT_FAILURE_LIMIT } from './auth-failures.ts';
import { compileHeaderFilter, foldHeaderName } from '../proxy/strip-headers.ts';

/** `auth: public | jwt | apikey | any` and `authorize:` on a route (the `auth:` and `consumers:` sections are src/auth/schema.ts). */
export const authRouteKeys = {
  auth: authModeSchema.optional().describe('Who may call the route: public, jwt, apikey, any or forward; default `defaults.auth`.'),
  authorize: authorizeSchema.optional().describe('403 unless the identity\'s consumer, plan or claims match (docs/authentication.md).'),
};

interface Needs extends AuthSections {
  server: { environment: string; stripHeaders: readonly string[] };
  /** Whether consumers can be created at run time (the admin API, or another replica sharing Redis). */
  state: { store: string };
  admin: { enabled: boolean };
  plans: Readonly<Record<string, unknown>>;
  defaults: { plan?: string };
  routes: ReadonlyArray<{ auth?: AuthMode; authorize?: AuthorizeRule }>;
}
/** A normalized route: `auth` is resolved (route, else `defaults.auth`). */
type Route = { auth: AuthMode; authorize?: AuthorizeRule; websocket: boolean };

/** Built once per generation and shared by every route (env.shared 'auth'). */
interface AuthShared {
  verifier: JwtVerifier | null;
  keys: ApiKeyStore | null;
  /** How runtime consumers' plans read in this generation. */
  plans: PlanView;
  apiKeyHeader: string;
  hideKey: boolean;
  /** Query parameters a WebSocket handshake may carry a token in (providers' `queryParam`). */
  queryParams: string[];
  /** `auth.apiKeys.query`: the parameter an API key may be sent in. */
  keyQuery: string | undefined;
  /** `auth.apiKeys.stripQuery`: credential-looking parameters removed on every authenticated route. */
  stripQuery: readonly string[];
  /** `auth.failureLimit` (default on in production); null when off. */
  failures: AuthFailureLimiter | null;
}

function shared(config: Needs, env: CompileEnv): AuthShared {
  let sh = env.shared.get('auth') as AuthShared | undefined;
  if (sh !== undefined) return sh;
  // Every route, public ones included, must drop inbound copies of what the gateway may set.
  for (const h of identityHeaderNames(config.auth)) env.identityHeaders.add(h);
  sh = {
    verifier: null,
    keys: null,
    plans: { known: new Set(Object.keys(config.plans)), defaultPlan: config.defaults.plan },
    apiKeyHeader: config.auth.apiKeys.header.toLowerCase(),
    hideKey: config.auth.apiKeys.hideCredentials,
    queryParams: config.auth.jwt.flatMap((p) => (p.queryParam !== undefined ? [p.queryParam] : [])),
    keyQuery: config.auth.apiKeys.query,
    stripQuery: config.auth.apiKeys.stripQuery,
    failures: null,
  };
  const fl = config.auth.failureLimit ?? (config.server.environment === 'production' ? DEFAULT_FAILURE_LIMIT : false);
  if (fl !== false) sh.failures = new AuthFailureLimiter(env.store, fl, env.storeWarn);
  env.shared.set('auth', sh);
  return sh;
}

function verifier(sh: AuthShared, config: Needs, env: CompileEnv): JwtVerifier {
  if (sh.verifier === null) {
    // A provider's JWKS cache outlives a reload that leaves the provider as it was: its keys stay warm.
    const jwks = (p: JwtProviderConfig) => env.resources.get(resourceKey('jwks', p.name, [p.jwksUri, p.jwksCache]),
      () => new JwksCache({ name: p.name, uri: p.jwksUri!, logger: env.logger, ...p.jwksCache }), (j) => j.close());
    sh.verifier = new JwtVerifier({ auth: config.auth, plans: Object.keys(config.plans), defaultPlan: config.defaults.plan, jwks });
  }
  return sh.verifier;
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
export const authPolicy: Policy<Needs, Route> = {
  name: 'auth',
  check: checkAuth,
  compile({ route, config, env }) {
    const sh = shared(config, env);
    const mode = route.auth;
    if (mode === 'public' || mode === 'forward') return undefined; // forward: src/policies/forward-auth.ts
    const wantJwt = mode === 'jwt' || mode === 'any';
    const wantKey = mode === 'apikey' || mode === 'any';
    const jwt = wantJwt && config.auth.jwt.length > 0 ? verifier(sh, config, env) : null;
    const keys = wantKey ? (sh.keys ??= new ApiKeyStore(config.consumers, config.defaults.plan)) : null;
    const runtimeKeys = env.consumers;
    const plans = sh.plans;
    const authorize = compileAuthorize(route.authorize);
    const keyHeader = sh.apiKeyHeader;
    const hideKey = sh.hideKey;
    // Credentials in the query: JWTs (providers' queryParam) are accepted on WebSocket handshakes only (a browser
    // cannot set headers there), API keys under auth.apiKeys.query; those names and the usual credential names
    // (stripQuery) are removed from the query sent upstream, so no second credential rides beside the one checked.
    const jwtQuery = jwt !== null ? sh.queryParams : [];
    const keyQuery = keys !== null ? sh.keyQuery : undefined;
    const allNames = [...new Set([...jwtQuery, ...(keyQuery !== undefined ? [keyQuery] : []), ...sh.stripQuery])];
    const queryNames = allNames.length > 0 ? allNames : null;
    const acceptQuery = jwtQuery.length > 0 && route.websocket;
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
    const viaKey = (ctx: RequestContext, key: string, from: string | null): void => {
      // The file's consumers first, then the runtime's (admin API); both from memory, one digest for both.
      const digest = keyDigest(key);
      const c = keys!.lookupDigest(digest) ?? (runtimeKeys.size > 0 ? runtimeKeys.lookupDigest(digest, plans) : null);
      if (c === null) throw invalidToken('The API key is not recognized.');
      // The key is the gateway's credential; the upstream learns the consumer from X-Consumer-Id instead.
      if (hideKey && from !== null) delete ctx.req.headers[from];
      accept(ctx, c.identity, c.headers);
    };

    const step: Step = (ctx) => {
      let queryToken: string | null = null;
      let queryName: string | null = null;
      if (queryNames !== null && ctx.query !== null && mentions(ctx.query, queryNames)) {
        const q = takeQueryToken(ctx.query, queryNames);
        ctx.query = q.rest;
        if (q.repeated) throw new GatewayError('bad_request', 'A credential parameter is given more than once in the query.');
        queryToken = q.token;
        queryName = q.name;
      }
      const h = ctx.req.headers;
      const authz = h.authorization;
      const key = keys !== null ? h[keyHeader] : undefined;
      const headerKey = typeof key === 'string' && key !== '' ? key : null;
      if (authz !== undefined) {
        const token = bearerToken(authz);
        if (token === null) throw need;
        // Two credentials that name different callers: which one the upstream believes is not ours to guess.
        if ((queryToken !== null && queryToken !== token) || (headerKey !== null && headerKey !== token)) throw DISAGREE;
        if (headerKey !== null && hideKey) delete h[keyHeader];
        if (jwt !== null && (keys === null || looksLikeJwt(token))) return viaJwt(ctx, token);
        if (keys !== null) return viaKey(ctx, token, 'authorization');
        throw invalidToken('The token is malformed.');
      }
      if (headerKey !== null) {
        if (queryToken !== null && queryToken !== headerKey) throw DISAGREE;
        return viaKey(ctx, headerKey, keyHeader);
      }
      if (queryToken !== null) {
        if (acceptQuery && jwtQuery.includes(queryName!) && ctx.req.headers.upgrade !== undefined && (keys === null || looksLikeJwt(queryToken))) return viaJwt(ctx, queryToken);
        if (queryName === keyQuery) return viaKey(ctx, queryToken, null);
      }
      throw need;
    };
    return sh.failures !== null ? sh.failures.guard(step) : step;
  },
};

const DISAGREE = invalidToken('The request carries two different credentials (headers and query, or two headers).');

function mentions(query: string, names: readonly string[]): boolean {
  for (const n of names) if (query.indexOf(n) !== -1) return true;
  // A percent-encoded name ("access%5Ftoken") still has to be found and removed.
  return query.indexOf('%') !== -1;
}

/** The identity sections, then each route's auth mode and `authorize:` against them. */
function checkAuth(c: Needs, out: Issue[]): void {
  checkAuthSections(c, out);
  if (!c.auth.apiKeys.hideCredentials && compileHeaderFilter([], c.server.stripHeaders).has(foldHeaderName(c.auth.apiKeys.header))) {
    out.push({ path: ['auth', 'apiKeys', 'header'], message: `hideCredentials is false, but server.stripHeaders removes ${c.auth.apiKeys.header} before any upstream sees it; pick another header name or take it out of stripHeaders`, warning: true });
  }
  const plans = Object.keys(c.plans);
  const unknownPlan = (p: string) => {
    const s = suggest(p, plans);
    return `unknown plan "${p}"${s ? ` (did you mean "${s}"?)` : plans.length ? ` (known: ${plans.join(', ')})` : ''}`;
  };
  c.consumers.forEach((k, i) => { if (k.plan !== undefined && !Object.hasOwn(c.plans, k.plan)) out.push({ path: ['consumers', i, 'plan'], message: unknownPlan(k.plan) }); });
  if (c.defaults.plan !== undefined && !Object.hasOwn(c.plans, c.defaults.plan)) out.push({ path: ['defaults', 'plan'], message: unknownPlan(c.defaults.plan) });

  const ids = new Set(c.consumers.map((k) => k.id));
  const hasKeys = c.consumers.some((k) => k.keys.length > 0);
  // Keys the file does not list may still be created while the gateway runs: through this gateway's admin API,
  // or another replica's when they share Redis. Only when neither can happen is a keyless apikey route an error.
  const runtimeKeys = c.admin.enabled || c.state.store === 'redis';
  const noKeys = (what: string): string => runtimeKeys
    ? `${what}: no consumer in the file has keys, so this route refuses every API key until one is created at run time (POST /admin/consumers/<id>/keys)`
    : `${what} needs consumers with keys (none in the file, and none can be created at run time: the admin API is disabled and the memory store is this process's own)`;
  c.routes.forEach((r, i) => {
    const at = (...k: PropertyKey[]) => ['routes', i, ...k];
    const auth = r.auth;
    if (auth === 'jwt' && c.auth.jwt.length === 0) out.push({ path: at('auth'), message: 'auth: jwt needs a provider under auth.jwt' });
    if (auth === 'apikey' && !hasKeys) out.push({ path: at('auth'), message: noKeys('auth: apikey'), warning: runtimeKeys });
    if (auth === 'any' && c.auth.jwt.length === 0 && !hasKeys) out.push({ path: at('auth'), message: noKeys('auth: any (no provider under auth.jwt)'), warning: runtimeKeys });
    const z = r.authorize;
    if (z === undefined) return;
    if (auth === 'public' || auth === undefined) { out.push({ path: at('authorize'), message: 'authorize needs an identity: set auth to jwt, apikey or any' }); return; }
    if (!z.consumers && !z.plans && !z.claims) out.push({ path: at('authorize'), message: 'give consumers, plans or claims' });
    z.plans?.forEach((p, j) => { if (plans.length > 0 && !Object.hasOwn(c.plans, p)) out.push({ path: at('authorize', 'plans', j), message: unknownPlan(p) }); });
    if (auth === 'apikey') {
      z.consumers?.forEach((id, j) => {
        if (!ids.has(id)) {
          const s = suggest(id, [...ids]);
          out.push({ path: at('authorize', 'consumers', j), message: `unknown consumer "${id}"${s ? ` (did you mean "${s}"?)` : ''}` });
        }
      });
      if (z.claims) out.push({ path: at('authorize', 'claims'), message: 'API-key identities have no claims; claims apply to auth: jwt or any' });
    }
  });
}
