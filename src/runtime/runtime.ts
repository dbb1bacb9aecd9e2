import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import cluster from 'node:cluster';
import type { Config } from '../config/schema.ts';
import { ConfigError, formatIssue, formatPath } from '../config/errors.ts';
import type { LoadedConfig } from '../config/load.ts';
import { createLogger, logSinkOf, type Logger } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import type { RequestTracing, TracingOptions } from '../observability/tracing.ts';
import { peerAddress } from '../server/client-ip.ts';
import { createRequestHandler, type RequestPathSource } from '../server/handler.ts';
import { healthz, livez, readyz } from '../server/health.ts';
import { infoPage } from '../server/info.ts';
import { Listener } from '../server/listener.ts';
import { TlsCertificates, TlsFileError } from '../server/tls.ts';
import { createUpgradeHandler } from '../proxy/websocket.ts';
import { GatewayError, problemBody, sendProblem } from '../errors.ts';
import { isLingering, lingeringClose } from '../server/linger.ts';
import { createStore, type Store } from '../state/index.ts';
import { createConsumerRegistry, type ConsumerRegistry } from '../consumers/index.ts';
import { throttledWarn } from '../state/warn.ts';
import { UpstreamTelemetry } from '../upstreams/telemetry.ts';
import { servicesHealth } from '../upstreams/status.ts';
import { createAdminServer } from '../admin/server.ts';
import { Generation, type ConfigSource, type GenerationHost } from './generation.ts';
import { diffConfigs, type ReloadResult } from './diff.ts';

export type { ReloadResult };

export interface RuntimeOptions {
  logger?: Logger;
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: NodeJS.WritableStream;
  /** Skip prom-client's process metrics (tests start many gateways). */
  defaultMetrics?: boolean;
  /** Reads the config again for a reload (SIGHUP, `POST /admin/reload`, `--watch`); without it only `reload(loaded)` works. */
  load?: () => LoadedConfig;
  /** Under `--workers N`: the admin API's reload goes through the primary, which validates once and reloads every worker. */
  reloadAll?: () => Promise<ReloadResult>;
  /** Tracing export tuning (tests shorten the batch delay and the export timeout). */
  tracing?: Omit<TracingOptions, 'dropped'>;
}


/**
 * The process-lifetime half of a gateway: listeners, logger, metric instruments (registered once), the state
 * store, upstream telemetry, lifecycle events, and the generation serving new requests. The per-config half is
 * a Generation (src/runtime/generation.ts); a reload compiles the next one beside it and swaps one reference, so
 * every request, stream and tunnel finishes on the generation it started on.
 *
 * Building a Runtime opens nothing: sockets and the store connect in `listen()`, background checks start there.
 * `gatehouse validate` builds one, reads its table and closes it.
 */
export class Runtime implements RequestPathSource, GenerationHost {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** OpenTelemetry tracing: set by listen() when `observability.tracing` is configured (the SDK is loaded then, not before). */
  tracing: RequestTracing | null = null;
  readonly store: Store;
  /** Consumers and keys created through the admin API; they outlive reloads. */
  readonly consumers: ConsumerRegistry;
  readonly storeWarn: (msg: string, err?: unknown) => void;
  readonly upstreamEvents: UpstreamTelemetry;
  readonly builtins = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  /** The main listener: HTTP/1.1, TLS, HTTP/2 (ALPN) or h2c, as `server.tls`/`server.http2` say (src/server/listener.ts). */
  readonly listener: Listener;
  /** The certificates of a TLS listener, re-read when their files change; null without `server.tls`. */
  readonly certificates: TlsCertificates | null;
  readonly admin: Server | null;
  /** 'generation' (gen, diff) after each swap, 'reload' (ReloadResult) after each attempt, 'draining', 'closed'. */
  readonly events = new EventEmitter();
  /** The main listener terminates TLS (X-Forwarded-Proto https, HSTS). */
  readonly tls: boolean;
  readonly startedAt = Date.now();
  readonly isDraining = (): boolean => this.draining;
  current: Generation;
  /** The config this process started with: listeners, the store and the log format keep its settings until a restart. */
  readonly settings: Config;
  lastReload: ReloadResult | null = null;
  private draining = false;
  private live = false;
  private readonly tunnels = new Set<Duplex>();
  private readonly retiring = new Set<Promise<void>>();
  private readonly opts: RuntimeOptions;

  /** Compiles the first generation; throws ConfigError before anything is opened. */
  constructor(source: LoadedConfig | Config, opts: RuntimeOptions = {}) {
    const first: ConfigSource = 'config' in source ? source : { config: source, hash: '' };
    const config = first.config;
    this.settings = config;
    this.opts = opts;
    this.tls = config.server.tls !== undefined; // generations read it (X-Forwarded-Proto)
    const log = config.observability.log;
    this.logger = opts.logger ?? createLogger({ level: log.level, format: log.format ?? (config.server.environment === 'development' ? 'pretty' : 'json'), destination: opts.logDestination });
    this.metrics = new Metrics({ defaultMetrics: opts.defaultMetrics });
    this.metrics.logSink = logSinkOf(this.logger);
    this.upstreamEvents = new UpstreamTelemetry(this.logger, this.metrics.registry);
    this.store = createStore(config.state, this.logger);
    this.consumers = createConsumerRegistry(config.state, { logger: this.logger, clustered: cluster.isWorker });
    this.storeWarn = throttledWarn(this.logger, 10_000);
    try {
      this.current = new Generation(first, this, null);
    } catch (e) {
      void this.store.close();
      void this.consumers.close();
      throw e;
    }
    this.upstreamEvents.init(this.current.upstreams.values());
    if (this.store.kind === 'memory' && cluster.isWorker && usesTrafficControl(config)) {
      this.logger.warn('state.store is memory but this gateway runs as one of several workers: each worker counts rate limits and quotas on its own (limits are multiplied by the worker count). Use state.store: redis.');
    }
    const health = {
      startedAt: this.startedAt,
      environment: config.server.environment,
      isReady: () => this.live && !this.draining,
      // from the background checks' and traffic's cached state: never a request per /healthz
      services: () => servicesHealth(this.current.upstreams),
    };
    const hz = healthz(health);
    this.builtins.set('/healthz', hz);
    this.builtins.set('/readyz', readyz(health));
    // server.health.paths: the same endpoint under the paths the replaced gateways used (seed 000's GET /health).
    for (const p of config.server.health.paths) this.builtins.set(p, hz);
    if (config.server.info.enabled) {
      const links: Record<string, string> = { health: '/healthz', ready: '/readyz' };
      config.server.health.paths.forEach((p, i) => { links[i === 0 ? 'healthAlias' : `healthAlias${i + 1}`] = p; });
      this.builtins.set('/', infoPage({ name: config.server.info.name, environment: config.server.environment, links: { ...links, ...config.server.info.links } }));
    }
    this.builtins.set('/livez', livez());

    // Certificate files are read now, so `gatehouse validate` reports a missing or mismatched one; watched from listen().
    try {
      this.certificates = config.server.tls !== undefined ? new TlsCertificates(config.server.tls, this.logger) : null;
    } catch (e) {
      void this.current.close();
      void this.store.close();
      if (e instanceof TlsFileError) throw new ConfigError([{ path: formatPath(e.path), message: e.message }]);
      throw e;
    }
    // One set of request-head checks for requests and WebSocket handshakes (src/server/request-head.ts).
    const headLimits = { maxHeaderCount: config.server.limits.maxHeaderCount };
    this.listener = new Listener(config.server, this.certificates, {
      request: createRequestHandler(this, headLimits),
      upgrade: createUpgradeHandler(this, this.tunnels, headLimits),
      clientError: (err, socket) => this.onClientError(err, socket),
      connect: (req, socketOrRes) => this.onConnect(req, socketOrRes),
      connection: (s: Socket) => {
        this.metrics.activeConnections.inc();
        s.once('close', () => this.metrics.activeConnections.dec());
      },
      abuse: (reason) => this.metrics.http2Goaways.labels(reason).inc(),
    }, this.logger);
    this.admin = config.admin.enabled ? createAdminServer(this) : null;
    this.metrics.configGeneration.set(this.current.id);
  }

  /** The serving generation's config. */
  get config(): Config {
    return this.current.config;
  }

  get table(): Generation['table'] {
    return this.current.table;
  }

  get upstreams(): Generation['upstreams'] {
    return this.current.upstreams;
  }

  async listen(): Promise<{ port: number; adminPort: number | null }> {
    this.store.connect();
    // Give Redis a moment to connect so the first requests do not fail open/closed needlessly, and the runtime
    // consumers a moment to load so their keys work from the first request.
    const [storeReady, consumersLoaded] = await Promise.all([this.store.ready(2000), this.consumers.start(2000)]);
    if (!storeReady) this.logger.warn('state store not reachable yet; rate limits and quotas follow their onError until it is');
    if (!consumersLoaded) this.logger.warn('runtime consumers not loaded yet; their keys are refused until the store answers');
    const tc = this.settings.observability.tracing;
    if (tc !== undefined && this.tracing === null) {
      const { createTracing } = await import('../observability/tracing.ts');
      const dropped = this.metrics.tracingDropped;
      this.tracing = await createTracing(tc, { ...this.opts.tracing, dropped: (n, reason) => dropped.labels(reason).inc(n) });
    }
    const l = this.settings.server.listen;
    await this.listener.listen(l.host, l.port);
    this.certificates?.watch((options) => this.listener.setSecureContext(options), (set) => {
      for (const c of set.certificates) this.metrics.tlsCertificateExpiry.labels(c.names[0] ?? '').set(Math.floor(c.notAfter.getTime() / 1000));
    });
    let adminPort: number | null = null;
    if (this.admin) {
      const a = this.settings.admin.listen;
      await listenOn(this.admin, a.host, a.port);
      adminPort = (this.admin.address() as { port: number }).port;
    }
    this.live = true;
    this.current.activate(null); // active health checks run only once the gateway serves
    this.metrics.configLoadedAt.set(Math.floor(this.current.loadedAt.getTime() / 1000));
    return { port: this.listener.port, adminPort };
  }

  /**
   * Compiles `next` (or what `load` reads) completely, then swaps it in. A config that does not load or compile
   * leaves the live generation serving and comes back as `{ ok: false, problems }`, every problem positioned.
   */
  reload(next?: LoadedConfig): ReloadResult {
    const t0 = performance.now();
    const prev = this.current;
    const done = (r: Omit<ReloadResult, 'durationMs'>): ReloadResult => {
      const result = { ...r, durationMs: Math.round((performance.now() - t0) * 100) / 100 };
      this.lastReload = result;
      this.metrics.configReloads.labels(result.ok ? 'success' : 'failure').inc();
      this.events.emit('reload', result);
      if (result.ok) this.logger.info({ generation: result.generation, hash: result.hash, previousHash: result.previousHash, changes: result.changes, durationMs: result.durationMs }, 'config reloaded');
      else this.logger.error({ generation: result.generation, problems: result.problems, durationMs: result.durationMs }, 'config reload refused; the running config keeps serving');
      this.logger.flush?.(); // an operator who just sent SIGHUP is waiting for this line
      return result;
    };
    if (this.draining) return done({ ok: false, generation: prev.id, hash: prev.hash, problems: ['the gateway is shutting down'] });
    let loaded: LoadedConfig;
    let gen: Generation;
    try {
      if (next === undefined) {
        if (this.opts.load === undefined) return done({ ok: false, generation: prev.id, hash: prev.hash, problems: ['this gateway was started without a config file to reload'] });
        next = this.opts.load();
      }
      loaded = next;
      gen = new Generation(loaded, this, prev);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const file = next?.file ?? prev.file;
      const problems = e.issues.map((i) => formatIssue(next !== undefined && i.line === undefined ? { file, ...next.locate(i) } : i));
      return done({ ok: false, generation: prev.id, hash: prev.hash, problems });
    }
    const changes = diffConfigs(prev.config, gen.config);
    this.swap(gen, prev);
    for (const key of changes.restartRequired) this.logger.warn({ key }, `${key} changed in the config file; it takes effect at the next restart`);
    return done({ ok: true, generation: gen.id, hash: gen.hash, previousHash: prev.hash, changes, warnings: loaded.warnings });
  }

  /** Reload through the primary when this is one of several workers (so every worker moves together). */
  reloadEverywhere(): Promise<ReloadResult> {
    return this.opts.reloadAll !== undefined ? this.opts.reloadAll() : Promise.resolve(this.reload());
  }

  private swap(gen: Generation, prev: Generation): void {
    this.current = gen;
    if (this.live) gen.activate(prev);
    const retired = prev.retire(gen);
    this.retiring.add(retired);
    void retired.then(() => this.retiring.delete(retired));
    this.metrics.configGeneration.set(gen.id);
    this.metrics.configLoadedAt.set(Math.floor(gen.loadedAt.getTime() / 1000));
    this.events.emit('generation', gen, prev);
  }

  /**
   * Graceful stop: readiness turns false, the listener stops accepting, idle keep-alive connections close,
   * in-flight requests, streams and tunnels get `graceMs` to finish; then whatever is left is cut.
   */
  async drain(graceMs = this.current.config.server.shutdownGrace): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.events.emit('draining');
    // HTTP/2 connections get GOAWAY here: their open streams finish, new ones go elsewhere.
    const closed = this.listener.close();
    this.listener.closeIdleConnections();
    const idle = setInterval(() => this.listener.closeIdleConnections(), 100);
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
    this.listener.closeAllConnections();
    await this.close();
  }

  /** Immediate stop (tests, fatal errors). */
  async close(): Promise<void> {
    this.draining = true;
    this.certificates?.close();
    this.listener.closeAllConnections();
    for (const s of this.tunnels) s.destroy();
    await Promise.all([
      this.listener.close(),
      this.admin ? new Promise<void>((r) => { this.admin!.closeAllConnections(); this.admin!.listening ? this.admin!.close(() => r()) : r(); }) : undefined,
    ]);
    // Older generations close what only they used once their last exchange ends; the connections just cut end them.
    if (this.retiring.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(this.retiring), new Promise((r) => { timer = setTimeout(r, 1000); })]);
      clearTimeout(timer);
    }
    await this.current.close();
    try { await this.store.close(); } catch { /* closing anyway */ }
    try { await this.consumers.close(); } catch { /* closing anyway */ }
    if (this.tracing !== null) {
      const t = this.tracing;
      this.tracing = null;
      // What is queued gets one chance to leave; a down collector must not hold the exit up.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([t.shutdown().catch(() => {}), new Promise((r) => { timer = setTimeout(r, 2000); })]);
      clearTimeout(timer);
    }
    this.events.emit('closed');
    this.logger.flush?.();
  }

  /** Malformed requests never reach the handler: answer them here, in the same problem+json shape. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const s = socket as Socket & { _httpMessage?: { headersSent?: boolean } };
    // The handler already refused this request and is closing the connection gracefully (src/server/linger.ts).
    if (isLingering(s)) return;
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

  /** CONNECT (RFC 9110 §9.3.6) asks for a tunnel the gateway never opens: 405 with Allow, then the connection (HTTP/1.1) or stream (HTTP/2) ends. */
  private onConnect(req: IncomingMessage, socketOrRes: Duplex | ServerResponse): void {
    const e = new GatewayError('method_not_allowed', 'CONNECT is not supported: this gateway is not a forward proxy.', { headers: { allow: ALLOW } });
    const requestId = randomUUID();
    if (req.httpVersionMajor === 2) {
      const res = socketOrRes as ServerResponse;
      res.setHeader('x-request-id', requestId);
      sendProblem(res, e, requestId);
    } else {
      const s = socketOrRes as Socket;
      s.on('error', () => {});
      const body = problemBody(e, requestId);
      s.write(`HTTP/1.1 405 ${STATUS_CODES[405]}\r\nallow: ${ALLOW}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
      lingeringClose(s);
    }
    this.metrics.observeRequest('none', 'CONNECT', 405, 0);
    this.logger.info({ type: 'access', requestId, method: 'CONNECT', status: 405, error: e.code, clientIp: peerAddress(req.socket?.remoteAddress) || undefined });
  }
}

/** What a CONNECT is told may be used instead (the gateway proxies origin-form requests, never tunnels). */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
}

/** Whether any route or plan uses rate limits or quotas (the memory-store warning only matters then). */
function usesTrafficControl(c: Config): boolean {
  return c.routes.some((r) => r.rateLimit?.length || r.quota || r.concurrency || r.models) || Object.values(c.plans).some((p) => p.rateLimit.length || p.quota || p.concurrency)
    || Object.values(c.upstreams).some((u) => u.maxInFlight !== undefined);
}
