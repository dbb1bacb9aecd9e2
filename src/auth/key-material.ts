import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Every JWS algorithm a provider may allow. `none` is deliberately absent: it can never be configured. */
export const HS_ALGS = ['HS256', 'HS384', 'HS512'] as const;
export const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
export const ASYMMETRIC_ALGS = [...RSA_ALGS, 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwsAlg = (typeof HS_ALGS)[number] | (typeof ASYMMETRIC_ALGS)[number];

export const isHmac = (alg: string): boolean => alg.startsWith('HS');

const CURVE_ALG: Record<string, JwsAlg> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/**
 * The verification key of a `publicKey:` provider: inline PEM (starts with "-----BEGIN") or a file path
 * (relative to the working directory). A private key PEM is accepted and only its public half is kept.
 */
export function loadPublicKey(spec: string): KeyObject {
  const pem = spec.trimStart().startsWith('-----BEGIN') ? spec : readKeyFile(spec);
  try {
    return createPublicKey(pem);
  } catch {
    throw new Error('publicKey is not a PEM public key (SPKI "BEGIN PUBLIC KEY", PKCS#1 "BEGIN RSA PUBLIC KEY" or a certificate)');
  }
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read publicKey file "${path}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The algorithms a key can verify; the default allowlist of a `publicKey:` provider. */
export function algorithmsForKey(key: KeyObject): JwsAlg[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return [...RSA_ALGS];
    // WebCrypto cannot import an id-RSASSA-PSS SPKI; the same key as a plain RSA key verifies PS256/384/512.
    case 'rsa-pss': throw new Error('publicKey is an RSASSA-PSS key; export it as a plain RSA public key ("BEGIN PUBLIC KEY" with rsaEncryption), which verifies PS256/384/512');
    case 'ec': {
      const alg = CURVE_ALG[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!alg) throw new Error(`publicKey uses the curve ${key.asymmetricKeyDetails?.namedCurve}; use P-256, P-384 or P-521`);
      return [alg];
    }
    case 'ed25519': return ['EdDSA'];
    default: throw new Error(`publicKey has the unsupported key type ${key.asymmetricKeyType}`);
  }
}

export function describeKey(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') return `an EC ${key.asymmetricKeyDetails?.namedCurve} key`;
  if (key.asymmetricKeyType === 'ed25519') return 'an Ed25519 key';
  return `an ${key.asymmetricKeyType?.toUpperCase()} key`;
}

export interface ProviderKeySpec {
  name: string;
  secret?: string;
  publicKey?: string;
  jwksUri?: string;
  algorithms?: readonly string[];
}

/**
 * The allowlist a provider verifies with: the configured `algorithms`, or the default for its key material.
 * Throws (with a message naming the problem) when the list does not fit the key: HS with an RSA/EC key is
 * the algorithm-confusion hole, and an asymmetric algorithm with a shared secret can never verify.
 */
export function resolveAlgorithms(p: ProviderKeySpec, publicKey?: KeyObject): JwsAlg[] {
  if (p.secret !== undefined) {
    const algs = (p.algorithms ?? HS_ALGS) as JwsAlg[];
    const bad = algs.filter((a) => !isHmac(a));
    if (bad.length) throw new Error(`${bad.join(', ')} cannot verify with a shared secret; a secret provider allows only HS256, HS384, HS512`);
    return [...algs];
  }
  if (publicKey !== undefined) {
    const fits = algorithmsForKey(publicKey);
    const algs = (p.algorithms ?? fits) as JwsAlg[];
    const bad = algs.filter((a) => !fits.includes(a));
    if (bad.length) throw new Error(`${bad.join(', ')} cannot verify with ${describeKey(publicKey)} (it fits ${fits.join(', ')})${bad.some(isHmac) ? '; HS with a public key is the algorithm-confusion attack' : ''}`);
    return [...algs];
  }
  const algs = (p.algorithms ?? ASYMMETRIC_ALGS) as JwsAlg[];
  const bad = algs.filter(isHmac);
  if (bad.length) throw new Error(`${bad.join(', ')} cannot be used with jwksUri: shared secrets are never taken from a JWKS`);
  return [...algs];
}
