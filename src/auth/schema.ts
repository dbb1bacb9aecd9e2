import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';
import { failureLimitSchema } from '../policies/auth-failures.ts';

/** Query parameters that commonly carry credentials (stripped on authenticated routes unless `auth.apiKeys.stripQuery` says otherwise). */
export const CREDENTIAL_QUERY_PARAMS: readonly string[] = ['api_key', 'apikey', 'key', 'access_token', 'token'];

/**
 * The identity sections: `auth:` (JWT providers, API-key settings, the verified-token cache), `consumers:`,
 * and a route's `auth:` mode and `authorize:` rule. A leaf, so the auth code can type itself from it while
 * the composed config schema imports it.
 */

export const authModeSchema = z.enum(['public', 'jwt', 'apikey', 'any', 'forward']).describe('public (no credential), jwt, apikey, any (jwt or apikey) or forward (an auth service decides).');
export type AuthMode = z.output<typeof authModeSchema>;

export const jwtProviderSchema = obj({
  name: z.string().min(1).describe('Unique name of the provider (`gatehouse token --provider`, logs).'),
  issuer: z.string().optional().describe('The `iss` the token must carry.'),
  audiences: z.array(z.string()).prefault([]).describe('The token\'s `aud` must name one of these (empty: not checked).'),
  jwksUri: z.string().url().optional().describe('JWKS endpoint of the issuer (keys fetched and cached; see `jwksCache`).'),
  secret: z.string().optional().describe('Shared HMAC secret (HS256/384/512 only); give it as `${VAR}`.'),
  publicKey: z.string().optional().describe('A PEM public key inline (`-----BEGIN …`) or a file path; exactly one of `secret`, `publicKey`, `jwksUri`.'),
  algorithms: z.array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1).optional().describe('Allowlist of signing algorithms (default follows the key material; `none` cannot be configured).'),
  clockSkew: duration.prefault('30s').describe('Tolerance on exp/nbf/iat.'),
  claimsToHeaders: z.record(z.string(), z.string()).prefault({}).describe('Claim → request header sent upstream (inbound copies removed).'),
  queryParam: z.string().optional().describe('Also accept the token in this query parameter (for WebSocket clients that cannot set headers); removed before forwarding.'),
  planClaim: z.string().prefault('plan').describe('Claim whose value becomes the identity\'s plan (when it names a configured plan).'),
  closeWebSocketsOnExpiry: z.boolean().prefault(true).describe('Close a WebSocket this provider\'s token opened (close code 1008) when the token\'s exp passes; false lets the tunnel outlive the token.'),
  jwksCache: obj({
    cooldown: duration.prefault('30s').describe('Least time between refetches triggered by an unknown `kid`.'),
    minTtl: duration.prefault('5m').describe('The JWKS is cached for its Cache-Control max-age, at least this long.'),
    maxTtl: duration.prefault('24h').describe('The JWKS is refetched after this at the latest, whatever its Cache-Control.'),
    timeout: duration.prefault('5s').describe('Timeout of a JWKS fetch.'),
  }).prefault({}).describe('Caching of the JWKS document.'),
}).describe('A JWT issuer whose tokens are accepted.');
export type JwtProviderConfig = z.output<typeof jwtProviderSchema>;

export const authSectionSchema = obj({
  jwt: z.array(jwtProviderSchema).prefault([]).describe('JWT providers; a token is checked against the one its issuer/key matches.'),
  apiKeys: obj({
    header: z.string().prefault('x-api-key').describe('Request header carrying the API key (`Authorization: Bearer` is also read).'),
    hideCredentials: z.boolean().prefault(true).describe('Remove the API key from the request before forwarding it upstream.'),
    query: z.string().regex(/^[A-Za-z0-9._~-]+$/, 'a query parameter name').optional()
      .describe('Query parameter an API key may also be sent in (for clients that cannot set headers). Always removed from the query sent upstream; never logged. Off unless set.'),
    stripQuery: z.array(z.string().regex(/^[A-Za-z0-9._~-]+$/, 'a query parameter name')).prefault([...CREDENTIAL_QUERY_PARAMS])
      .describe('Query parameters removed before forwarding on every authenticated route, because clients put credentials there; one that disagrees with the credential in the headers is a 401. Setting it replaces the default list.'),
  }).prefault({}).describe('API-key authentication.'),
  failureLimit: failureLimitSchema,
  tokenCache: obj({
    ttl: duration.prefault('30s').describe('A verified token is trusted again for at most this long (never past its exp); lower it for faster revocation.'),
    maxEntries: z.number().int().min(0).prefault(10000).describe('Tokens kept at most, the oldest dropped first (0 turns the cache off).'),
  }).prefault({}).describe('Verified JWTs kept so a token\'s signature is checked once, not per request.'),
});
export type AuthSection = z.output<typeof authSectionSchema>;

export const consumerSchema = obj({
  id: z.string().min(1).describe('Consumer id (identity.id; rate limits by consumer, usage).'),
  plan: z.string().optional().describe('The consumer\'s plan (a key of `plans`); default `defaults.plan`.'),
  keys: z.array(z.string().regex(/^sha256:[0-9a-f]{64}$/, 'keys are stored as hashes: run `gatehouse hash-key` and paste its sha256:… output')).prefault([]).describe('API keys as `sha256:<hex>` hashes (`gatehouse hash-key`).'),
}).describe('A consumer known from the file.');
export type ConsumerConfig = z.output<typeof consumerSchema>;

const claimValue = z.union([z.string(), z.number(), z.boolean()]);
export const authorizeSchema = obj({
  consumers: z.array(z.string()).min(1).optional().describe('Consumer ids allowed.'),
  plans: z.array(z.string()).min(1).optional().describe('Plans allowed.'),
  claims: z.record(z.string(), z.union([claimValue, z.array(claimValue).min(1)])).optional().describe('Claim → required value (or one of a list); JWT identities only.'),
});
export type AuthorizeRule = z.output<typeof authorizeSchema>;
