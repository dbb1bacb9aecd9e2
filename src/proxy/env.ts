import type { IncomingMessage } from 'node:http';
import type { GatewayError } from '../errors.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Outcome, Target } from '../upstreams/upstream.ts';
import type { HeaderFilter } from './strip-headers.ts';

/** What the proxy needs from the generation serving a request, resolved once per generation. */
export interface ProxyEnv {
  readonly metrics: Metrics;
  /** Inbound headers that never reach an upstream (identity headers, `server.stripHeaders`), by folded name. */
  readonly stripHeaders: HeaderFilter;
  readonly tls: boolean;
  peer(req: IncomingMessage): string;
  peerTrusted(req: IncomingMessage): boolean;
  isDraining(): boolean;
  /** Renders a gateway error for this exchange (headers already queued on ctx are kept). */
  fail(ctx: RequestContext, err: GatewayError): void;
  /**
   * Called once per exchange with its outcome, for passive health and circuit breakers. `startedAt` is the
   * exchange's dispatch time (performance.now()); `final` is false for an attempt that is about to be retried.
   */
  report?(target: Target, outcome: Outcome, startedAt: number, final: boolean): void;
}
