import { GatewayError } from '../errors.ts';

/**
 * The 401/403 answers of the auth policy (RFC 6750 §3). Descriptions are fixed texts chosen by the gateway:
 * they never quote the token, a key, a kid or a claim the client sent.
 */
const REALM = 'Bearer realm="gatehouse"';

export function missingCredentials(detail = 'This route needs credentials: send "Authorization: Bearer <token>".'): GatewayError {
  return new GatewayError('unauthorized', detail, { headers: { 'www-authenticate': REALM } });
}

export function invalidToken(description: string): GatewayError {
  return new GatewayError('invalid_token', description, { headers: { 'www-authenticate': `${REALM}, error="invalid_token", error_description="${description}"` } });
}

export function forbidden(detail = 'This identity is not allowed to use this route.'): GatewayError {
  return new GatewayError('forbidden', detail, { headers: { 'www-authenticate': `${REALM}, error="insufficient_scope"` } });
}
