import type { Config } from './schema.ts';
import type { Issue } from './errors.ts';

/**
 * Startup safety for secrets: a placeholder or empty secret in production refuses to load (seed 001's
 * reCAPTCHA secret defaulted to "your_secret_key" and failed silently); in development and staging it
 * is a warning. Messages name the key, never the value.
 */

const PLACEHOLDERS = new Set([
  'your_secret_key', 'changeme', 'change_me', 'change-me', 'secret', 'password', 'passw0rd', 'admin', 'token',
  'default', 'example', 'placeholder', 'test', 'todo', 'xxx', 'none', 'null', 'undefined',
  'dev-secret-key-change-in-production', 'dev-gateway-key-12345',
]);

/** The providers' published test secrets: every token passes (or fails) with them. Fine in development, never in production. */
const TEST_SECRETS = new Set([
  '6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe', // reCAPTCHA
  '0x0000000000000000000000000000000000000000', // hCaptcha
  '1x0000000000000000000000000000000AA', '2x0000000000000000000000000000000AA', '3x0000000000000000000000000000000AA', // Turnstile
]);

export const MIN_HS_SECRET_BYTES = 32;

/** Why a secret value is unacceptable, or null. Never echoes the value. */
export function placeholderReason(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (v === '') return 'is empty';
  if (PLACEHOLDERS.has(v) || v.startsWith('your_') || v.startsWith('your-') || v.startsWith('change') || v.includes('change-in-production') || v.includes('change_in_production')) {
    return 'is a placeholder value';
  }
  return null;
}

export function checkSecrets(c: Config): Issue[] {
  const production = c.server.environment === 'production';
  const out: Issue[] = [];
  const flag = (path: PropertyKey[], why: string) => out.push(production
    ? { path, message: `${why}; refusing to start in production (set a real secret, e.g. from an environment variable)` }
    : { path, message: `${why}; this would refuse to start in production`, warning: true });

  for (const [name, cap] of Object.entries(c.captcha)) {
    const why = placeholderReason(cap.secret);
    if (why !== null) flag(['captcha', name, 'secret'], why);
    else if (production && TEST_SECRETS.has(cap.secret.trim())) flag(['captcha', name, 'secret'], "is the provider's public test secret, which does not verify anything");
  }
  c.auth.jwt.forEach((p, i) => {
    if (p.secret === undefined) return;
    const bytes = Buffer.byteLength(p.secret, 'utf8');
    const why = placeholderReason(p.secret) ?? (bytes < MIN_HS_SECRET_BYTES ? `is ${bytes} bytes; HS secrets need at least ${MIN_HS_SECRET_BYTES} random bytes` : null);
    if (why !== null) flag(['auth', 'jwt', i, 'secret'], why);
  });
  for (const [name, u] of Object.entries(c.upstreams)) {
    // An openai-compatible server may take no key: `apiKey: "${VLLM_KEY:-}"` left empty means none.
    if (u.apiKey === undefined || (u.apiKey === '' && u.provider === 'openai-compatible')) {
      if (u.provider === 'openai' || u.provider === 'anthropic') flag(['upstreams', name, 'apiKey'], `is not set (a ${u.provider} upstream needs the provider's key)`);
      continue;
    }
    const why = placeholderReason(u.apiKey) ?? (/^(sk-)?(x+|\.+|\*+|test|dummy|fake)$/i.test(u.apiKey.trim()) ? 'is a placeholder value' : null);
    if (why !== null) flag(['upstreams', name, 'apiKey'], why);
  }
  // An empty admin token means "no token" (the admin listener is loopback by default); a set one must be real.
  if (c.admin.token !== '') {
    const why = placeholderReason(c.admin.token);
    if (why !== null) flag(['admin', 'token'], why);
  }
  return out;
}
