import { GatewayError } from '../errors.ts';

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Maps an undici/socket failure to what the client is told. The upstream's own words never reach the client. */
export function upstreamError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: string } | null)?.code ?? '';
  if (TIMEOUTS.has(code)) return new GatewayError('upstream_timeout', 'The upstream service did not respond in time.', { extra: { cause: code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect_timeout' : code === 'UND_ERR_BODY_TIMEOUT' ? 'idle_timeout' : 'response_timeout' } });
  if (REFUSED.has(code)) return new GatewayError('upstream_failed', 'The upstream service could not be reached.', { extra: { cause: 'connect_failed' } });
  // undici's HTTPParserError often carries no code (e.g. a response that is not HTTP at all)
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || (err as Error | null)?.name === 'HTTPParserError') return new GatewayError('upstream_failed', 'The upstream service sent an invalid response.', { extra: { cause: 'invalid_response' } });
  return new GatewayError('upstream_failed', 'The upstream service failed before completing the response.', { extra: { cause: 'connection_lost' } });
}

/** Short code for logs and metric labels. */
export function upstreamErrorCode(err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  if (typeof code === 'string') return code;
  return (err as Error | null)?.name === 'HTTPParserError' ? 'HPE_INVALID' : 'unknown';
}
