import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';

/**
 * The identity sections: `auth:` (JWT providers, API-key settings, the verified-token cache), `consumers:`,
 * and a route's `auth:` mode and `authorize:` rule. A leaf, so the auth code can type itself from it while
 * the composed config schema imports it.
 */

export const authModeSchema = z.enum(['public', 'jwt', 'apikey', 'any', 'forward']);
export type AuthMode = z.output<typeof authModeSchema>;

export const jwtProviderSchema = obj({
  name: z.string().min(1),
  issuer: z.string().optional(),
  audiences: z.array(z.string()).prefault([]),
  jwksUri: z.string().url().optional(),
  secret: z.string().optional(),
  publicKey: z.string().optional(),
  algorithms: z.array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1).optional(),
  clockSkew: duration.prefault('30s'),
  claimsToHeaders: z.record(z.string(), z.string()).prefault({}),
  queryParam: z.string().optional(),
  /** Claim whose value becomes the identity's plan (when it names a configured plan). */
  planClaim: z.string().prefault('plan'),
  closeWebSocketsOnExpiry: z.boolean().prefault(true).describe('Close a WebSocket this provider\'s token opened (close code 1008) when the token\'s exp passes; false lets the tunnel outlive the token'),
  jwksCache: obj({
    cooldown: duration.prefault('30s'),
    minTtl: duration.prefault('5m'),
    maxTtl: duration.prefault('24h'),
    timeout: duration.prefault('5s'),
  }).prefault({}),
});
export type JwtProviderConfig = z.output<typeof jwtProviderSchema>;

export const authSectionSchema = obj({
  jwt: z.array(jwtProviderSchema).prefault([]),
  apiKeys: obj({ header: z.string().prefault('x-api-key'), hideCredentials: z.boolean().prefault(true) }).prefault({}),
  /** Verified JWTs kept so a token's signature is checked once, not per request (see docs/authentication.md). */
  tokenCache: obj({ ttl: duration.prefault('30s'), maxEntries: z.number().int().min(0).prefault(10000) }).prefault({}),
});
export type AuthSection = z.output<typeof authSectionSchema>;

export const consumerSchema = obj({
  id: z.string().min(1),
  plan: z.string().optional(),
  keys: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/, 'keys are stored as hashes: run `gatehouse hash-key` and paste its sha256:… output')).prefault([]),
});
export type ConsumerConfig = z.output<typeof consumerSchema>;

const claimValue = z.union([z.string(), z.number(), z.boolean()]);
export const authorizeSchema = obj({
  consumers: z.array(z.string()).min(1).optional(),
  plans: z.array(z.string()).min(1).optional(),
  claims: z.record(z.string(), z.union([claimValue, z.array(claimValue).min(1)])).optional(),
});
export type AuthorizeRule = z.output<typeof authorizeSchema>;
