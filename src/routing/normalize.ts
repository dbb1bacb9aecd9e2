/**
 * Canonical request paths, so that what is matched is exactly what the upstream receives.
 * - percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded; other escapes are kept, upper-cased;
 * - encoded "/", "\" or NUL, a raw "\", and escapes that do not decode to valid UTF-8 are refused;
 * - duplicate slashes are collapsed and dot-segments removed (RFC 3986 §5.2.4);
 * - a dot-segment with path parameters (`..;x`, `.;`) is refused: Tomcat, Jetty and Spring strip `;…` and then
 *   resolve it, so `/public/..;/admin` would reach an upstream as `/admin` after matching under `/public`.
 * Returns null for a path that must be refused with 400.
 */
export function normalizePath(path: string): string | null {
  if (path.charCodeAt(0) !== 47 /* / */) return null;
  // Fast path: nothing to decode or collapse, the common case.
  if (!/%|\/\/|\/\.|\\/.test(path)) return path;
  if (path.includes('\\')) return null;

  let decoded = path;
  if (path.includes('%')) {
    let out = '';
    for (let i = 0; i < path.length; i++) {
      const ch = path[i];
      if (ch !== '%') { out += ch; continue; }
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      const byte = parseInt(hex, 16);
      if (byte === 0x2f || byte === 0x5c || byte === 0x00) return null;
      out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${hex.toUpperCase()}`;
      i += 2;
    }
    try { decodeURIComponent(out); } catch { return null; }
    decoded = out;
  }

  const segments = decoded.split('/');
  const stack: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    if (s.charCodeAt(0) === 46 /* . */ && (s.startsWith('.;') || s.startsWith('..;'))) return null;
    const last = i === segments.length - 1;
    if (s === '..') { stack.pop(); if (last) stack.push(''); }
    else if (s === '.') { if (last) stack.push(''); }
    else if (s === '' && !last) continue;
    else stack.push(s);
  }
  return '/' + stack.join('/');
}

function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** Splits a request target into path and raw query (byte for byte, without the "?"). */
export function splitTarget(url: string): { path: string; query: string | null } {
  let u = url;
  if (u.charCodeAt(0) !== 47) {
    // absolute-form (RFC 9112 §3.2.2): keep only the path
    const m = /^https?:\/\/[^/?#]*/i.exec(u);
    if (!m) return { path: '', query: null };
    u = u.slice(m[0].length) || '/';
    if (u[0] === '?') u = '/' + u;
  }
  const q = u.indexOf('?');
  return q === -1 ? { path: u, query: null } : { path: u.slice(0, q), query: u.slice(q + 1) };
}
