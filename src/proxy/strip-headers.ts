/**
 * Which inbound request headers never reach an upstream: the identity headers the gateway sets, and
 * `server.stripHeaders` (names and `prefix-*` patterns). Names are compared after folding case, `_` and `.`
 * into `-`: WSGI/CGI servers, PHP and several proxies map `X_User_Id`, `X.User.Id` and `X-User-Id` to the
 * same variable, so a look-alike of a stripped name is as good as the name itself to an upstream.
 */

/** The names `server.stripHeaders` holds unless the file sets its own list. */
export const DEFAULT_STRIP_HEADERS: readonly string[] = [
  // CVE-2025-29927: Next.js skips its middleware (often the auth check) for a request carrying this header.
  'x-middleware-subrequest',
  // The gateway's own namespaces: what it sets there must never be forgeable by a client.
  'x-gateway-*', 'x-consumer-*',
  // IIS/Symfony/Laminas read the real target from these and route past the gateway's path checks.
  'x-original-url', 'x-rewrite-url',
];

/** A header name as an upstream framework may see it: lowercase, `_` and `.` as `-`. Returns `name` itself when nothing folds. */
export function foldHeaderName(name: string): string {
  let out: string | null = null;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // '_' (95) and '.' (46) fold into '-'; Node already lowercases inbound names, config names may not be.
    if (c === 95 || c === 46 || (c >= 65 && c <= 90)) { out = name.toLowerCase().replace(/[_.]/g, '-'); break; }
  }
  return out ?? name;
}

/** Whether a (folded) header name is one to strip. */
export interface HeaderFilter {
  has(folded: string): boolean;
}

/** Built once per generation from the identity headers and `server.stripHeaders`. */
export function compileHeaderFilter(identity: Iterable<string>, patterns: readonly string[]): HeaderFilter {
  const exact = new Set<string>();
  for (const n of identity) exact.add(foldHeaderName(n));
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('*')) prefixes.push(foldHeaderName(p.slice(0, -1)));
    else exact.add(foldHeaderName(p));
  }
  if (prefixes.length === 0) return exact;
  const strips = (n: string): boolean => {
    if (exact.has(n)) return true;
    for (const p of prefixes) if (n.startsWith(p)) return true;
    return false;
  };
  // Header names repeat from request to request: one Map lookup per header once a name has been seen. Bounded, so
  // random names cost a prefix scan each, not memory.
  const memo = new Map<string, boolean>();
  return {
    has(n: string): boolean {
      const m = memo.get(n);
      if (m !== undefined) return m;
      const r = strips(n);
      if (memo.size < MEMO_MAX) memo.set(n, r);
      return r;
    },
  };
}

const MEMO_MAX = 4096;
