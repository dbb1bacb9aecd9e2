import { isAbsolute, resolve } from 'node:path';
import type { Issue } from './errors.ts';
import type { Config, ParsedConfig, RouteConfig } from './schema.ts';
import { DEFAULT_TIMEOUTS, PROVIDER_TARGETS, expandTimeout, type UpstreamConfig } from '../upstreams/schema.ts';

/**
 * The one pass that resolves defaults: each route's name, auth mode, timeouts, body limit, `enabled` and the files
 * it names (relative to the config file's directory, `opts.dir`), each upstream's timeouts. Compile and every policy read the result; none resolves `route.x ?? defaults.x ?? built-in` again.
 * Problems found here (a route with no auth and no `defaults.auth`, a route-level connect timeout) come back as
 * issues with their key path, like any check's.
 */
export function normalize(c: ParsedConfig, opts: { dir?: string } = {}): { config: Config; issues: Issue[] } {
  const dir = opts.dir ?? process.cwd();
  const issues: Issue[] = [];
  const base = { ...DEFAULT_TIMEOUTS, ...expandTimeout(c.defaults.timeout) };
  const upstreams: Record<string, UpstreamConfig> = {};
  for (const [name, u] of Object.entries(c.upstreams)) {
    const { timeout, targets, ...rest } = u;
    const known = u.provider !== undefined ? PROVIDER_TARGETS[u.provider] : undefined;
    if (targets === undefined && known === undefined) issues.push({ path: ['upstreams', name, 'targets'], message: u.provider === undefined ? 'an upstream needs targets' : `a ${u.provider} upstream needs targets (the server's URL)` });
    upstreams[name] = { ...rest, targets: targets ?? (known !== undefined ? [{ url: known, weight: 100 }] : []), timeouts: { ...base, ...expandTimeout(timeout) } };
  }

  const used = new Set<string>();
  const declaredAt = new Map<string, number>();
  const routes: RouteConfig[] = c.routes.map((r, index) => {
    const { name: declared, auth: own, timeout, enabled, validate, upstream: named, ...rest } = r;
    // A route with `models` may leave `upstream` out: its first candidate's upstream stands for it (admin, health).
    const firstCandidate = r.models !== undefined ? Object.values(r.models)[0]?.[0]?.upstream : undefined;
    const upstream = named ?? firstCandidate ?? '';
    if (upstream === '') issues.push({ path: ['routes', index, 'upstream'], message: 'every route names its upstream (or lists models: with their upstreams)' });
    if (declared !== undefined) {
      if (declaredAt.has(declared)) issues.push({ path: ['routes', index, 'name'], message: `duplicate route name "${declared}" (also routes[${declaredAt.get(declared)}])` });
      else declaredAt.set(declared, index);
    }
    let name = declared ?? `${r.match.methods ? r.match.methods.join(',') + ' ' : ''}${r.match.path ?? r.match.paths?.[0] ?? ''}`;
    if (used.has(name)) name = `${name}#${index}`;
    used.add(name);
    const auth = own ?? c.defaults.auth;
    if (auth === undefined) issues.push({ path: ['routes', index, 'auth'], message: 'every route states its auth (public, jwt, apikey or any), or set defaults.auth' });
    // Connections belong to the upstream's pool, shared by every route that uses it: a per-route connect
    // timeout could not be honoured, so it is refused rather than accepted and ignored.
    if (timeout?.connect !== undefined) issues.push({ path: ['routes', index, 'timeout', 'connect'], message: `the connect timeout belongs to the upstream's connection pool: set upstreams.${upstream}.timeout.connect` });
    const up = upstreams[upstream];
    const own_ = expandTimeout(timeout);
    delete own_.connect;
    return {
      ...rest,
      upstream,
      name,
      index,
      auth: auth ?? 'public',
      timeouts: { ...(up?.timeouts ?? base), ...own_ },
      maxBodySize: r.limits?.maxBodySize ?? c.server.limits.maxBodySize,
      enabled: enabled ?? true,
      // Files a route names are relative to the config file, wherever the gateway was started from.
      ...(validate !== undefined ? { validate: { ...validate, file: isAbsolute(validate.openapi) ? validate.openapi : resolve(dir, validate.openapi) } } : {}),
    };
  });
  return { config: { ...c, upstreams, routes }, issues };
}
