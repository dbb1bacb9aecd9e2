import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Gatehouse's own version, from its package.json (src/ and dist/ sit at the same depth below it). */
export const VERSION: string = (() => {
  try { return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version; } catch { return 'unknown'; }
})();

export interface InfoPage {
  name: string;
  environment: string;
  /** name → URL or path: the health endpoints first, then the configured links. */
  links: Record<string, string>;
}

/**
 * `GET /` when `server.info.enabled` (seed 004's "Gateway information"): who answers here, which version, in which
 * environment, and where to look next. The body is built once: it holds nothing that changes per request.
 */
export function infoPage(p: InfoPage) {
  const body = JSON.stringify({ name: p.name, version: VERSION, environment: p.environment, links: p.links });
  const len = Buffer.byteLength(body);
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': len, 'cache-control': 'no-store' });
    res.end(res.req?.method === 'HEAD' ? undefined : body);
  };
}
