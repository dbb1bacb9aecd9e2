/**
 * The gateway's edge rules applied to an upstream response's headers (flat [name, value, ...]), in place:
 * on a route that answers CORS itself the upstream's Access-Control-* headers go (two answers would
 * contradict each other, and a disallowed origin must get none); `defaults` (lowercase names, at most
 * 31 pairs) are added only where the upstream did not send the same header.
 * Runs on every proxied response: names are compared by length, then char by char, without lowercasing copies.
 */
export function applyEdgeHeaders(headers: string[], defaults: readonly string[] | null, dropCors: boolean): void {
  let seen = 0;
  let w = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const len = name.length;
    if (dropCors && len > 15 && sameLower(name, 'access-control-', 15)) continue;
    if (defaults !== null) {
      for (let j = 0; j < defaults.length; j += 2) {
        const d = defaults[j];
        if (d.length === len && sameLower(name, d, len)) seen |= 1 << (j >> 1);
      }
    }
    if (w !== i) { headers[w] = name; headers[w + 1] = headers[i + 1]; }
    w += 2;
  }
  // pop() keeps the array's fast elements mode; assigning `length` does not.
  while (headers.length > w) headers.pop();
  if (defaults !== null) for (let j = 0; j < defaults.length; j += 2) if ((seen & (1 << (j >> 1))) === 0) headers.push(defaults[j], defaults[j + 1]);
}

/** Whether the first `n` chars of `s` equal `lower` (already lowercase), ignoring ASCII case. */
function sameLower(s: string, lower: string, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && (c | 0x20) !== l) return false;
  }
  return true;
}
