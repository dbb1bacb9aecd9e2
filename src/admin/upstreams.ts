import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Upstream } from '../upstreams/upstream.ts';
import { describeUpstream } from '../upstreams/status.ts';
import { sendJson, type AdminHandler } from './server.ts';

const MAX_BODY = 64 * 1024;
const MAX_WEIGHT = 1_000_000;

/**
 * Admin routes for upstreams:
 * - `GET /admin/upstreams`: every upstream with its targets, weights, health, circuit state, in-flight, ejections;
 * - `GET /admin/upstreams/:name`: one of them;
 * - `POST /admin/upstreams/:name/weights`: new weights, by target URL (`{ "weights": { "http://blue:8000": 0 } }`,
 *   unnamed targets keep theirs) or by index (`{ "weights": [0, 100] }`). Takes effect for the next pick;
 *   open connections, in-flight requests and WebSocket tunnels are untouched, so a blue-green switch drops nothing.
 */
export function registerUpstreamAdmin(routes: Map<string, AdminHandler>, upstreams: Map<string, Upstream>): void {
  routes.set('GET /admin/upstreams', (_req, res) => sendJson(res, 200, [...upstreams.values()].map((u) => describeUpstream(u))));
  routes.set('GET /admin/upstreams/:name', (_req, res, url) => {
    const up = find(upstreams, url, 3, res);
    if (up) sendJson(res, 200, describeUpstream(up));
  });
  routes.set('POST /admin/upstreams/:name/weights', async (req, res, url) => {
    const up = find(upstreams, url, 3, res);
    if (!up) return;
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (e) {
      return problem(res, 400, 'bad_request', (e as Error).message === 'too large' ? `The body exceeds ${MAX_BODY} bytes.` : 'The body is not valid JSON.');
    }
    const parsed = parseWeights(up, (body as { weights?: unknown } | null)?.weights);
    if (typeof parsed === 'string') return problem(res, 400, 'bad_request', parsed);
    if (parsed.every((w) => w === 0)) return problem(res, 409, 'conflict', 'Every target would have weight 0 and nothing could serve; keep at least one weight above 0.');
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

function find(upstreams: Map<string, Upstream>, url: URL, segment: number, res: ServerResponse): Upstream | undefined {
  let name = '';
  try { name = decodeURIComponent(url.pathname.split('/')[segment] ?? ''); } catch { /* falls through to 404 */ }
  const up = upstreams.get(name);
  if (!up) problem(res, 404, 'not_found', `No upstream named "${name.slice(0, 100)}"; known: ${[...upstreams.keys()].join(', ')}.`);
  return up;
}

function problem(res: ServerResponse, status: number, code: string, detail: string): void {
  sendJson(res, status, { type: `urn:gatehouse:problem:${code}`, title: code === 'bad_request' ? 'Bad request' : code === 'conflict' ? 'Conflict' : 'Not found', status, detail, code });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Error('too large')); chunks.length = 0; return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
