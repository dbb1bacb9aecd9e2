// Header names that carry credentials count too: a route's `check.headers` or a header rule may hold one.
const SECRET_KEYS = /secret|token|password|privatekey|api[-_]?key|^keys$|^authorization$|^proxy-authorization$|cookie/i;

/** A copy of the config with every secret replaced, for /admin/config and `gatehouse validate --print`. */
export function maskSecrets(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return SECRET_KEYS.test(key) ? v.map(() => '***') : v.map((x) => maskSecrets(x));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      // The collector's export headers (observability.tracing.headers) are credentials whatever their names.
      if (key === 'tracing' && k === 'headers' && x && typeof x === 'object') out[k] = Object.fromEntries(Object.keys(x).map((h) => [h, '***']));
      else out[k] = maskSecrets(x, k);
    }
    return out;
  }
  if (typeof v === 'string' && SECRET_KEYS.test(key) && v !== '') return '***';
  if (typeof v === 'string' && /^[a-z]+:\/\/[^/]*:[^/@]*@/i.test(v)) return v.replace(/\/\/([^/:]*):[^/@]*@/, '//$1:***@');
  return v;
}
