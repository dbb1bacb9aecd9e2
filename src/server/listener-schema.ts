import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';

/**
 * `server.tls` and `server.http2`: how the main listener speaks (a leaf schema; the runtime reads it once, at
 * start). Certificate files are re-read when they change on disk (src/server/tls.ts).
 */
export const tlsCertificateSchema = obj({
  /** PEM file: the certificate followed by its chain. */
  cert: z.string().min(1),
  /** PEM file: the private key. */
  key: z.string().min(1),
  /** SNI names this certificate answers (`api.example.com`, `*.example.com`); default: the DNS names in its subjectAltName. */
  serverNames: z.array(z.string().min(1)).min(1).optional(),
  /** Answers handshakes without SNI or with a name no certificate lists (default: the first certificate). */
  default: z.boolean().prefault(false),
});

export const clientAuthSchema = obj({
  /** PEM file of the CA(s) client certificates must chain to. */
  ca: z.string().min(1),
  /** required: a handshake without a valid client certificate fails; optional: it proceeds, unverified. */
  mode: z.enum(['required', 'optional']).prefault('required'),
  /** Request headers the upstream gets from a VERIFIED client certificate (inbound copies are always removed). */
  headers: obj({ subject: z.string().optional(), fingerprint: z.string().optional() }).prefault({}),
});

export const tlsSchema = obj({
  certificates: z.array(tlsCertificateSchema).min(1, 'give at least one certificate'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).prefault('TLSv1.2'),
  clientAuth: clientAuthSchema.optional(),
  /** How often the certificate, key and CA files are checked for changes (they are reloaded when they change). */
  reloadInterval: duration.prefault('10s'),
});

export const http2Schema = obj({
  /** HTTP/2 on the TLS listener, negotiated by ALPN (h2, then http/1.1). */
  enabled: z.boolean().prefault(true),
  /** Cleartext HTTP/2 (prior knowledge, "h2c") beside HTTP/1.1 on a listener without TLS: for use behind a mesh. */
  cleartext: z.boolean().prefault(false),
  maxConcurrentStreams: positiveInt.prefault(100),
  /** A connection with no stream and no frame for this long is closed (GOAWAY). */
  idleTimeout: duration.prefault('5m'),
  /**
   * Per connection, within `window`: more stream resets by the client (CVE-2023-44487, "rapid reset"), PINGs or
   * SETTINGS frames than these and the connection gets GOAWAY (ENHANCE_YOUR_CALM) and is closed.
   */
  limits: obj({
    window: duration.prefault('10s'),
    maxResets: positiveInt.prefault(200),
    maxPings: positiveInt.prefault(100),
    maxSettings: positiveInt.prefault(100),
  }).prefault({}),
});

export type TlsConfig = z.output<typeof tlsSchema>;
export type Http2Config = z.output<typeof http2Schema>;
