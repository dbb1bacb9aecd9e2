import { createHash } from 'node:crypto';

/**
 * What a rate-limit tier is keyed by, as a partition string ("c:acme", "ip:203.0.113.7",
 * "ip:2001:db8:0:1::/64", "r:chat", "h:x-tenant:…"). Rules with the same `by` share a partition
 * on a request, which lets the Redis store decide them in one script (one hash tag).
 */

/** IPv4 as is; IPv6 aggregated to its /64 (one subscriber usually holds a whole /64). */
export function ipPartition(ip: string): string {
  if (ip.indexOf(':') < 0) return 'ip:' + ip;
  return 'ip:' + ipv6Prefix64(ip);
}

/** "2001:db8:0:1::/64" for any address in that /64; zone ids are dropped. */
export function ipv6Prefix64(ip: string): string {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  let groups: string[];
  const dbl = s.indexOf('::');
  if (dbl < 0) groups = s.split(':');
  else {
    const head = dbl === 0 ? [] : s.slice(0, dbl).split(':');
    const rest = s.slice(dbl + 2);
    const tail = rest === '' ? [] : rest.split(':');
    // an embedded IPv4 tail ("::ffff:1.2.3.4") stands for two groups
    const tailGroups = tail.length + (tail.length > 0 && tail[tail.length - 1].includes('.') ? 1 : 0);
    groups = head;
    for (let i = head.length + tailGroups; i < 8; i++) groups.push('0');
    for (const t of tail) groups.push(t);
  }
  let out = '';
  for (let i = 0; i < 4; i++) out += (i ? ':' : '') + (parseInt(groups[i] ?? '0', 16) || 0).toString(16);
  return out + '::/64';
}

/**
 * Header values are hashed: a header may carry a credential, and a key in Redis is readable by
 * whoever can read Redis. Missing headers share one partition (they are not exempt).
 */
export function headerPartition(name: string, value: string | string[] | undefined): string {
  if (value === undefined) return 'h:' + name + ':-';
  const v = Array.isArray(value) ? value.join(',') : value;
  return 'h:' + name + ':' + createHash('sha256').update(v).digest('base64url').slice(0, 22);
}

/**
 * `by: body.project_id | query.x | path.x`: the value is hashed like a header's (a field may carry anything a
 * client chose, of any length; the key stays 22 characters and says nothing about the value).
 */
export function fieldPartition(kind: string, name: string, value: string): string {
  return 'f:' + kind + '.' + name + ':' + createHash('sha256').update(value).digest('base64url').slice(0, 22);
}
