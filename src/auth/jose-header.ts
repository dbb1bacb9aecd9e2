/**
 * Strictness jose leaves to the caller (RFC 7515 §2, §3.1; RFC 8725 §3.9): every segment canonical base64url (no
 * `=` padding, no other alphabet, no stray bits in the last character, so one signature has one spelling), and a
 * JOSE header with no member named twice (JSON.parse keeps the last `alg`; another parser may keep the first).
 * Only the header segment is decoded: it is tens of bytes; the payload is left to jose.
 * Returns a client-safe description of the problem, or null.
 */
export function joseHeaderProblem(token: string): string | null {
  const a = token.indexOf('.');
  const b = a < 0 ? -1 : token.indexOf('.', a + 1);
  if (b < 0 || token.indexOf('.', b + 1) >= 0) return null; // not three segments: jose says malformed
  if (!B64URL.test(token)) return PADDED.test(token) ? NOT_CANONICAL : MALFORMED;
  const header = token.slice(0, a);
  const sig = token.slice(b + 1);
  if (header.length % 4 === 1 || sig.length % 4 === 1) return MALFORMED; // no byte string encodes to that length
  if (!canonical(header) || !canonical(sig)) return NOT_CANONICAL;
  if (duplicateMember(Buffer.from(header, 'base64url').toString('utf8'))) return 'The token header names a member twice.';
  return null;
}

const B64URL = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;
/** Base64 spellings (padding, the standard alphabet) of what would otherwise be a token. */
const PADDED = /^[A-Za-z0-9_\-+/=]+\.[A-Za-z0-9_\-+/=]*\.[A-Za-z0-9_\-+/=]*$/;
const NOT_CANONICAL = 'The token is not canonical base64url.';
const MALFORMED = 'The token is malformed.';

function canonical(seg: string): boolean {
  return Buffer.from(seg, 'base64url').toString('base64url') === seg;
}

/** True when the top-level object repeats a member name (compared after JSON unescaping). Malformed JSON: false (jose refuses it). */
export function duplicateMember(json: string): boolean {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) { // "
      let j = i + 1;
      while (j < json.length && json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c ? 2 : 1;
      if (depth === 1 && expectKey) {
        let name: string;
        try { name = JSON.parse(json.slice(i, j + 1)) as string; } catch { return false; }
        if (seen.has(name)) return true;
        seen.add(name);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) { depth++; if (depth === 1) expectKey = c === 0x7b; }
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 1) expectKey = true;
  }
  return false;
}
