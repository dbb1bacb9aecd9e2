/** Reading credentials off a request without building anything a request does not need. */

/** The token of `Authorization: Bearer <token>`; null when the header uses another scheme or is empty. */
export function bearerToken(header: string): string | null {
  // The scheme is case-insensitive (RFC 9110 §11.1); compared by char code so nothing is allocated.
  if (header.length < 8 || header.charCodeAt(6) !== 32) return null;
  for (let i = 0; i < 6; i++) if ((header.charCodeAt(i) | 0x20) !== BEARER[i]) return null;
  let from = 7;
  while (from < header.length && header.charCodeAt(from) === 32) from++;
  return from < header.length ? header.slice(from) : null;
}
const BEARER = [...'bearer'].map((c) => c.charCodeAt(0));

/** A compact JWS has exactly two dots and no spaces; API keys have neither. */
export function looksLikeJwt(s: string): boolean {
  const a = s.indexOf('.');
  if (a <= 0) return false;
  const b = s.indexOf('.', a + 1);
  return b > a + 1 && s.indexOf('.', b + 1) === -1 && s.indexOf(' ') === -1;
}

/**
 * Removes every `name=` parameter listed in `names` from a raw query string, keeping the others byte for byte.
 * Returns the token (the single value found; null when absent) and the name it came under, the remaining query (null when nothing is
 * left) and whether the parameter was given more than once (ambiguous: rejected by the caller).
 */
export function takeQueryToken(query: string, names: readonly string[]): { token: string | null; name: string | null; rest: string | null; repeated: boolean } {
  let token: string | null = null;
  let found: string | null = null;
  let repeated = false;
  const kept: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = safeDecode(rawName);
    if (name !== null && names.includes(name)) {
      const v = eq < 0 ? '' : safeDecode(part.slice(eq + 1)) ?? '';
      if (token !== null) repeated = true;
      token = v;
      found = name;
      continue;
    }
    kept.push(part);
  }
  return { token: token === '' ? null : token, name: found, rest: kept.length ? kept.join('&') : null, repeated };
}

function safeDecode(s: string): string | null {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return null; }
}
