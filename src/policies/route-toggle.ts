import { GatewayError } from '../errors.ts';
import type { Issue } from '../config/errors.ts';
import type { Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { enabledSchema, whenDisabledSchema, type WhenDisabled } from '../rules/schema.ts';

/**
 * `enabled: ${ENABLE_FILE_UPLOAD:-true}` on a route (seed 004's upload switch): a disabled route stays in the table,
 * so it still captures its requests, but answers them itself and never touches its upstream: 404 exactly as if no
 * route matched (default), or `whenDisabled: { status: 503, message, retryAfter }`. A disabled route compiles no
 * other policy than CORS and security headers (so a browser can read the answer); `gatehouse routes` marks it.
 * `enabled` is resolved to a boolean by the normalize pass (src/config/normalize.ts).
 */
export const routeToggleRouteKeys = {
  enabled: enabledSchema.optional().describe('false: the route answers 404 (or `whenDisabled`) itself; a quoted variable\'s true/false/yes/no/on/off/1/0 counts.'),
  whenDisabled: whenDisabledSchema.optional(),
};

interface Needs { routes: ReadonlyArray<{ whenDisabled?: WhenDisabled }> }
type Route = { enabled: boolean; whenDisabled?: WhenDisabled };

export const routeTogglePolicy: Policy<Needs, Route> = {
  name: 'disabled',
  check(c, out: Issue[]) {
    c.routes.forEach((r, i) => {
      const w = r.whenDisabled;
      if (w === undefined || w.status === 503) return;
      if (w.message !== undefined) out.push({ path: ['routes', i, 'whenDisabled', 'message'], message: 'a disabled route answers 404 exactly as an unknown path does; the message is sent with status: 503 only', warning: true });
      if (w.retryAfter !== undefined) out.push({ path: ['routes', i, 'whenDisabled', 'retryAfter'], message: 'Retry-After is sent with status: 503 only', warning: true });
    });
  },
  compile({ route }) {
    if (route.enabled) return undefined;
    const w = route.whenDisabled;
    if (w === undefined || w.status === 404) {
      const step: Step = (ctx) => { throw new GatewayError('not_found', `No route matches ${ctx.req.method} ${ctx.path}.`); };
      return step;
    }
    const err = new GatewayError('route_disabled', w.message ?? 'This endpoint is turned off.', w.retryAfter !== undefined ? { headers: { 'retry-after': String(Math.max(1, Math.ceil(w.retryAfter / 1000))) } } : undefined);
    const step: Step = () => { throw err; };
    return step;
  },
};
