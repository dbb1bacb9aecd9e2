import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../server/context.ts';
import type { Policy, Step } from './types.ts';

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

export const contentTypePolicy: Policy = {
  name: 'content-type',
  compile({ route }) {
    return route.contentTypes === undefined ? undefined : contentTypeStep(route.contentTypes);
  },
};
