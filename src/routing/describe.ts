import type { RouteTable } from './table.ts';
import { formatDuration } from '../config/units.ts';

export interface RouteRow {
  name: string;
  methods: string;
  paths: string;
  conditions: string;
  upstream: string;
  rewrite: string;
  auth: string;
  policies: string;
  timeout: string;
  /** False for a route turned off with `enabled:` (its policies column says what it answers). */
  enabled: boolean;
}

/** The compiled table as a person wants to read it (CLI `routes`, admin API). */
export function describeRoutes(table: RouteTable): RouteRow[] {
  return table.routes.map((r) => {
    return {
      name: r.name,
      methods: r.methods.filter((m) => m !== 'HEAD' || !r.methods.includes('GET')).join(',') + (r.websocket ? ' (ws)' : ''),
      paths: r.pathText,
      conditions: r.conditionText.join('; ') || '-',
      upstream: r.upstream.name,
      rewrite: r.rewriteText,
      auth: r.auth,
      policies: r.enabled ? r.policies.join(',') || '-' : 'DISABLED',
      enabled: r.enabled,
      timeout: `${formatDuration(r.timeouts.response)}${r.timeouts.idle !== r.timeouts.response ? `/idle ${formatDuration(r.timeouts.idle)}` : ''}`,
    };
  });
}

export function formatRouteTable(rows: RouteRow[]): string {
  const cols: Array<Exclude<keyof RouteRow, 'enabled'>> = ['name', 'methods', 'paths', 'conditions', 'upstream', 'rewrite', 'auth', 'policies', 'timeout'];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(width[i])).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}
