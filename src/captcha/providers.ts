import { Agent } from '../upstreams/undici.ts';

/**
 * Captcha providers and their siteverify protocol. All four take the same form POST
 * (secret, response, remoteip) and answer JSON with `success` and `error-codes`; they differ in
 * their URL, the form field their widget fills in, and the extra facts they return (score, action).
 */
export type CaptchaProvider = 'recaptcha-v2' | 'recaptcha-v3' | 'hcaptcha' | 'turnstile';

export const PROVIDERS: Readonly<Record<CaptchaProvider, { verifyUrl: string; tokenField: string; hasScore: boolean; hasAction: boolean }>> = {
  'recaptcha-v2': { verifyUrl: 'https://www.google.com/recaptcha/api/siteverify', tokenField: 'g-recaptcha-response', hasScore: false, hasAction: false },
  'recaptcha-v3': { verifyUrl: 'https://www.google.com/recaptcha/api/siteverify', tokenField: 'g-recaptcha-response', hasScore: true, hasAction: true },
  hcaptcha: { verifyUrl: 'https://api.hcaptcha.com/siteverify', tokenField: 'h-captcha-response', hasScore: false, hasAction: false },
  turnstile: { verifyUrl: 'https://challenges.cloudflare.com/turnstile/v0/siteverify', tokenField: 'cf-turnstile-response', hasScore: false, hasAction: true },
};

/** Error codes that say the gateway (its secret, its request) is at fault, or the provider is, never the user. */
const NOT_THE_USER = new Set(['missing-input-secret', 'invalid-input-secret', 'sitekey-secret-mismatch', 'bad-request', 'internal-error', 'invalid-remoteip', 'missing-remoteip']);
const MAX_ANSWER = 64 * 1024;

export interface CaptchaCheck {
  provider: CaptchaProvider;
  secret: string;
  minScore: number;
  action?: string;
  hostnames?: string[];
  verifyUrl?: string;
  timeout: number;
  /** ms: the oldest `challenge_ts` accepted. */
  maxAge: number;
}

export type Verdict =
  | { kind: 'pass' }
  /** The token is missing, bad, expired, reused, or its score/action/hostname do not fit. */
  | { kind: 'fail'; reason: string }
  /** No trustworthy answer: unreachable, slow, 5xx, unreadable, or the provider blames our request. */
  | { kind: 'unavailable'; reason: string };

interface Answer { success?: unknown; score?: unknown; action?: unknown; hostname?: unknown; challenge_ts?: unknown; 'error-codes'?: unknown }

/** Talks to one provider over its own connection pool. The secret lives only in the encoded form prefix. */
export class CaptchaVerifier {
  private readonly c: CaptchaCheck;
  private readonly url: URL;
  private readonly agent: Agent;
  private readonly form: string;
  private readonly hostnames: ReadonlySet<string> | null;

  constructor(c: CaptchaCheck) {
    this.c = c;
    this.url = new URL(c.verifyUrl ?? PROVIDERS[c.provider].verifyUrl);
    this.agent = new Agent({ connect: { timeout: c.timeout }, keepAliveTimeout: 30_000, connections: 32 });
    this.form = `secret=${encodeURIComponent(c.secret)}&response=`;
    this.hostnames = c.hostnames ? new Set(c.hostnames.map((h) => h.toLowerCase())) : null;
  }

  /** Where answers come from, for logs: scheme, host and path only. */
  get endpoint(): string {
    return `${this.url.origin}${this.url.pathname}`;
  }

  async verify(token: string, remoteIp: string): Promise<Verdict> {
    let answer: Answer;
    try {
      // undici's index (for `request`) is loaded by the first verification, not by every gateway: see upstreams/undici.ts.
      const { request } = await import('undici');
      const res = await request(this.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: this.form + encodeURIComponent(token) + (remoteIp ? `&remoteip=${encodeURIComponent(remoteIp)}` : ''),
        headersTimeout: this.c.timeout,
        bodyTimeout: this.c.timeout,
        signal: AbortSignal.timeout(this.c.timeout),
      });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => {});
        return { kind: 'unavailable', reason: `status ${res.statusCode}` };
      }
      answer = JSON.parse(await readBounded(res.body)) as Answer;
      if (answer === null || typeof answer !== 'object') return { kind: 'unavailable', reason: 'answer is not a JSON object' };
    } catch (e) {
      const err = e as { code?: string; name?: string };
      return { kind: 'unavailable', reason: err.name === 'TimeoutError' || err.name === 'AbortError' ? 'timeout' : err.code ?? err.name ?? 'error' };
    }
    return this.judge(answer);
  }

  judge(a: Answer, now = Date.now()): Verdict {
    const spec = PROVIDERS[this.c.provider];
    if (a.success !== true) {
      const codes = Array.isArray(a['error-codes']) ? a['error-codes'].filter((x): x is string => typeof x === 'string') : [];
      if (codes.some((x) => NOT_THE_USER.has(x))) return { kind: 'unavailable', reason: `provider rejected the verification request (${codes.join(', ')})` };
      return { kind: 'fail', reason: codes.length ? codes.join(', ') : 'not successful' };
    }
    if (spec.hasScore) {
      if (typeof a.score !== 'number') return { kind: 'fail', reason: 'no score' };
      if (a.score < this.c.minScore) return { kind: 'fail', reason: `score ${a.score} below ${this.c.minScore}` };
    }
    if (spec.hasAction && this.c.action !== undefined && a.action !== this.c.action) return { kind: 'fail', reason: 'action does not match' };
    if (this.hostnames !== null && !(typeof a.hostname === 'string' && this.hostnames.has(a.hostname.toLowerCase()))) return { kind: 'fail', reason: 'hostname not allowed' };
    // Every provider reports when the challenge was solved; a token kept (or harvested) for later is refused.
    const solvedAt = typeof a.challenge_ts === 'string' ? Date.parse(a.challenge_ts) : NaN;
    if (Number.isNaN(solvedAt)) return { kind: 'fail', reason: 'no challenge_ts' };
    if (now - solvedAt > this.c.maxAge) return { kind: 'fail', reason: `solved ${Math.round((now - solvedAt) / 1000)} s ago, more than maxAge` };
    return { kind: 'pass' };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

async function readBounded(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > MAX_ANSWER) throw Object.assign(new Error('answer too large'), { code: 'answer_too_large' });
    chunks.push(c);
  }
  return Buffer.concat(chunks, n).toString('utf8');
}
