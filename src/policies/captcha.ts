import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import type { Issue } from '../config/errors.ts';
import { suggest } from '../config/suggest.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { resourceKey, type CompileEnv, type Policy } from '../pipeline/policy.ts';
import { extractField, peekBody } from '../pipeline/body-peek.ts';
import { CaptchaVerifier, PROVIDERS, type CaptchaProvider } from '../captcha/providers.ts';
import type { CaptchaConfig } from '../captcha/schema.ts';
import { HEADER_NAME } from './header-syntax.ts';

/**
 * `captcha: <name>` on a route: the request must carry a token the provider confirms, or it never
 * reaches the upstream. Fails closed: no answer from the provider is never a pass.
 */

/** Real tokens are a few KiB at most; anything longer is refused without asking the provider. */
const MAX_TOKEN = 8 * 1024;
const RETRY_AFTER = { 'retry-after': '5' };

/** `captcha: <name>` on a route names an entry of the `captcha:` section (src/captcha/schema.ts). */
export const captchaRouteKeys = { captcha: z.string().optional().describe('Name of a `captcha:` verifier the request must pass (docs/edge-security.md).') };

interface Needs {
  server: { environment: string; limits: { bodyPeek: number } };
  captcha: Readonly<Record<string, CaptchaConfig>>;
  routes: ReadonlyArray<{ captcha?: string; websocket: boolean }>;
}
type Route = { name: string; captcha?: string };

/**
 * One verifier (and connection pool) per `captcha:` entry, shared by the routes that use it, and by the next
 * generation while the entry is unchanged.
 */
function verifierFor(name: string, c: CaptchaConfig, env: CompileEnv): CaptchaVerifier {
  return env.resources.get(resourceKey('captcha', name, c),
    () => new CaptchaVerifier({ provider: c.provider as CaptchaProvider, secret: c.secret, minScore: c.minScore, action: c.action, hostnames: c.hostnames, verifyUrl: c.verifyUrl, timeout: c.timeout, maxAge: c.maxAge }),
    (v) => v.close());
}

export const captchaPolicy: Policy<Needs, Route> = {
  name: 'captcha',
  check: checkCaptcha,
  compile({ route, config, env }) {
    const name = route.captcha;
    if (name === undefined) return undefined;
    const c = config.captcha[name];
    const routeName = route.name;
    const verifier = verifierFor(name, c, env);
    const header = c.tokenHeader?.toLowerCase();
    // Without a header the widget's own form field is the default place to look.
    const field = c.tokenField ?? (header === undefined ? PROVIDERS[c.provider as CaptchaProvider].tokenField : undefined);
    const log = env.logger;
    // How much of a body is read to find the token field (server.limits.bodyPeek); replayed unchanged afterwards.
    const peekCap = config.server.limits.bodyPeek;
    const where = [header && `header ${c.tokenHeader}`, field && `field "${field}"`].filter(Boolean).join(' or ');

    return async (ctx: RequestContext) => {
      let token: string | undefined;
      if (header !== undefined) {
        const v = ctx.req.headers[header];
        if (typeof v === 'string' && v !== '') token = v;
      }
      if (token === undefined && field !== undefined) {
        const { bytes } = await peekBody(ctx, peekCap);
        token = extractField(bytes, ctx.req.headers['content-type'], field);
      }
      if (token === undefined || token === '') throw new GatewayError('captcha_required', `A captcha token is required (${where}).`);
      if (token.length > MAX_TOKEN) throw new GatewayError('captcha_failed', 'The captcha token is not valid.');

      const verdict = await verifier.verify(token, ctx.clientIp);
      if (verdict.kind === 'pass') return;
      if (verdict.kind === 'fail') {
        log.info({ requestId: ctx.requestId, route: routeName, captcha: name, reason: verdict.reason }, 'captcha rejected');
        throw new GatewayError('captcha_failed', 'The captcha token is not valid.');
      }
      log.warn({ requestId: ctx.requestId, route: routeName, captcha: name, provider: c.provider, endpoint: verifier.endpoint, reason: verdict.reason }, 'captcha provider unavailable');
      throw new GatewayError('captcha_unavailable', 'The captcha could not be verified right now; please retry shortly.', { headers: RETRY_AFTER });
    };
  },
};

function checkCaptcha(c: Needs, out: Issue[]): void {
  const names = Object.keys(c.captcha);
  c.routes.forEach((r, i) => {
    if (r.captcha === undefined) return;
    const cap = Object.hasOwn(c.captcha, r.captcha) ? c.captcha[r.captcha] : undefined;
    if (cap === undefined) {
      const s = suggest(r.captcha, names);
      out.push({ path: ['routes', i, 'captcha'], message: `unknown captcha "${r.captcha}"${s ? ` (did you mean "${s}"?)` : names.length ? ` (known: ${names.join(', ')})` : ''}` });
    } else if (r.websocket && cap.tokenHeader === undefined) {
      out.push({ path: ['routes', i, 'captcha'], message: 'a WebSocket handshake has no body: set tokenHeader on this captcha to read the token from a header' });
    }
  });
  for (const [name, cap] of Object.entries(c.captcha)) {
    if (cap.tokenHeader !== undefined && !HEADER_NAME.test(cap.tokenHeader)) out.push({ path: ['captcha', name, 'tokenHeader'], message: `"${cap.tokenHeader}" is not a header name` });
    if (cap.verifyUrl !== undefined && !/^https?:\/\//.test(cap.verifyUrl)) out.push({ path: ['captcha', name, 'verifyUrl'], message: 'verifyUrl must be http:// or https://' });
    else if (cap.verifyUrl?.startsWith('http://') && c.server.environment === 'production' && !/^http:\/\/(localhost|127\.|\[::1\])/.test(cap.verifyUrl)) {
      out.push({ path: ['captcha', name, 'verifyUrl'], message: 'the captcha secret would cross the network in clear text; use https', warning: true });
    }
    if (cap.minScore !== 0.5 && cap.provider !== 'recaptcha-v3') out.push({ path: ['captcha', name, 'minScore'], message: `${cap.provider} returns no score; minScore applies to recaptcha-v3 only`, warning: true });
  }
}
