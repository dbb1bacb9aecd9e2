import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Upstream } from '../upstreams/upstream.ts';
import { describeUpstream } from '../upstreams/status.ts';
import { adminProblem, readJson, sendJson, type AdminHandler, type AdminHost } from './http.ts';

const MAX_WEIGHT = 1_000_000;

/**
 * Admin routes for upstreams:
 * - `GET /admin/upstreams`: every upstream with its targets, weights, health, circuit state, in-flight, ejections;
 * - `GET /admin/upstreams/:name`: one of them;
 * - `POST /admin/upstreams/:name/weights`: new weights, by target URL (`{ "weights": { "http://blue:8000": 0 } }`,
 *   unnamed targets keep theirs) or by index (`{ "weights": [0, 100] }`). Takes effect for the next pick;
 *   open connections, in-flight requests and WebSocket tunnels are untouched, so a blue-green switch drops nothing.
 */
export function registerUpstreamAdmin(routes: Map<string, AdminHandler>, host: AdminHost): void {
  routes.set('GET /admin/upstreams', (_req, res) => sendJson(res, 200, [...host.current.upstreams.values()].map((u) => describeUpstream(u))));
  routes.set('GET /admin/upstreams/:name', (req, res, url) => {
    const up = find(host.current.upstreams, url, 3, req, res);
    if (up) sendJson(res, 200, describeUpstream(up));
  });
  routes.set('POST /admin/upstreams/:name/weights', async (req, res, url) => {
    const up = find(host.current.upstreams, url, 3, req, res);
    if (!up) return;
    const body = await readJson(req);
    const parsed = parseWeights(up, (body as { weights?: unknown } | null)?.weights);
    if (typeof parsed === 'string') return adminProblem(req, res, 'bad_request', parsed);
    if (parsed.every((w) => w === 0)) return adminProblem(req, res, 'conflict', 'Every target would have weight 0 and nothing could serve; keep at least one weight above 0.');
    up.setWeights(parsed);
    sendJson(res, 200, describeUpstream(up));
  });
}

/** New weights for every target, or what is wrong with the request. */
export function parseWeights(up: Upstream, w: unknown): number[] | string {
  const valid = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_WEIGHT;
  const out = up.targets.map((t) => t.weight);
  if (Array.isArray(w)) {
    if (w.length !== out.length) return `Give one weight per target (${out.length}), in config order, or an object keyed by target URL.`;
    for (let i = 0; i < w.length; i++) {
      if (!valid(w[i])) return `weights[${i}] must be an integer from 0 to ${MAX_WEIGHT}.`;
      out[i] = w[i];
    }
    return out;
  }
  if (w === null || typeof w !== 'object' || Object.keys(w).length === 0) return 'Expected { "weights": { "<target url>": <weight>, ... } } or { "weights": [<weight>, ...] }.';
  for (const [key, v] of Object.entries(w)) {
    const i = up.targets.findIndex((t) => sameTarget(t.url, t.label, key));
    if (i < 0) return `Unknown target "${key.slice(0, 200)}"; known: ${up.targets.map((t) => t.label).join(', ')}.`;
    if (!valid(v)) return `The weight for ${up.targets[i].label} must be an integer from 0 to ${MAX_WEIGHT}.`;
    out[i] = v;
  }
  return out;
}

function sameTarget(url: string, label: string, key: string): boolean {
  const k = key.replace(/\/$/, '');
  return k === url.replace(/\/$/, '') || k === label;
}

function find(upstreams: ReadonlyMap<string, Upstream>, url: URL, segment: number, req: IncomingMessage, res: ServerResponse): Upstream | undefined {
  let name = '';
  try { name = decodeURIComponent(url.pathname.split('/')[segment] ?? ''); } catch { /* falls through to 404 */ }
  const up = upstreams.get(name);
  if (!up) adminProblem(req, res, 'not_found', `No upstream named "${name.slice(0, 100)}"; known: ${[...upstreams.keys()].join(', ')}.`);
  return up;
}
