import type { Issue } from '../config/errors.ts';
import type { Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { RESERVED_HEADERS } from '../auth/identity-headers.ts';
import { verifiedPeer, type PeerCertificateSource } from '../server/tls.ts';
import { HEADER_NAME } from './header-syntax.ts';

interface Needs { server: { tls?: { clientAuth?: { headers: { subject?: string; fingerprint?: string } } } } }

/**
 * `server.tls.clientAuth.headers`: the subject (and SHA-256 fingerprint) of a VERIFIED client certificate sent
 * upstream as request headers, like `claimsToHeaders` does for a token. Inbound copies are removed on every route,
 * so an upstream can trust them; a connection without a verified certificate (clientAuth `optional`) sends none.
 * A server-level setting: compiled into every route when headers are configured, nothing otherwise.
 */
export const clientCertPolicy: Policy<Needs, unknown> = {
  name: 'client-cert',
  check(c, out: Issue[]) {
    const h = c.server.tls?.clientAuth?.headers;
    if (h === undefined) return;
    for (const k of ['subject', 'fingerprint'] as const) {
      const name = h[k];
      if (name === undefined) continue;
      const path = ['server', 'tls', 'clientAuth', 'headers', k];
      if (!HEADER_NAME.test(name)) out.push({ path, message: `"${name}" is not a header name` });
      else if (RESERVED_HEADERS.has(name.toLowerCase())) out.push({ path, message: `"${name}" is a header the gateway or the protocol owns; pick another name` });
    }
  },
  compile({ config, env }) {
    const h = config.server.tls?.clientAuth?.headers;
    const subject = h?.subject?.toLowerCase();
    const fingerprint = h?.fingerprint?.toLowerCase();
    if (subject === undefined && fingerprint === undefined) return undefined;
    if (subject !== undefined) env.identityHeaders.add(subject);
    if (fingerprint !== undefined) env.identityHeaders.add(fingerprint);
    const step: Step = (ctx) => {
      // Over HTTP/2 req.socket forwards to the connection's TLS socket.
      const peer = verifiedPeer(ctx.req.socket as PeerCertificateSource);
      if (peer === undefined) return;
      if (subject !== undefined) ctx.addUpstreamHeader(subject, peer.subject);
      if (fingerprint !== undefined) ctx.addUpstreamHeader(fingerprint, peer.fingerprint);
    };
    return step;
  },
};
