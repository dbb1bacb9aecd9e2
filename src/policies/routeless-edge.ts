import type { RequestContext, Step } from '../pipeline/context.ts';
import type { TrustedProxies } from '../server/client-ip.ts';
import { compileCors, corsStep, type CorsConfig } from './cors.ts';
import { resolveSecurityHeaders, securityHeadersStep, type SecurityHeadersSetting } from './security-headers.ts';

/**
 * Errors the gateway answers before a route is chosen (404, 405, a malformed path) still carry the
 * server's security headers and, for allowed origins, its CORS headers, so a browser can read them.
 * Returns null when the server configures neither.
 */
export function compileRoutelessEdge(server: { cors?: CorsConfig; securityHeaders: SecurityHeadersSetting }, trusted: TrustedProxies): ((ctx: RequestContext) => void) | null {
  const steps: Step[] = [];
  if (server.cors !== undefined) steps.push(corsStep(compileCors(server.cors)));
  const sec = securityHeadersStep(resolveSecurityHeaders(server.securityHeaders, undefined), trusted);
  if (sec !== undefined) steps.push(sec);
  if (steps.length === 0) return null;
  return (ctx) => {
    // A refused WebSocket origin on an unknown path is still just a 404.
    for (const s of steps) { try { void s(ctx); } catch { /* headers only */ } }
  };
}
