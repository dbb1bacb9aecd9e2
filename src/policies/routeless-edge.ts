import type { GatewayServices } from '../services.ts';
import type { RequestContext } from '../server/context.ts';
import { compileCors, corsStep } from './cors.ts';
import { securityHeadersFor, securityHeadersStep } from './security-headers.ts';
import type { Step } from './types.ts';

/**
 * Errors the gateway answers before a route is chosen (404, 405, a malformed path) still carry the
 * server's security headers and, for allowed origins, its CORS headers, so a browser can read them.
 * Returns null when the server configures neither.
 */
export function compileRoutelessEdge(services: GatewayServices): ((ctx: RequestContext) => void) | null {
  const { config } = services;
  const steps: Step[] = [];
  if (config.server.cors !== undefined) steps.push(corsStep(compileCors(config.server.cors)));
  const sec = securityHeadersStep(securityHeadersFor(config, null), services.trusted);
  if (sec !== undefined) steps.push(sec);
  if (steps.length === 0) return null;
  return (ctx) => {
    // A refused WebSocket origin on an unknown path is still just a 404.
    for (const s of steps) { try { void s(ctx); } catch { /* headers only */ } }
  };
}
