import type { Policy, PolicyContext, Step } from './types.ts';
import { authPolicy } from './auth.ts';
import { rateLimitPolicy } from './rate-limit.ts';
import { quotaPolicy } from './quota.ts';
import { corsPolicy } from './cors.ts';
import { securityHeadersPolicy } from './security-headers.ts';
import { contentTypePolicy } from './content-type.ts';
import { captchaPolicy } from './captcha.ts';

/**
 * Every policy, in the order a request meets them:
 * cors → security headers → content type → auth → captcha → rate limit → quota
 * (body size limits are enforced by the proxy as the body streams, and by a peek before it reads).
 * Adding a policy means adding its file here; nothing else needs to know it exists.
 */
export const POLICIES: readonly Policy[] = [corsPolicy, securityHeadersPolicy, contentTypePolicy, authPolicy, captchaPolicy, rateLimitPolicy, quotaPolicy];

export function compileSteps(pctx: PolicyContext): { steps: Step[]; names: string[] } {
  const steps: Step[] = [];
  const names: string[] = [];
  for (const p of POLICIES) {
    const step = p.compile(pctx);
    if (step !== undefined) { steps.push(step); names.push(p.name); }
  }
  return { steps, names };
}
