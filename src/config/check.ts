import { isIP } from 'node:net';
import type { Config } from './schema.ts';
import type { Issue } from './errors.ts';
import { suggest } from './suggest.ts';
import { checkSecrets } from './secrets.ts';
import { POLICIES } from '../policies/index.ts';

/**
 * Rules a per-field schema cannot express, on the normalized config. Returns every problem, not the first.
 * What a policy reads, the policy checks (its `check`, in its own file); this file checks what the route table,
 * the upstreams and the listeners read, then asks every policy, then the secrets.
 */
export function checkConfig(c: Config): Issue[] {
  const out: Issue[] = [];
  const upstreams = Object.keys(c.upstreams);

  c.server.trustedProxies.forEach((cidr, i) => {
    if (!isCidr(cidr)) out.push({ path: ['server', 'trustedProxies', i], message: `"${cidr}" is not an IP address or CIDR range` });
  });
  if (c.admin.enabled && c.admin.token === '' && !isLoopback(c.admin.listen.host)) {
    out.push({ path: ['admin', 'token'], message: `the admin listener is on ${c.admin.listen.host}, reachable from other machines: set admin.token (e.g. "\${GATEHOUSE_ADMIN_TOKEN}"), or listen on 127.0.0.1` });
  }

  const r = c.state.redis;
  if (r.sentinels !== undefined && r.cluster !== undefined) out.push({ path: ['state', 'redis', 'cluster'], message: 'give sentinels or cluster, not both' });
  const http2 = c.server.http2;
  if (http2.cleartext && c.server.tls !== undefined) out.push({ path: ['server', 'http2', 'cleartext'], message: 'cleartext HTTP/2 is for a listener without TLS; with server.tls, HTTP/2 is negotiated by ALPN (http2.enabled)' });

  for (const [name, u] of Object.entries(c.upstreams)) {
    if (u.fallback !== undefined && !Object.hasOwn(c.upstreams, u.fallback)) out.push({ path: ['upstreams', name, 'fallback'], message: unknown('upstream', u.fallback, upstreams) });
    if (u.fallback === name) out.push({ path: ['upstreams', name, 'fallback'], message: 'an upstream cannot fall back to itself' });
    if (u.targets.every((t) => t.weight === 0)) out.push({ path: ['upstreams', name, 'targets'], message: 'every target has weight 0: nothing can serve' });
    u.targets.forEach((t, i) => {
      if (!/^https?:\/\//.test(t.url)) out.push({ path: ['upstreams', name, 'targets', i, 'url'], message: 'target URLs must be http:// or https://' });
    });
    checkUpstreamResilience(c, name, out);
  }

  checkBuiltins(c, out);

  c.routes.forEach((r, i) => {
    const at = (...p: PropertyKey[]) => ['routes', i, ...p];
    // a models route: its candidates are checked (src/policies/models.ts); the first one stands for the route
    if (r.models === undefined && !Object.hasOwn(c.upstreams, r.upstream)) out.push({ path: at('upstream'), message: unknown('upstream', r.upstream, upstreams) });
    if ((r.match.path === undefined) === (r.match.paths === undefined)) out.push({ path: at('match'), message: 'give exactly one of path or paths' });
    if (r.rewrite?.path !== undefined && (r.rewrite.stripPrefix !== undefined || r.rewrite.addPrefix !== undefined)) out.push({ path: at('rewrite'), message: 'rewrite.path replaces the whole path; do not combine it with stripPrefix/addPrefix' });
    if (r.websocket && r.match.body !== undefined) out.push({ path: at('match', 'body'), message: 'a WebSocket handshake has no body to match; use match.headers or match.query' });
    if (r.check !== undefined) checkProbe(r, at, out);
  });

  for (const p of POLICIES) p.check?.(c, out);
  out.push(...checkSecrets(c));
  return out;
}

/** A route's `check:` must be a request this route serves, or a probe through the gateway would test another one. */
function checkProbe(r: Config['routes'][number], at: (...p: PropertyKey[]) => PropertyKey[], out: Issue[]): void {
  const { method, path } = r.check!;
  const methods = r.match.methods;
  if (methods && !methods.includes(method) && !(method === 'HEAD' && methods.includes('GET')) && method !== 'OPTIONS') {
    out.push({ path: at('check', 'method'), message: `this route does not serve ${method} (it serves ${methods.join(', ')})` });
  }
  const patterns = r.match.paths ?? (r.match.path !== undefined ? [r.match.path] : []);
  const bare = path.split('?')[0];
  const matches = patterns.some((p) => {
    const body = p.split(/(:[A-Za-z_][A-Za-z0-9_]*(?:\([^)]*\))?|\*|::)/).filter(Boolean)
      .map((part) => (part === '*' ? '.*' : part === '::' ? ':' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`^${body}${r.match.prefix ? '(?:/.*)?' : ''}$`).test(bare);
  });
  if (!matches) out.push({ path: at('check', 'path'), message: `"${bare}" is not a path of this route (${patterns.join(', ')}${r.match.prefix ? ' and below' : ''})` });
}

export function unknown(kind: string, name: string, known: readonly string[]): string {
  const s = suggest(name, [...known]);
  return `unknown ${kind} "${name}"${s ? ` (did you mean "${s}"?)` : known.length ? ` (known: ${known.join(', ')})` : ''}`;
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

/**
 * Whether a listen host only accepts connections from this machine: `localhost`, 127.0.0.0/8, `::1` (and its
 * IPv4-mapped form). A host name that merely starts with "127." (`127.example.com`) is a name like any other.
 */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const v4 = host.toLowerCase().replace(/^::ffff:/, '');
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(host) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(host);
}

/** Fallback cycles, and settings that would silently not do what they say (see docs/upstreams.md). */
function checkUpstreamResilience(c: Config, name: string, out: Issue[]): void {
  const u = c.upstreams[name];
  const seen = [name];
  for (let next = u.fallback; next !== undefined && Object.hasOwn(c.upstreams, next); next = c.upstreams[next].fallback) {
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

/**
 * Built-in endpoints (/healthz, /readyz, `server.health.paths`, the info page at `/`) answer GET and HEAD before
 * routing: a route on the same path would never see those requests, so the overlap is refused rather than left to
 * surprise someone.
 */
function checkBuiltins(c: Config, out: Issue[]): void {
  const seen = new Set(['/healthz', '/readyz']);
  const builtin: Array<{ path: string; at: PropertyKey[] }> = [];
  c.server.health.paths.forEach((p, i) => {
    const at = ['server', 'health', 'paths', i];
    if (seen.has(p)) out.push({ path: at, message: `${p} is already a built-in endpoint${p === '/healthz' || p === '/readyz' ? '' : ' (listed twice)'}` });
    else if (p === '/' && c.server.info.enabled) out.push({ path: at, message: '/ is the info page (server.info.enabled)' });
    else if (/[:*?#]/.test(p)) out.push({ path: at, message: 'an alias is a plain path (no parameters, wildcards or query)' });
    seen.add(p);
    builtin.push({ path: p, at });
  });
  if (c.server.info.enabled) builtin.push({ path: '/', at: ['server', 'info', 'enabled'] });
  for (const b of builtin) {
    c.routes.forEach((r, i) => {
      if (r.websocket || (r.match.methods !== undefined && !r.match.methods.some((m) => m === 'GET' || m === 'HEAD'))) return;
      const paths = r.match.paths ?? (r.match.path !== undefined ? [r.match.path] : []);
      const covers = paths.some((p) => p === b.path || (r.match.prefix && (p === '/' || b.path === p.replace(/\/$/, '') || b.path.startsWith(p.replace(/\/$/, '') + '/'))));
      if (covers) out.push({ path: b.at, message: `routes[${i}] (${r.name}) also serves GET ${b.path}; the built-in answers it first, so that route would never see it: move one of them` });
    });
  }
}
