import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { GatewayError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createAccessLog, type AccessLog } from '../observability/access-log.ts';
import type { CompiledRoute, RequestContext } from '../pipeline/context.ts';
import type { CompileEnv, RuntimeConsumers } from '../pipeline/policy.ts';
import { TrustedProxies, peerAddress } from '../server/client-ip.ts';
import { failWith, type RequestPath } from '../server/handler.ts';
import { RouteTable } from '../routing/table.ts';
import { createChooser } from '../routing/choose.ts';
import { compileSteps } from '../policies/index.ts';
import { createPreflightResponder } from '../policies/cors.ts';
import { compileRoutelessEdge } from '../policies/routeless-edge.ts';
import type { Outcome, Target, Upstream, UpstreamEvents } from '../upstreams/upstream.ts';
import type { Store } from '../state/store.ts';
import { buildUpstreams } from './upstreams.ts';
import { ResourceSet, closeAll } from './resources.ts';
import { compileHeaderFilter, type HeaderFilter } from '../proxy/strip-headers.ts';

/** What a generation takes from the runtime it will run in (src/runtime/runtime.ts). */
export interface GenerationHost {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly consumers: RuntimeConsumers;
  readonly storeWarn: (msg: string, err?: unknown) => void;
  readonly upstreamEvents: UpstreamEvents;
  /** Built-in endpoints on the main listener (/healthz, /readyz). */
  readonly builtins: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  readonly tls: boolean;
  readonly isDraining: () => boolean;
}

/** Where a config came from, and its fingerprint. */
export interface ConfigSource {
  config: Config;
  /** sha256 of the effective config (src/config/load.ts), or '' when built from an object in code. */
  hash: string;
  file?: string;
}

/**
 * Everything one config produces, built by `new Generation(source, host, prev)`: upstream pools, the route table
 * with each route's compiled steps, CORS preflights, the content-based chooser, the identity headers every route
 * strips. Immutable once built; a reload builds the next one beside it and the runtime swaps one reference.
 *
 * Building is pure in the sense that matters for `gatehouse validate`: no socket is opened, no timer started, no
 * probe sent. `activate()` starts the health checks of upstreams this generation brought; `retire()` stops those
 * the next one dropped and closes them once the last request, stream or tunnel that started here has ended.
 */
export class Generation implements RequestPath {
  readonly id: number;
  readonly config: Config;
  readonly hash: string;
  readonly file: string | undefined;
  readonly loadedAt = new Date();
  readonly upstreams: Map<string, Upstream>;
  readonly table: RouteTable;
  readonly trusted: TrustedProxies;
  readonly identityHeaders: Set<string>;
  readonly stripHeaders: HeaderFilter;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly accessLog: AccessLog | null;
  readonly builtins: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  readonly tls: boolean;
  readonly isDraining: () => boolean;
  /** Writable for tests that observe the body peek; set once at compile otherwise. */
  choose: RequestPath['choose'];
  readonly preflight: RequestPath['preflight'];
  readonly fail: (ctx: RequestContext, err: GatewayError) => void;
  readonly resources: ResourceSet;
  /** Requests, streams and tunnels that started on this generation and have not ended. */
  inflight = 0;
  private retiredFor: (() => void) | null = null;
  private readonly adopt: () => void;

  /** Throws ConfigError (with key paths) when a route cannot be compiled; nothing has been started then. */
  constructor(source: ConfigSource, host: GenerationHost, prev: Generation | null) {
    const config = source.config;
    this.id = (prev?.id ?? 0) + 1;
    this.config = config;
    this.hash = source.hash;
    this.file = source.file ?? prev?.file;
    this.logger = host.logger;
    this.metrics = host.metrics;
    this.builtins = host.builtins;
    this.tls = host.tls;
    this.isDraining = host.isDraining;
    this.trusted = new TrustedProxies(config.server.trustedProxies);
    this.identityHeaders = new Set(['x-consumer-id', 'x-user-id', 'x-user-plan', 'x-consumer-plan']);
    this.resources = new ResourceSet(prev?.resources ?? null);
    ({ upstreams: this.upstreams, adopt: this.adopt } = buildUpstreams(config.upstreams, host.upstreamEvents, prev === null ? null : { upstreams: prev.upstreams, configs: prev.config.upstreams }));
    for (const u of this.upstreams.values()) u.durationMetric = host.metrics.upstreamDuration.child(u.name);

    const shared = new Map<string, unknown>();
    const env: CompileEnv = { logger: host.logger, metrics: host.metrics, store: host.store, consumers: host.consumers, storeWarn: host.storeWarn, trusted: this.trusted, identityHeaders: this.identityHeaders, resources: this.resources, upstreams: this.upstreams, shared };
    try {
      this.table = new RouteTable({ routes: config.routes, upstreams: this.upstreams, compileSteps: (route) => compileSteps(config, route, env) });
    } catch (e) {
      void this.discard(prev);
      throw e;
    }
    // After the routes: their policies add the identity headers they set (claims, forward-auth, client certificates).
    this.stripHeaders = compileHeaderFilter(this.identityHeaders, config.server.stripHeaders);
    this.accessLog = createAccessLog(host.logger, config.observability.log.accessLog);
    const routeless = compileRoutelessEdge(config.server, this.trusted);
    this.fail = routeless === null
      ? (ctx, err) => failWith(ctx, err, this.isDraining())
      : (ctx, err) => { if (ctx.route === null) routeless(ctx); failWith(ctx, err, this.isDraining()); };
    const match = (method: string, path: string) => { const m = this.table.match(method, path); return m.kind === 'found' ? m : null; };
    this.preflight = createPreflightResponder(match, shared, this.fail);
    // content-based routing: only configs with a match.body condition get a chooser (and only those routes peek)
    this.choose = this.table.routes.some((r: CompiledRoute) => r.bodyCondition !== null) ? createChooser(config.server.limits.bodyPeek) : undefined;
  }

  peer(req: IncomingMessage): string {
    return peerAddress(req.socket.remoteAddress);
  }

  peerTrusted(req: IncomingMessage): boolean {
    return this.trusted.trusts(peerAddress(req.socket.remoteAddress));
  }

  report(target: Target, outcome: Outcome, startedAt: number, final: boolean): void {
    target.upstream.report(target, outcome, startedAt, final);
  }

  enter(): void {
    this.inflight++;
  }

  release(): void {
    if (--this.inflight === 0 && this.retiredFor !== null) this.retiredFor();
  }

  /**
   * Takes over the state of changed upstreams from `prev` (circuits, ejections, health, weights) and starts what
   * this generation brought: health checks of its new upstreams (kept ones are already running).
   */
  activate(prev: Generation | null): void {
    this.adopt();
    for (const [name, up] of this.upstreams) if (prev?.upstreams.get(name) !== up) up.start();
  }

  /**
   * `next` serves new requests from now on. Upstreams it dropped stop their checks at once; their pools, and
   * resources nothing newer took over, close when the last exchange that started here ends.
   */
  retire(next: Generation): Promise<void> {
    const kept = new Set(next.upstreams.values());
    const dropped = [...this.upstreams.values()].filter((u) => !kept.has(u));
    for (const u of dropped) u.stopChecks();
    const orphans = this.resources.orphans(next.resources);
    return new Promise((resolve) => {
      this.retiredFor = () => {
        this.retiredFor = null;
        void closeAll([...dropped.map((u) => () => u.close()), ...orphans]).then(resolve);
      };
      if (this.inflight === 0) this.retiredFor();
    });
  }

  /** Closes everything (the runtime stops). */
  async close(): Promise<void> {
    await closeAll([...[...this.upstreams.values()].map((u) => () => u.close()), () => this.resources.closeAll()]);
  }

  /** A generation that failed to build or was never activated: close only what it made itself. */
  private async discard(prev: Generation | null): Promise<void> {
    const made = [...(this.upstreams?.values() ?? [])].filter((u) => prev?.upstreams.get(u.name) !== u);
    await closeAll([...made.map((u) => () => u.close()), () => this.resources.discard()]);
  }
}
