// Shared pieces of the auth tests: key pairs, token signing, and a real JWKS HTTP server that counts fetches.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, type JWK, type JWTPayload } from 'jose';

export const SECRET = 'test-secret-that-is-long-enough-for-hs512-0123456789';
export const secretBytes = (s = SECRET) => new TextEncoder().encode(s);

export interface KeyPair { publicKey: KeyObject; privateKey: KeyObject; pem: string }

export function keyPair(kind: 'rsa' | 'rsa-pss' | 'ec-256' | 'ec-384' | 'ed25519'): KeyPair {
  const kp = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : kind === 'rsa-pss' ? generateKeyPairSync('rsa-pss', { modulusLength: 2048 })
    : kind === 'ec-256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : kind === 'ec-384' ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
    : generateKeyPairSync('ed25519');
  return { ...kp, pem: kp.publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

export interface SignOptions {
  alg: string;
  kid?: string;
  sub?: string;
  iss?: string;
  aud?: string | string[];
  /** Seconds from now; a negative value makes an expired token. undefined: 1 hour. null: no exp. */
  exp?: number | null;
  /** Seconds from now. */
  nbf?: number;
  claims?: JWTPayload;
}

export function sign(key: KeyObject | Uint8Array, o: SignOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const j = new SignJWT({ ...o.claims }).setProtectedHeader(o.kid ? { alg: o.alg, kid: o.kid } : { alg: o.alg }).setIssuedAt(now);
  if (o.sub !== undefined) j.setSubject(o.sub); else j.setSubject('user-1');
  if (o.iss !== undefined) j.setIssuer(o.iss);
  if (o.aud !== undefined) j.setAudience(o.aud);
  if (o.exp !== null) j.setExpirationTime(now + (o.exp ?? 3600));
  if (o.nbf !== undefined) j.setNotBefore(now + o.nbf);
  return j.sign(key);
}

/** An unsigned token (`alg: none`), hand-built: jose refuses to make one for verification paths. */
export function unsignedToken(payload: JWTPayload): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'none', typ: 'JWT' })}.${b(payload)}.`;
}

export async function publicJwk(kp: KeyPair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(kp.publicKey)), kid, alg, use: 'sig' };
}

export interface JwksServer {
  url: string;
  /** Completed GETs of the key set. */
  fetches: number;
  keys: JWK[];
  cacheControl: string | undefined;
  /** Delays each answer (to make concurrent misses overlap a fetch). */
  delayMs: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[], cacheControl?: string): Promise<JwksServer> {
  const sockets = new Set<Socket>();
  const state: JwksServer = {
    url: '', fetches: 0, keys, cacheControl, delayMs: 0,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
  const server: Server = createServer((req, res) => {
    state.fetches++;
    const body = JSON.stringify({ keys: state.keys });
    const send = () => {
      const h: Record<string, string> = { 'content-type': 'application/jwk-set+json' };
      if (state.cacheControl) h['cache-control'] = state.cacheControl;
      res.writeHead(200, h).end(body);
    };
    if (state.delayMs) setTimeout(send, state.delayMs); else send();
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return state;
}
