import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';
import { failureLimitSchema } from '../policies/auth-failures.ts';

/**
 * The identity sections: `auth:` (JWT providers, API-key settings, the verified-token cache), `consumers:`,
 * and a route's `auth:` mode and `authorize:` rule. A leaf, so the auth code can type itself from it while
 * the composed config schema imports it.
 */

/** Query parameters that commonly carry credentials (stripped on authenticated routes unless `auth.apiKeys.stripQuery` says otherwise). */
export const CREDENTIAL_QUERY_PARAMS: readonly string[] = ['api_key', 'apikey', 'key', 'access_token', 'token'];

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
  apiKeys: obj({
    header: z.string().prefault('x-api-key'),
    hideCredentials: z.boolean().prefault(true),
    query: z.string().regex(/^[A-Za-z0-9._~-]+$/, 'a query parameter name').optional()
      .describe('Query parameter an API key may also be sent in (for clients that cannot set headers). Always removed from the query sent upstream; never logged. Off unless set.'),
    stripQuery: z.array(z.string().regex(/^[A-Za-z0-9._~-]+$/, 'a query parameter name')).prefault([...CREDENTIAL_QUERY_PARAMS])
      .describe('Query parameters removed before forwarding on every authenticated route, because clients put credentials there; one that disagrees with the credential in the headers is a 401. Setting it replaces the default list.'),
  }).prefault({}),
  failureLimit: failureLimitSchema,
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
