import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';

/** `contentTypes: [application/json, multipart/form-data, image/*]` on a route. */
export const contentTypeRouteKeys = { contentTypes: z.array(z.string()).optional().describe('Media types a request body may have (415 otherwise), e.g. [application/json] (docs/edge-security.md).') };
type Route = { contentTypes?: string[] };
const MEDIA_RANGE = /^[A-Za-z0-9!#$&^_.+-]+\/(\*|[A-Za-z0-9!#$&^_.+-]+)$/;

/**
 * `contentTypes: [application/json, multipart/form-data, image/*]`: a request that carries a body
 * must declare one of these media types (parameters such as charset ignored, case-insensitive), or 415.
 */
export function contentTypeStep(types: readonly string[]): Step {
  const exact = new Set<string>();
  const families: string[] = [];
  for (const t of types) {
    const m = t.trim().toLowerCase();
    if (m.endsWith('/*')) families.push(m.slice(0, -1));
    else exact.add(m);
  }
  const accepted = [...types];
  const detail = `This route accepts request bodies of type ${types.join(', ')}.`;
  return (ctx: RequestContext) => {
    const h = ctx.req.headers;
    const cl = h['content-length'];
    if ((cl === undefined || cl === '0') && h['transfer-encoding'] === undefined) return;
    const ct = h['content-type'];
    if (ct !== undefined) {
      const semi = ct.indexOf(';');
      const media = (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
      if (exact.has(media)) return;
      for (const f of families) if (media.startsWith(f) && media.length > f.length) return;
    }
    throw new GatewayError('unsupported_media_type', detail, { extra: { accepted } });
  };
}

export const contentTypePolicy: Policy<{ routes: readonly Route[] }, Route> = {
  name: 'content-type',
  check(c, out) {
    c.routes.forEach((r, i) => r.contentTypes?.forEach((t, j) => {
      if (!MEDIA_RANGE.test(t.trim())) out.push({ path: ['routes', i, 'contentTypes', j], message: `"${t}" is not a media type (type/subtype or type/*, without parameters)` });
    }));
  },
  compile({ route }) {
    return route.contentTypes === undefined ? undefined : contentTypeStep(route.contentTypes);
  },
};
