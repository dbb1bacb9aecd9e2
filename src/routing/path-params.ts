import { GatewayError } from '../errors.ts';
import type { MatchResult, RouteTable } from './table.ts';

/**
 * Servlet containers (Tomcat, Jetty, Spring) drop `;parameters` from every path segment before they route, so
 * `/p/admin;x` is `/p/admin` to them while the gateway matches the literal path. Where the two readings pick
 * different routes, a client could reach `/p/admin` under the rules of a broader route (`/p`, public): the
 * Shiro/Spring class of bypass (CVE-2020-1957, CVE-2016-6802) on ordinary segments. Such a request is refused;
 * a `;` that routes the same either way passes untouched (matrix parameters, file names).
 * Only paths that contain `;` get here: one indexOf on the hot path.
 */
export function paramsRouteElsewhere(table: RouteTable, method: string, path: string, m: MatchResult): boolean {
  const stripped = stripPathParams(path);
  if (stripped === path) return false;
  const other = table.match(method, stripped);
  if (other.kind !== m.kind) return true;
  if (other.kind !== 'found' || m.kind !== 'found') return false;
  // A prefix route sits in two slots (`/p` and `/p/*`): the routes are compared, not the slots.
  const a = other.candidates;
  const b = m.candidates;
  if (a.length !== b.length) return true;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}

/** `/a;x/b;y=1` → `/a/b`: each segment up to its first `;`. */
export function stripPathParams(path: string): string {
  return path.replace(/;[^/]*/g, '');
}

export const AMBIGUOUS_PARAMS = new GatewayError('bad_path', 'The path has ";" parameters that would route this request differently for a service that drops them (as servlet containers do).');
