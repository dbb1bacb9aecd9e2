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
import { forwardAuthPolicy } from './forward-auth.ts';
import { routeTogglePolicy } from './route-toggle.ts';
import { claimBindingPolicy } from './claim-binding.ts';
import { requestTransformPolicy } from './request-transform.ts';
import { requestValidationPolicy } from './request-validation.ts';
import { headerRulesPolicy } from './header-rules.ts';
import { clientCertPolicy } from './client-cert.ts';
import { compressionPolicy } from './compression.ts';
import { modelsPolicy } from './models.ts';
import { concurrencyPolicy } from './concurrency.ts';
import { responseCachePolicy } from './response-cache.ts';
import { promptGuardPolicy } from './prompt-guard.ts';

/**
 * Every policy, in the order a request meets them:
 * cors → security headers → content type → client certificate → auth (jwt | apikey | forward) → captcha
 * → request rules (bind → transform → validate → prompt guard → models → headers) → rate limit → concurrency
 * → quota → response cache (a hit answers here, after every limit has counted it) → compression (response)
 * (body size limits are enforced by the proxy as the body streams, and by a peek before it reads).
 * Request rules that read the body share one bounded peek and one parse (src/pipeline/request-body.ts): binding
 * and rate-limit keys read what the client sent, validation what the upstream will receive.
 * Adding a policy means its file, its place here, and its route keys in src/config/schema.ts.
 */
export const POLICIES: ReadonlyArray<Policy<Config, RouteConfig>> = [
  corsPolicy, securityHeadersPolicy, contentTypePolicy, clientCertPolicy, authPolicy, forwardAuthPolicy, captchaPolicy,
  routeTogglePolicy, claimBindingPolicy, requestTransformPolicy, requestValidationPolicy, promptGuardPolicy, modelsPolicy, headerRulesPolicy,
  rateLimitPolicy, concurrencyPolicy, quotaPolicy, responseCachePolicy, compressionPolicy,
];

/** A disabled route (`enabled: false`) answers by itself: only what lets a browser read that answer runs first. */
const DISABLED: ReadonlyArray<Policy<Config, RouteConfig>> = [corsPolicy, securityHeadersPolicy, routeTogglePolicy];

/** A route's steps: one per policy the route uses, in order, and their names (for `gatehouse routes`). */
export function compileSteps(config: Config, route: RouteConfig, env: CompileEnv): { steps: Step[]; names: string[] } {
  const steps: Step[] = [];
  const names: string[] = [];
  for (const p of route.enabled ? POLICIES : DISABLED) {
    const step = p.compile({ config, route, env });
    if (step !== undefined) { steps.push(step); names.push(p.name); }
  }
  return { steps, names };
}
