import { readFileSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import type { Logger } from '../observability/logger.ts';
import type { TlsConfig } from './listener-schema.ts';

/** A certificate file that cannot be used, with the config key it came from. */
export class TlsFileError extends Error {
  readonly path: PropertyKey[];
  constructor(path: PropertyKey[], message: string) {
    super(message);
    this.path = path;
  }
}

interface Certificate {
  names: string[];
  context: SecureContext;
  options: SecureContextOptions;
  notAfter: Date;
}

/** What one read of the files produced: immutable, swapped as a whole when the files change. */
interface CertificateSet {
  exact: Map<string, SecureContext>;
  /** `*.example.com` is stored as `example.com`: it matches exactly one more label. */
  wildcard: Map<string, SecureContext>;
  fallback: Certificate;
  certificates: Certificate[];
}

/**
 * The listener's certificates: several PEM cert/key pairs (with chains) chosen by SNI (exact names first, then
 * `*.example.com` for one label), a default one for handshakes without SNI or with a name none lists, an optional
 * CA for client certificates. The files are checked every `reloadInterval` and re-read when one changed: new
 * handshakes get the new certificates, connections already open keep theirs. A set that does not load (a key that
 * does not match its certificate half-way through a rotation) is logged and the previous set keeps serving.
 */
export class TlsCertificates {
  private set: CertificateSet;
  private signature: string;
  private failedSignature = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly cfg: TlsConfig;
  private readonly logger: Logger;
  private onChange: ((set: { certificates: ReadonlyArray<{ names: string[]; notAfter: Date }> }) => void) | null = null;

  /** Reads every file now; throws TlsFileError (with the config key) when one is missing or unusable. */
  constructor(cfg: TlsConfig, logger: Logger) {
    this.cfg = cfg;
    this.logger = logger;
    this.set = load(cfg);
    this.signature = this.files().map(signatureOf).join('|');
  }

  /** The server options: the default certificate, SNI selection, minimum version, client certificates. */
  serverOptions(): TlsOptions {
    const ca = this.cfg.clientAuth;
    return {
      ...this.set.fallback.options,
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      requestCert: ca !== undefined,
      rejectUnauthorized: ca?.mode === 'required',
    };
  }

  /** The context for an SNI name: exact, then one-label wildcard, then the default certificate. */
  contextFor(servername: string): SecureContext {
    const s = this.set;
    const name = servername.toLowerCase();
    const exact = s.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return (dot > 0 ? s.wildcard.get(name.slice(dot + 1)) : undefined) ?? s.fallback.context;
  }

  get certificates(): ReadonlyArray<{ names: string[]; notAfter: Date }> {
    return this.set.certificates;
  }

  /**
   * Starts checking the files. `apply` installs the new default certificate on the server (setSecureContext);
   * SNI lookups read the new set at once.
   */
  watch(apply: (defaultOptions: SecureContextOptions) => void, onChange?: (set: { certificates: ReadonlyArray<{ names: string[]; notAfter: Date }> }) => void): void {
    this.onChange = onChange ?? null;
    this.onChange?.(this.set);
    this.timer = setInterval(() => this.check(apply), this.cfg.reloadInterval);
    this.timer.unref();
  }

  /** Re-reads the files if any changed since the last successful read. Returns whether a new set is serving. */
  check(apply: (defaultOptions: SecureContextOptions) => void): boolean {
    let sig: string;
    try { sig = this.files().map(signatureOf).join('|'); } catch { sig = 'unreadable'; }
    if (sig === this.signature) return false;
    let next: CertificateSet;
    try {
      next = load(this.cfg);
    } catch (e) {
      // Once per state of the files, not once per check: a rotation that writes the key a moment after the certificate resolves itself.
      if (sig !== this.failedSignature) this.logger.error({ error: (e as Error).message }, 'tls: certificate files changed but do not load; the previous certificates keep serving');
      this.failedSignature = sig;
      return false;
    }
    this.set = next;
    this.signature = sig;
    this.failedSignature = '';
    apply(next.fallback.options);
    this.onChange?.(next);
    this.logger.info({ certificates: next.certificates.map((c) => ({ names: c.names, notAfter: c.notAfter.toISOString() })) }, 'tls: certificates reloaded from disk');
    return true;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private files(): string[] {
    const f = this.cfg.certificates.flatMap((c) => [c.cert, c.key]);
    if (this.cfg.clientAuth !== undefined) f.push(this.cfg.clientAuth.ca);
    return f;
  }
}

function signatureOf(file: string): string {
  // stat() follows symlinks: a Kubernetes Secret update (a swapped `..data` link) changes what it reports.
  const s = statSync(file);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

function read(file: string, path: PropertyKey[]): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TlsFileError(path, `cannot read "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function load(cfg: TlsConfig): CertificateSet {
  const ca = cfg.clientAuth !== undefined ? read(cfg.clientAuth.ca, ['server', 'tls', 'clientAuth', 'ca']) : undefined;
  if (ca !== undefined) {
    try { new X509Certificate(ca); } catch { throw new TlsFileError(['server', 'tls', 'clientAuth', 'ca'], `"${cfg.clientAuth!.ca}" is not a PEM certificate`); }
  }
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const certificates: Certificate[] = [];
  let fallback: Certificate | undefined;
  cfg.certificates.forEach((c, i) => {
    const at = (k: string) => ['server', 'tls', 'certificates', i, k];
    const cert = read(c.cert, at('cert'));
    const key = read(c.key, at('key'));
    let x509: X509Certificate;
    try { x509 = new X509Certificate(cert); } catch { throw new TlsFileError(at('cert'), `"${c.cert}" is not a PEM certificate`); }
    const options: SecureContextOptions = { cert, key, minVersion: cfg.minVersion, ...(ca !== undefined ? { ca } : {}) };
    let context: SecureContext;
    try {
      context = createSecureContext(options);
    } catch (e) {
      throw new TlsFileError(at('key'), `"${c.key}" does not go with "${c.cert}": ${(e as Error).message}`);
    }
    const names = (c.serverNames ?? namesOf(x509)).map((n) => n.toLowerCase());
    const entry: Certificate = { names, context, options, notAfter: new Date(x509.validTo) };
    certificates.push(entry);
    if (c.default && fallback === undefined) fallback = entry;
    for (const n of names) {
      if (n.startsWith('*.')) { if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), context); }
      else if (!exact.has(n)) exact.set(n, context);
    }
  });
  return { exact, wildcard, fallback: fallback ?? certificates[0], certificates };
}

/** DNS names of a certificate's subjectAltName, else its subject CN. */
function namesOf(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  const dns = san === undefined ? [] : san.split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  if (dns.length > 0) return dns;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn !== undefined ? [cn] : [];
}

/** What the upstream may learn about a verified client certificate (only ever from a verified one). */
export interface PeerCertificateSource {
  authorized?: boolean;
  getPeerCertificate?: (detailed?: boolean) => { subject?: Record<string, string | string[]>; fingerprint256?: string } | null;
}

/** The verified client certificate's subject as `CN=client-a,O=Acme` (RFC 4514 order is not kept: OpenSSL's), or undefined. */
export function verifiedPeer(socket: PeerCertificateSource): { subject: string; fingerprint: string } | undefined {
  if (socket.authorized !== true || socket.getPeerCertificate === undefined) return undefined;
  const c = socket.getPeerCertificate(false);
  if (c === null || c.subject === undefined) return undefined;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(c.subject)) for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${escapeDn(one)}`);
  return { subject: parts.join(','), fingerprint: (c.fingerprint256 ?? '').replace(/:/g, '').toLowerCase() };
}

function escapeDn(v: string): string {
  const s = v.replace(/[\\,+"<>;=]/g, (ch) => '\\' + ch);
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s);
}
