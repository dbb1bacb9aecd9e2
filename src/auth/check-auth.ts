import type { KeyObject } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { RefIssue } from '../config/check.ts';
import { suggest } from '../config/suggest.ts';
import { loadPublicKey, resolveAlgorithms } from './key-material.ts';
import { RESERVED_HEADERS } from './identity-headers.ts';

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Identity rules the schema cannot express: key material vs algorithms, issuers, consumers, key hashes, authorize. */
export function checkAuth(c: Config, out: RefIssue[]): void {
  const issuers = new Map<string, number>();
  const withoutIssuer: number[] = [];
  c.auth.jwt.forEach((p, i) => {
    const at = (...k: PropertyKey[]) => ['auth', 'jwt', i, ...k];
    const sources = [p.secret, p.publicKey, p.jwksUri].filter((s) => s !== undefined).length;
    if (sources === 1) {
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

  const consumerIds = [...ids.keys()];
  const plans = Object.keys(c.plans);
  const hasKeys = c.consumers.some((k) => k.keys.length > 0);
  c.routes.forEach((r, i) => {
    const at = (...k: PropertyKey[]) => ['routes', i, ...k];
    const auth = r.auth ?? c.defaults.auth;
    if (auth === 'any' && c.auth.jwt.length === 0 && !hasKeys) out.push({ path: at('auth'), message: 'auth: any needs a provider under auth.jwt or consumers with keys' });
    const z = r.authorize;
    if (z === undefined) return;
    if (auth === 'public' || auth === undefined) { out.push({ path: at('authorize'), message: 'authorize needs an identity: set auth to jwt, apikey or any' }); return; }
    if (!z.consumers && !z.plans && !z.claims) out.push({ path: at('authorize'), message: 'give consumers, plans or claims' });
    z.plans?.forEach((p, j) => {
      if (plans.length > 0 && !c.plans[p]) {
        const s = suggest(p, plans);
        out.push({ path: at('authorize', 'plans', j), message: `unknown plan "${p}"${s ? ` (did you mean "${s}"?)` : ` (known: ${plans.join(', ')})`}` });
      }
    });
    if (auth === 'apikey') {
      z.consumers?.forEach((id, j) => {
        if (!ids.has(id)) {
          const s = suggest(id, consumerIds);
          out.push({ path: at('authorize', 'consumers', j), message: `unknown consumer "${id}"${s ? ` (did you mean "${s}"?)` : ''}` });
        }
      });
      if (z.claims) out.push({ path: at('authorize', 'claims'), message: 'API-key identities have no claims; claims apply to auth: jwt or any' });
    }
  });
}
