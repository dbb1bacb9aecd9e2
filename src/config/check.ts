import { isIP } from 'node:net';
import type { Config } from './schema.ts';
import { suggest } from './suggest.ts';
import { checkAuth } from '../auth/check-auth.ts';
import { checkSecrets } from './secrets.ts';
import { checkEdge } from './check-edge.ts';

export interface RefIssue { path: PropertyKey[]; message: string; warning?: boolean }

/** Cross-references and rules a per-field schema cannot express. Returns every problem, not the first. */
export function checkReferences(c: Config): RefIssue[] {
  const out: RefIssue[] = [];
  const upstreams = Object.keys(c.upstreams);
  const unknown = (kind: string, name: string, known: string[]) => {
    const s = suggest(name, known);
    return `unknown ${kind} "${name}"${s ? ` (did you mean "${s}"?)` : known.length ? ` (known: ${known.join(', ')})` : ''}`;
  };

  c.server.trustedProxies.forEach((cidr, i) => {
    if (!isCidr(cidr)) out.push({ path: ['server', 'trustedProxies', i], message: `"${cidr}" is not an IP address or CIDR range` });
  });
  checkCors(c.server.cors, ['server', 'cors'], out);

  for (const [name, u] of Object.entries(c.upstreams)) {
    if (u.fallback !== undefined && !c.upstreams[u.fallback]) out.push({ path: ['upstreams', name, 'fallback'], message: unknown('upstream', u.fallback, upstreams) });
    if (u.fallback === name) out.push({ path: ['upstreams', name, 'fallback'], message: 'an upstream cannot fall back to itself' });
    if (u.targets.every((t) => t.weight === 0)) out.push({ path: ['upstreams', name, 'targets'], message: 'every target has weight 0: nothing can serve' });
    u.targets.forEach((t, i) => {
      if (!/^https?:\/\//.test(t.url)) out.push({ path: ['upstreams', name, 'targets', i, 'url'], message: 'target URLs must be http:// or https://' });
    });
    checkUpstreamResilience(c, name, out);
  }

  const jwtNames = c.auth.jwt.map((p) => p.name);
  c.auth.jwt.forEach((p, i) => {
    const sources = [p.secret, p.publicKey, p.jwksUri].filter((s) => s !== undefined).length;
    if (sources !== 1) out.push({ path: ['auth', 'jwt', i], message: 'give exactly one of secret, publicKey or jwksUri' });
    if (jwtNames.indexOf(p.name) !== i) out.push({ path: ['auth', 'jwt', i, 'name'], message: `duplicate provider name "${p.name}"` });
  });
  checkAuth(c, out);
  const plans = Object.keys(c.plans);
  c.consumers.forEach((k, i) => {
    if (k.plan !== undefined && !c.plans[k.plan]) out.push({ path: ['consumers', i, 'plan'], message: unknown('plan', k.plan, plans) });
  });

  const names = new Map<string, number>();
  c.routes.forEach((r, i) => {
    const at = (...p: PropertyKey[]) => ['routes', i, ...p];
    if (!c.upstreams[r.upstream]) out.push({ path: at('upstream'), message: unknown('upstream', r.upstream, upstreams) });
    if ((r.match.path === undefined) === (r.match.paths === undefined)) out.push({ path: at('match'), message: 'give exactly one of path or paths' });
    const auth = r.auth ?? c.defaults.auth;
    if (auth === undefined) out.push({ path: at('auth'), message: 'every route states its auth (public, jwt, apikey or any), or set defaults.auth' });
    if ((auth === 'jwt' || auth === 'any') && c.auth.jwt.length === 0 && auth === 'jwt') out.push({ path: at('auth'), message: 'auth: jwt needs a provider under auth.jwt' });
    if ((auth === 'apikey' || auth === 'any') && !c.consumers.some((k) => k.keys.length) && auth === 'apikey') out.push({ path: at('auth'), message: 'auth: apikey needs consumers with keys' });
    if (r.captcha !== undefined && !c.captcha[r.captcha]) out.push({ path: at('captcha'), message: unknown('captcha', r.captcha, Object.keys(c.captcha)) });
    if (r.rewrite?.path !== undefined && (r.rewrite.stripPrefix !== undefined || r.rewrite.addPrefix !== undefined)) out.push({ path: at('rewrite'), message: 'rewrite.path replaces the whole path; do not combine it with stripPrefix/addPrefix' });
    if (r.websocket && r.match.body !== undefined) out.push({ path: at('match', 'body'), message: 'a WebSocket handshake has no body to match; use match.headers or match.query' });
    if (r.cors) checkCors(r.cors, at('cors'), out);
    if (r.name !== undefined) {
      if (names.has(r.name)) out.push({ path: at('name'), message: `duplicate route name "${r.name}" (also routes[${names.get(r.name)}])` });
      else names.set(r.name, i);
    }
    if (r.quota !== undefined && auth === 'public') out.push({ path: at('quota'), message: 'quotas are per consumer and a public route has none: this quota does nothing', warning: true });
    (r.rateLimit ?? []).forEach((rule, j) => {
      if ((rule.by ?? 'consumer') === 'consumer' && auth === 'public') out.push({ path: at('rateLimit', j, 'by'), message: 'a public route has no consumer to key on; use by: ip' });
      if (rule.unit === 'requests' && rule.cost > rule.limit) out.push({ path: at('rateLimit', j, 'cost'), message: `cost ${rule.cost} is larger than the limit ${rule.limit}: no request could ever pass` });
    });
  });
  if (c.defaults.plan !== undefined && !c.plans[c.defaults.plan]) out.push({ path: ['defaults', 'plan'], message: unknown('plan', c.defaults.plan, plans) });
  checkEdge(c, out);
  out.push(...checkSecrets(c));
  return out;
}

function checkCors(cors: { origins: string[]; credentials: boolean } | false | undefined, path: PropertyKey[], out: RefIssue[]): void {
  if (!cors) return;
  if (cors.credentials && cors.origins.includes('*')) out.push({ path: [...path, 'origins'], message: '"*" together with credentials: true would let any site read credentialed responses; list the origins' });
  cors.origins.forEach((o, i) => {
    if (o !== '*' && !/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/.test(o)) out.push({ path: [...path, 'origins', i], message: `"${o}" is not an origin (scheme://host[:port], optionally https://*.example.com)` });
  });
}

export function isCidr(s: string): boolean {
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length) return false;
  const v = isIP(ip);
  if (!v) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (v === 4 ? 32 : 128);
}

/** Fallback cycles, and settings that would silently not do what they say (see docs/upstreams.md). */
function checkUpstreamResilience(c: Config, name: string, out: RefIssue[]): void {
  const u = c.upstreams[name];
  const seen = [name];
  for (let next = u.fallback; next !== undefined && c.upstreams[next]; next = c.upstreams[next].fallback) {
    if (seen.includes(next)) {
      if (next !== name) break; // a cycle further down the chain is reported at its own upstream
      if (seen.length > 1) out.push({ path: ['upstreams', name, 'fallback'], message: `fallback cycle: ${[...seen, next].join(' → ')}` });
      break;
    }
    seen.push(next);
  }
  const positive = new Set(u.targets.filter((t) => t.weight > 0).map((t) => t.weight));
  if (u.balance === 'round-robin' && positive.size > 1) out.push({ path: ['upstreams', name, 'balance'], message: 'round-robin ignores weights other than 0; use balance: weighted (or least-request) for a canary split', warning: true });
  const p = u.passiveHealth;
  if (p && p.maxEjectFor < p.ejectFor) out.push({ path: ['upstreams', name, 'passiveHealth', 'maxEjectFor'], message: 'maxEjectFor is shorter than ejectFor' });
  if (u.retry && parseFloat(u.retry.budget) > 100) out.push({ path: ['upstreams', name, 'retry', 'budget'], message: 'a retry budget above 100% lets retries outnumber requests', warning: true });
}
