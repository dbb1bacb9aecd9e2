import type { Config, RouteConfig } from '../config/schema.ts';
import type { Step } from '../pipeline/context.ts';
import type { CompileEnv, Policy } from '../pipeline/policy.ts';
import { authPolicy } from './auth.ts';
import { rateLimitPolicy } from './rate-limit.ts';
import { quotaPolicy } from './quota.ts';
import { corsPolicy } from './cors.ts';
import { securityHeadersPolicy } from './security-headers.ts';
import { contentTypePolicy } from './content-type.ts';
import { captchaPolicy } from './captcha.ts';
import { clientCertPolicy } from './client-cert.ts';
import { compressionPolicy } from './compression.ts';

/**
 * Every policy, in the order a request meets them:
 * cors → security headers → content type → client certificate → auth → captcha → rate limit → quota → compression
 * (body size limits are enforced by the proxy as the body streams, and by a peek before it reads).
 * Adding a policy means its file, its place here, and its route keys in src/config/schema.ts.
 */
export const POLICIES: ReadonlyArray<Policy<Config, RouteConfig>> = [corsPolicy, securityHeadersPolicy, contentTypePolicy, clientCertPolicy, authPolicy, captchaPolicy, rateLimitPolicy, quotaPolicy, compressionPolicy];

/** A route's steps: one per policy the route uses, in order, and their names (for `gatehouse routes`). */
export function compileSteps(config: Config, route: RouteConfig, env: CompileEnv): { steps: Step[]; names: string[] } {
  const steps: Step[] = [];
  const names: string[] = [];
  for (const p of POLICIES) {
    const step = p.compile({ config, route, env });
    if (step !== undefined) { steps.push(step); names.push(p.name); }
  }
  return { steps, names };
}
