import type { UpstreamConfig } from './schema.ts';

/**
 * What an LLM provider upstream does to every request sent to it (any route, every attempt, fallbacks included):
 * the client's own credentials and account selectors are removed, and the provider's key, which only the gateway
 * holds, is written in the provider's header. Compiled once per upstream; the key never reaches a log or a label.
 */
export type HeaderEdit = (headers: Record<string, string | string[]>) => void;

/**
 * Headers a client may use to pass a credential or choose whose account pays: they belong to whoever holds the
 * provider key (the gateway). `anthropic-version` and `anthropic-beta` are API options, not credentials: kept.
 */
const CLIENT_CREDENTIALS = ['authorization', 'x-api-key', 'api-key', 'openai-organization', 'openai-project'] as const;
export const ANTHROPIC_VERSION = '2023-06-01';

export function providerHeaders(cfg: Pick<UpstreamConfig, 'provider' | 'apiKey'>): HeaderEdit | null {
  const key = cfg.apiKey === '' ? undefined : cfg.apiKey;
  switch (cfg.provider) {
    case undefined: return null;
    case 'anthropic':
      return (h) => {
        for (const n of CLIENT_CREDENTIALS) delete h[n];
        if (key !== undefined) h['x-api-key'] = key;
        if (h['anthropic-version'] === undefined) h['anthropic-version'] = ANTHROPIC_VERSION;
      };
    default: {
      const bearer = key !== undefined ? `Bearer ${key}` : undefined;
      return (h) => {
        for (const n of CLIENT_CREDENTIALS) delete h[n];
        if (bearer !== undefined) h.authorization = bearer;
      };
    }
  }
}

/**
 * How long a candidate should be left alone after it answered `status` (model failover): the provider's own word
 * when it gives one — `Retry-After` (seconds or an HTTP date), `retry-after-ms`, OpenAI's `x-ratelimit-reset-*`
 * (Go durations: `1s`, `6m0s`, `20ms`), Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339) — else `fallback` for
 * a 429 and nothing for a 5xx. Capped at `max`, so a bogus header cannot park a provider for a day.
 */
export function coolingMs(status: number, raw: ReadonlyArray<Buffer | string> | null, fallback: number, max: number, now = Date.now()): number {
  let retryAfter = -1;
  let reset = -1;
  if (raw !== null) {
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString().toLowerCase();
      if (name !== 'retry-after' && name !== 'retry-after-ms' && !name.startsWith('x-ratelimit-reset') && !(name.startsWith('anthropic-ratelimit-') && name.endsWith('-reset'))) continue;
      const v = raw[i + 1].toString().trim();
      if (name === 'retry-after-ms') { const n = Number(v); if (Number.isFinite(n) && n >= 0) retryAfter = Math.max(retryAfter, n); }
      else if (name === 'retry-after') {
        const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
        if (Number.isFinite(n)) retryAfter = Math.max(retryAfter, Math.max(0, n));
      } else if (name.startsWith('x-ratelimit-reset')) {
        const n = goDuration(v);
        if (n >= 0) reset = Math.max(reset, n);
      } else {
        const at = Date.parse(v);
        if (Number.isFinite(at)) reset = Math.max(reset, at - now);
      }
    }
  }
  const ms = retryAfter >= 0 ? retryAfter : reset >= 0 ? reset : status === 429 ? fallback : 0;
  return Math.min(Math.max(0, Math.ceil(ms)), max);
}

/** `1m30.5s`, `20ms`, `2h`, `0.5s` → ms; -1 when it is not one. */
function goDuration(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(v)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    end = re.lastIndex;
  }
  return end === v.length && end > 0 ? total : -1;
}
