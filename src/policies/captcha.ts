import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../server/context.ts';
import type { GatewayServices } from '../services.ts';
import type { Config } from '../config/schema.ts';
import { CaptchaVerifier, PROVIDERS, type CaptchaProvider } from '../captcha/providers.ts';
import { extractField, peekBody } from '../proxy/body-peek.ts';
import type { Policy } from './types.ts';

/**
 * `captcha: <name>` on a route: the request must carry a token the provider confirms, or it never
 * reaches the upstream. Fails closed: no answer from the provider is never a pass.
 */

/** Real tokens are a few KiB at most; anything longer is refused without asking the provider. */
const MAX_TOKEN = 8 * 1024;
const RETRY_AFTER = { 'retry-after': '5' };

/** One verifier (and connection pool) per `captcha:` entry, shared by the routes that use it. */
function verifierFor(name: string, config: Config, services: GatewayServices): CaptchaVerifier {
  let m = services.shared.get('captcha') as Map<string, CaptchaVerifier> | undefined;
  if (m === undefined) services.shared.set('captcha', (m = new Map()));
  let v = m.get(name);
  if (v === undefined) {
    const c = config.captcha[name];
    v = new CaptchaVerifier({ provider: c.provider as CaptchaProvider, secret: c.secret, minScore: c.minScore, action: c.action, hostnames: c.hostnames, verifyUrl: c.verifyUrl, timeout: c.timeout });
    m.set(name, v);
    const closing = v;
    services.closers.push(() => closing.close());
  }
  return v;
}

export const captchaPolicy: Policy = {
  name: 'captcha',
  compile({ route, config, services, routeName }) {
    const name = route.captcha;
    if (name === undefined) return undefined;
    const c = config.captcha[name];
    if (c === undefined) throw new Error(`unknown captcha "${name}"`);
    const verifier = verifierFor(name, config, services);
    const header = c.tokenHeader?.toLowerCase();
    // Without a header the widget's own form field is the default place to look.
    const field = c.tokenField ?? (header === undefined ? PROVIDERS[c.provider as CaptchaProvider].tokenField : undefined);
    const log = services.logger;
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
      if (token === undefined || token === '') throw new GatewayError('captcha_failed', `A captcha token is required (${where}).`);
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
