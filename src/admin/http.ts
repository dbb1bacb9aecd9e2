import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventEmitter } from 'node:events';
import { GatewayError, sendProblem, type ErrorCode } from '../errors.ts';
import { requestIdFrom } from '../observability/trace.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Store } from '../state/store.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConsumerRegistry } from '../consumers/registry.ts';
import type { Config } from '../config/schema.ts';
import type { Generation } from '../runtime/generation.ts';
import type { ReloadResult } from '../runtime/diff.ts';

/** What every admin endpoint shares: its host, JSON in and out, problems from the one error table. */

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** What the admin API reads and drives: the runtime (src/runtime/runtime.ts), seen through what it needs. */
export interface AdminHost {
  /** The generation serving new requests: every admin route reads it afresh, so a reload shows at once. */
  readonly current: Generation;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly consumers: ConsumerRegistry;
  readonly logger: Logger;
  readonly settings: Config;
  readonly builtins: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  readonly lastReload: ReloadResult | null;
  /** The runtime's lifecycle events ('generation', 'reload'): the dashboard's stream sends a snapshot on each. */
  readonly events: EventEmitter;
  reloadEverywhere(): Promise<ReloadResult>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'cache-control': 'no-store' });
  res.end(s);
}

/** An admin error, rendered from the one error table (src/errors.ts) like every other problem, with a request id. */
export function adminProblem(req: IncomingMessage, res: ServerResponse, code: ErrorCode, detail: string, opts?: { headers?: Record<string, string>; extra?: Record<string, unknown> }): void {
  const requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
  res.setHeader('x-request-id', requestId);
  sendProblem(res, new GatewayError(code, detail, opts), requestId);
}

const MAX_BODY = 64 * 1024;

/** A small JSON body (admin actions); rejects past 64 KiB or when it is not JSON. */
export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new AdminInputError(`The body exceeds ${MAX_BODY} bytes.`)); chunks.length = 0; req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try { resolve(JSON.parse(text)); } catch { reject(new AdminInputError('The body is not valid JSON.')); }
    });
    req.on('error', reject);
  });
}

/** A request the admin API refuses with 400 and this message. */
export class AdminInputError extends Error {}
