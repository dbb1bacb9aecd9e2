import { BlockList, isIP } from 'node:net';

/**
 * Whose X-Forwarded-For we believe. The client IP is the right-most address in the
 * forwarding chain that is not a trusted proxy; with an untrusted peer it is the peer itself.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: string[]) {
    for (const c of cidrs) {
      const [ip, bits] = c.split('/');
      const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(ip, type);
      else this.list.addSubnet(ip, Number(bits), type);
    }
    this.empty = cidrs.length === 0;
  }

  trusts(ip: string): boolean {
    if (this.empty || !ip) return false;
    const v = isIP(ip);
    if (v === 0) return false;
    if (v === 6 && ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return this.list.check(ip.slice(7), 'ipv4');
    return this.list.check(ip, v === 6 ? 'ipv6' : 'ipv4');
  }

  /** Resolves the client address from the peer and its X-Forwarded-For (only if the peer is trusted). */
  clientIp(peer: string, xff: string | undefined): string {
    if (xff === undefined || !this.trusts(peer)) return peer;
    const hops = xff.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i].trim();
      if (!isIP(hop)) return peer; // garbage in the chain: trust nothing past it
      if (!this.trusts(hop)) return hop;
    }
    return hops[0].trim();
  }
}

/** IPv4-mapped IPv6 peers ("::ffff:1.2.3.4") are reported as plain IPv4. */
export function peerAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
