import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Config } from './config/schema.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { TrustedProxies, peerAddress } from './server/client-ip.ts';
import { buildUpstreams } from './upstreams/registry.ts';
import { servicesHealth } from './upstreams/status.ts';
import { registerUpstreamAdmin } from './admin/upstreams.ts';
import type { Upstream } from './upstreams/upstream.ts';
import { RouteTable } from './routing/table.ts';
import { createChooser } from './routing/choose.ts';
import { compileSteps } from './policies/index.ts';
import { createPreflightResponder } from './policies/cors.ts';
import { compileRoutelessEdge } from './policies/routeless-edge.ts';
import { createRequestHandler, failWith, type HandlerRuntime } from './server/handler.ts';
import { createUpgradeHandler } from './proxy/websocket.ts';
import { healthz, readyz, type HealthSource } from './server/health.ts';
import { createAdminServer, type AdminHandler } from './admin/server.ts';
import { GatewayError, problemBody } from './errors.ts';
import type { GatewayServices } from './services.ts';
import { createAccessLog } from './observability/access-log.ts';
import cluster from 'node:cluster';
import { createStore } from './state/index.ts';
import { usageAdminRoute } from './metering/admin.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: NodeJS.WritableStream;
  /** Skip prom-client's process metrics (tests start many gateways). */
  defaultMetrics?: boolean;
}

/** A running gateway: the main listener, the admin listener, and everything compiled from one config. */
export class Gateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly services: GatewayServices;
  readonly upstreams: Map<string, Upstream>;
  readonly table: RouteTable;
  readonly server: Server;
  readonly admin: Server | null;
  readonly adminRoutes = new Map<string, AdminHandler>();
  readonly health: HealthSource;
  private draining = false;
  private live = false;
  private readonly tunnels = new Set<Duplex>();

  /** Compiles everything from the config; throws ConfigError before any socket is opened. */
  constructor(config: Config, opts: GatewayOptions = {}) {
    this.config = config;
    const log = config.observability.log;
    this.logger = opts.logger ?? createLogger({ level: log.level, format: log.format ?? (config.server.environment === 'development' ? 'pretty' : 'json'), destination: opts.logDestination });
    this.metrics = new Metrics({ defaultMetrics: opts.defaultMetrics });
    const trusted = new TrustedProxies(config.server.trustedProxies);
    this.services = { config, logger: this.logger, metrics: this.metrics, trusted, identityHeaders: new Set(['x-consumer-id', 'x-user-id', 'x-user-plan', 'x-consumer-plan']), closers: [], shared: new Map() };
    // One state store per gateway (rate limits, quotas, usage records), shared by every route.
    const store = createStore(config, this.logger);
    this.services.store = store;
    this.services.closers.push(() => store.close());
    this.adminRoutes.set('GET /admin/usage', usageAdminRoute(store, config));
    if (store.kind === 'memory' && cluster.isWorker && usesTrafficControl(config)) {
      this.logger.warn('state.store is memory but this gateway runs as one of several workers: each worker counts rate limits and quotas on its own (limits are multiplied by the worker count). Use state.store: redis.');
    }
    this.upstreams = buildUpstreams(config, { logger: this.logger, metrics: this.metrics });
    registerUpstreamAdmin(this.adminRoutes, this.upstreams);
    for (const u of this.upstreams.values()) u.durationMetric = this.metrics.upstreamDuration.labels(u.name);
    this.table = new RouteTable({
      config,
      upstreams: this.upstreams,
      compileSteps: (route, routeName) => compileSteps({ config, route, routeName, services: this.services }),
    });
    this.health = {
      startedAt: Date.now(),
      environment: config.server.environment,
      isReady: () => this.live && !this.draining,
      // from the background checks' and traffic's cached state: never a request per /healthz
      services: () => servicesHealth(this.upstreams),
    };
    const builtins = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>([
      ['/healthz', healthz(this.health)],
      ['/readyz', readyz(this.health)],
    ]);

    const routeless = compileRoutelessEdge(this.services);
    const rt: HandlerRuntime = {
      table: this.table,
      logger: this.logger,
      metrics: this.metrics,
      accessLog: createAccessLog(this.logger, log.accessLog),
      trusted,
      builtins,
      identityHeaders: this.services.identityHeaders,
      tls: false,
      peer: (req) => peerAddress(req.socket.remoteAddress),
      peerTrusted: (req) => trusted.trusts(peerAddress(req.socket.remoteAddress)),
      isDraining: () => this.draining,
      report: (target, outcome, startedAt, final) => target.upstream.report(target, outcome, startedAt, final),
      fail: routeless === null ? (ctx, err) => failWith(ctx, err, this.draining) : (ctx, err) => { if (ctx.route === null) routeless(ctx); failWith(ctx, err, this.draining); },
      preflight: createPreflightResponder(this.table, this.services, (ctx, err) => failWith(ctx, err, this.draining)),
      // content-based routing: only configs with a match.body condition get a chooser (and only those routes peek)
      choose: this.table.routes.some((r) => r.bodyCondition !== null) ? createChooser(config.server.limits.bodyPeek) : undefined,
    };
    this.runtime = rt;
    const limits = config.server.limits;
    this.server = createServer({
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // headers/request timeouts are only checked this often; keep it well under the shortest one
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeout / 4))),
      requireHostHeader: true,
      noDelay: true,
    }, createRequestHandler(rt));
    if (limits.maxConnections) this.server.maxConnections = limits.maxConnections;
    this.server.on('upgrade', createUpgradeHandler(rt, this.tunnels));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    this.server.on('connection', (s: Socket) => {
      this.metrics.activeConnections.inc();
      s.once('close', () => this.metrics.activeConnections.dec());
    });
    this.admin = config.admin.enabled
      ? createAdminServer({ token: config.admin.token, metrics: config.observability.metrics.enabled ? this.metrics : null, table: this.table, config, builtins, routes: this.adminRoutes })
      : null;
  }

  readonly runtime: HandlerRuntime;

  async listen(): Promise<{ port: number; adminPort: number | null }> {
    // Give Redis a moment to connect so the first requests do not fail open/closed needlessly.
    if (this.services.store && !(await this.services.store.ready(2000))) this.logger.warn('state store not reachable yet; rate limits and quotas follow their onError until it is');
    const l = this.config.server.listen;
    await listenOn(this.server, l.host, l.port);
    let adminPort: number | null = null;
    if (this.admin) {
      const a = this.config.admin.listen;
      await listenOn(this.admin, a.host, a.port);
      adminPort = (this.admin.address() as { port: number }).port;
    }
    this.live = true;
    for (const u of this.upstreams.values()) u.start(); // active health checks run only once the gateway serves
    return { port: (this.server.address() as { port: number }).port, adminPort };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Graceful stop: readiness turns false, the listener stops accepting, idle keep-alive connections close,
   * in-flight requests, streams and tunnels get `graceMs` to finish; then whatever is left is cut.
   */
  async drain(graceMs = this.config.server.shutdownGrace): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const idle = setInterval(() => this.server.closeIdleConnections(), 100);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
    const tunnelsDone = new Promise<void>((resolve) => {
      const check = () => (this.tunnels.size === 0 ? resolve() : setTimeout(check, 50));
      check();
    });
    await Promise.race([Promise.all([closed, tunnelsDone]), deadline]);
    clearInterval(idle);
    clearTimeout(timer);
    for (const s of this.tunnels) s.destroy();
    this.server.closeAllConnections();
    await this.close();
  }

  /** Immediate stop (tests, fatal errors). */
  async close(): Promise<void> {
    this.draining = true;
    this.server.closeAllConnections();
    for (const s of this.tunnels) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.server.listening ? this.server.close(() => r()) : r())),
      this.admin ? new Promise<void>((r) => { this.admin!.closeAllConnections(); this.admin!.listening ? this.admin!.close(() => r()) : r(); }) : undefined,
      ...[...this.upstreams.values()].map((u) => u.close()),
      ...this.services.closers.map(async (c) => { try { await c(); } catch { /* closing anyway */ } }),
    ]);
    this.logger.flush?.();
  }

  /** Malformed requests never reach the handler: answer them here, in the same problem+json shape. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const s = socket as Socket & { _httpMessage?: { headersSent?: boolean } };
    if (err.code === 'ECONNRESET' || !s.writable || s._httpMessage?.headersSent) { s.destroy(); return; }
    const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
    const detail = code === 'headers_too_large' ? 'The request headers are larger than this gateway accepts.'
      : code === 'request_timeout' ? 'The request was not received in time.' : 'The request is not valid HTTP/1.1 (malformed or conflicting framing headers).';
    const e = new GatewayError(code, detail);
    // The request's own X-Request-Id is not available here (the head never parsed): a fresh one still lets the client quote it.
    const requestId = randomUUID();
    const body = problemBody(e, requestId);
    s.end(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
    this.metrics.observeRequest('none', 'OTHER', e.status, 0);
    this.logger.info({ type: 'access', requestId, status: e.status, error: code, clientIp: peerAddress(s.remoteAddress) || undefined });
  }
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
}

/** Whether any route or plan uses rate limits or quotas (the memory-store warning only matters then). */
function usesTrafficControl(c: Config): boolean {
  return c.routes.some((r) => r.rateLimit?.length || r.quota) || Object.values(c.plans).some((p) => p.rateLimit.length || p.quota);
}
