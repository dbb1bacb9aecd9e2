import type { Policy, PolicyContext, Step } from './types.ts';
import { authPlaceholder } from './auth-placeholder.ts';

/**
 * Every policy, in the order a request meets them:
 * cors → security headers → body limits → auth → captcha → rate limit → quota.
 * Adding a policy means adding its file here; nothing else needs to know it exists.
 */
export const POLICIES: readonly Policy[] = [authPlaceholder];

export function compileSteps(pctx: PolicyContext): { steps: Step[]; names: string[] } {
  const steps: Step[] = [];
  const names: string[] = [];
  for (const p of POLICIES) {
    const step = p.compile(pctx);
    if (step !== undefined) { steps.push(step); names.push(p.name); }
  }
  return { steps, names };
}
