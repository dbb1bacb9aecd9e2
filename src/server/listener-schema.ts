import { z } from 'zod';
import { obj, duration, positiveInt } from '../config/zod-helpers.ts';

/**
 * `server.tls` and `server.http2`: how the main listener speaks (a leaf schema; the runtime reads it once, at
 * start). Certificate files are re-read when they change on disk (src/server/tls.ts).
 */
export const tlsCertificateSchema = obj({
  cert: z.string().min(1).describe('PEM file: the certificate followed by its chain.'),
  key: z.string().min(1).describe('PEM file: the private key.'),
  serverNames: z.array(z.string().min(1)).min(1).optional().describe('SNI names this certificate answers (`api.example.com`, `*.example.com`); default: the DNS names in its subjectAltName.'),
  default: z.boolean().prefault(false).describe('Answers handshakes without SNI or with a name no certificate lists (default: the first certificate).'),
}).describe('A certificate and its key.');

export const clientAuthSchema = obj({
  ca: z.string().min(1).describe('PEM file of the CA(s) client certificates must chain to.'),
  mode: z.enum(['required', 'optional']).prefault('required').describe('required: a handshake without a valid client certificate fails; optional: it proceeds, unverified.'),
  headers: obj({
    subject: z.string().optional().describe('Request header carrying the verified certificate\'s subject (`CN=alice,O=Acme`).'),
    fingerprint: z.string().optional().describe('Request header carrying its SHA-256 fingerprint (hex).'),
  }).prefault({}).describe('Request headers the upstream gets from a VERIFIED client certificate (inbound copies are always removed).'),
}).describe('Client certificates (mTLS).');

export const tlsSchema = obj({
  certificates: z.array(tlsCertificateSchema).min(1, 'give at least one certificate').describe('Certificates, chosen by SNI: exact names first, then one-label wildcards, else the default one.'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).prefault('TLSv1.2').describe('Lowest TLS version accepted.'),
  clientAuth: clientAuthSchema.optional(),
  reloadInterval: duration.prefault('10s').describe('How often the certificate, key and CA files are checked for changes (a changed set that loads serves new handshakes).'),
});

export const http2Schema = obj({
  enabled: z.boolean().prefault(true).describe('HTTP/2 on the TLS listener, negotiated by ALPN (h2, then http/1.1).'),
  cleartext: z.boolean().prefault(false).describe('Cleartext HTTP/2 (prior knowledge, "h2c") beside HTTP/1.1 on a listener without TLS: for use behind a mesh.'),
  maxConcurrentStreams: positiveInt.prefault(100).describe('Streams one HTTP/2 connection may have open.'),
  idleTimeout: duration.prefault('5m').describe('A connection with no stream and no frame for this long is closed (GOAWAY).'),
  /**
   * Per connection, within `window`: more stream resets by the client (CVE-2023-44487, "rapid reset"), PINGs or
   * SETTINGS frames than these and the connection gets GOAWAY (ENHANCE_YOUR_CALM) and is closed.
   */
  limits: obj({
    window: duration.prefault('10s').describe('The window the counts below are taken over.'),
    maxResets: positiveInt.prefault(200).describe('Client stream resets allowed per window (rapid reset, CVE-2023-44487).'),
    maxPings: positiveInt.prefault(100).describe('PING frames allowed per window.'),
    maxSettings: positiveInt.prefault(100).describe('SETTINGS frames allowed per window.'),
  }).prefault({}).describe('Flood limits per connection: past them the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed.'),
});

export type TlsConfig = z.output<typeof tlsSchema>;
export type Http2Config = z.output<typeof http2Schema>;
