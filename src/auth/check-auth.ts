import type { KeyObject } from 'node:crypto';
import type { Issue } from '../config/errors.ts';
import type { AuthSection, ConsumerConfig } from './schema.ts';
import { loadPublicKey, resolveAlgorithms } from './key-material.ts';
import { RESERVED_HEADERS } from './identity-headers.ts';

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** What the identity sections' checks read. */
export interface AuthSections {
  server: { environment: string };
  auth: AuthSection;
  consumers: readonly ConsumerConfig[];
}

/** Identity rules the schema cannot express: key material vs algorithms, issuers, claim headers, consumers, key hashes. */
export function checkAuthSections(c: AuthSections, out: Issue[]): void {
  const issuers = new Map<string, number>();
  const withoutIssuer: number[] = [];
  const names = c.auth.jwt.map((p) => p.name);
  c.auth.jwt.forEach((p, i) => {
    const at = (...k: PropertyKey[]) => ['auth', 'jwt', i, ...k];
    if (names.indexOf(p.name) !== i) out.push({ path: at('name'), message: `duplicate provider name "${p.name}"` });
    const sources = [p.secret, p.publicKey, p.jwksUri].filter((s) => s !== undefined).length;
    if (sources !== 1) out.push({ path: at(), message: 'give exactly one of secret, publicKey or jwksUri' });
    else {
      let key: KeyObject | undefined;
      let keyOk = true;
      if (p.publicKey !== undefined) {
        try { key = loadPublicKey(p.publicKey); } catch (e) { keyOk = false; out.push({ path: at('publicKey'), message: (e as Error).message }); }
      }
      if (keyOk) {
        try { resolveAlgorithms(p, key); } catch (e) { out.push({ path: at(p.algorithms ? 'algorithms' : 'publicKey'), message: (e as Error).message }); }
      }
    }
    if (p.issuer !== undefined) {
      if (issuers.has(p.issuer)) out.push({ path: at('issuer'), message: `issuer "${p.issuer}" is also auth.jwt[${issuers.get(p.issuer)}]'s; the token's iss picks one provider` });
      else issuers.set(p.issuer, i);
    } else withoutIssuer.push(i);
    if (p.jwksUri !== undefined && c.server.environment === 'production' && p.jwksUri.startsWith('http://') && !/^http:\/\/(localhost|127\.|\[::1\])/.test(p.jwksUri)) {
      out.push({ path: at('jwksUri'), message: 'keys fetched over plain http can be swapped in transit; use https', warning: true });
    }
    if (p.jwksCache.minTtl > p.jwksCache.maxTtl) out.push({ path: at('jwksCache', 'minTtl'), message: 'minTtl is longer than maxTtl' });
    for (const [claim, header] of Object.entries(p.claimsToHeaders)) {
      if (!TOKEN.test(header)) out.push({ path: at('claimsToHeaders', claim), message: `"${header}" is not a header name` });
      else if (RESERVED_HEADERS.has(header.toLowerCase())) out.push({ path: at('claimsToHeaders', claim), message: `"${header}" is a header the gateway or HTTP itself owns; choose another name (e.g. X-User-${claim})` });
    }
    if (p.queryParam !== undefined && !/^[A-Za-z0-9_.~-]+$/.test(p.queryParam)) out.push({ path: at('queryParam'), message: 'use letters, digits, "_", "-", "." or "~"' });
  });
  if (c.auth.jwt.length > 1 && withoutIssuer.length > 1) {
    for (const i of withoutIssuer.slice(1)) out.push({ path: ['auth', 'jwt', i, 'issuer'], message: `only one provider may omit issuer (auth.jwt[${withoutIssuer[0]}] already does): tokens whose iss no provider names go to it` });
  }

  const header = c.auth.apiKeys.header;
  if (!TOKEN.test(header)) out.push({ path: ['auth', 'apiKeys', 'header'], message: `"${header}" is not a header name` });
  else if (RESERVED_HEADERS.has(header.toLowerCase())) out.push({ path: ['auth', 'apiKeys', 'header'], message: `"${header}" cannot carry API keys (Authorization: Bearer <key> is always accepted)` });

  const ids = new Map<string, number>();
  const hashes = new Map<string, string>();
  c.consumers.forEach((k, i) => {
    if (ids.has(k.id)) out.push({ path: ['consumers', i, 'id'], message: `duplicate consumer id "${k.id}" (also consumers[${ids.get(k.id)}])` });
    else ids.set(k.id, i);
    k.keys.forEach((h, j) => {
      const where = `consumers[${i}].keys[${j}]`;
      const first = hashes.get(h);
      if (first !== undefined) out.push({ path: ['consumers', i, 'keys', j], message: `this key hash is listed twice (also ${first}): a key must identify exactly one consumer` });
      else hashes.set(h, where);
    });
  });
}
