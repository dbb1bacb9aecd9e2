import { ServerResponse, type IncomingMessage } from 'node:http';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, toGatewayError } from '../errors.ts';
import { RequestContext, type Step } from '../pipeline/context.ts';
import { normalizePath, splitTarget } from '../routing/normalize.ts';
import { AMBIGUOUS_PARAMS, paramsRouteElsewhere } from '../routing/path-params.ts';
import { conditionsHold } from '../routing/table.ts';
import { nextTraceparent, requestIdFrom } from '../observability/trace.ts';
import { peerAddress } from '../server/client-ip.ts';
import { checkRequestHead, type HeadLimits } from '../server/request-head.ts';
import { upstreamRequestHeaders, clientResponseHeaders } from './headers.ts';
import { upstreamError } from './errors.ts';
import { hasDuplicateCredentials, DUPLICATE_CREDENTIALS, finishExchange, type RequestPath, type RequestPathSource } from '../server/handler.ts';
import { OUTCOME_FAIL, OUTCOME_NEUTRAL, OUTCOME_OK, type Outcome, type Target } from '../upstreams/upstream.ts';
import { failover } from '../upstreams/failover.ts';
import { FrameBoundary, closeFrame } from './ws-frames.ts';

/** setTimeout's longest delay; a later expiry re-arms. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * WebSocket upgrades: the route's steps run first (auth happens before the tunnel opens),
 * then the upgrade goes to a target through its pool and the two sockets are piped both ways.
 * Frames (close frames included) pass through untouched.
 */
export function createUpgradeHandler(source: RequestPathSource, tunnels: Set<Duplex>, headLimits: HeadLimits) {
  return function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // The tunnel stays on the generation it started on, however many reloads happen while it is open.
    const rt = source.current;
    rt.enter();
    socket.on('error', () => socket.destroy());
    // A ServerResponse bound to the socket lets errors render exactly like on the request path.
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.shouldKeepAlive = false;
    const ctx = new RequestContext(req, res, performance.now());
    ctx.lease = rt;
    ctx.requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
    ctx.traceparent = nextTraceparent(req.headers.traceparent as string | undefined);
    const fail = (e: unknown) => { rt.fail(ctx, toGatewayError(e)); res.once('finish', () => socket.end()); };
    // One access line and metric per upgrade, whatever its fate: refused (its status), tunnelled (101), or abandoned (499).
    socket.once('close', () => finishExchange(rt, ctx, ctx.status > 0 ? ctx.status : 499));

    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return fail(new GatewayError('bad_request', 'Only WebSocket upgrades are supported.'));
    const refused = handshakeProblem(req);
    if (refused !== null) return fail(refused);
    // A tunnel opened now would only be cut when the drain's grace ends: the client reconnects elsewhere instead.
    if (rt.isDraining()) return fail(new GatewayError('draining', 'The gateway is shutting down; reconnect shortly.', { headers: { 'retry-after': '1' } }));
    if (hasDuplicateCredentials(req.rawHeaders)) return fail(DUPLICATE_CREDENTIALS);
    const headProblem = checkRequestHead(req, headLimits);
    if (headProblem !== null) return fail(headProblem);
    const { path: rawPath, query } = splitTarget(req.url ?? '');
    const path = normalizePath(rawPath);
    if (path === null) return fail(new GatewayError('bad_path', 'The request path is malformed.'));
    ctx.path = path;
    ctx.query = query;
    const m = rt.table.match('GET', path);
    if (path.indexOf(';') !== -1 && paramsRouteElsewhere(rt.table, 'GET', path, m)) return fail(AMBIGUOUS_PARAMS);
    if (m.kind !== 'found') return fail(new GatewayError('not_found', `No WebSocket route matches ${path}.`));
    const q = query !== null ? new URLSearchParams(query) : null;
    const route = m.candidates.find((c) => c.websocket && conditionsHold(c, req.headers, q));
    if (!route) return fail(new GatewayError('not_found', `No WebSocket route matches ${path}.`));
    ctx.route = route;
    ctx.params = m.params;
    ctx.clientIp = rt.trusted.clientIp(peerAddress(req.socket.remoteAddress), req.headers['x-forwarded-for'] as string | undefined);

    runAll(ctx, route.steps).then(() => tunnel(rt, ctx, socket, head, tunnels), fail);
  };
}

const WS_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * RFC 6455 §4.2.1 before anything is spent on the handshake: a GET, no body (an upgrade that carries one would be
 * tunnelled with it, bytes the upstream reads as frames), a Sec-WebSocket-Key that is 16 bytes in base64, and
 * version 13 (otherwise 426 naming the one we speak, §4.4).
 */
function handshakeProblem(req: IncomingMessage): GatewayError | null {
  const h = req.headers;
  if (req.method !== 'GET') return new GatewayError('bad_request', 'A WebSocket handshake must be a GET request.');
  if ((h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined) {
    return new GatewayError('bad_request', 'An upgrade request must not carry a body.', { headers: { connection: 'close' } });
  }
  const key = h['sec-websocket-key'];
  if (typeof key !== 'string' || !WS_KEY.test(key)) return new GatewayError('bad_request', 'The Sec-WebSocket-Key header is missing or malformed.');
  if (h['sec-websocket-version'] === undefined) return new GatewayError('bad_request', 'Sec-WebSocket-Version is missing.');
  if (h['sec-websocket-version'] !== '13') return new GatewayError('upgrade_required', 'Only WebSocket version 13 is supported.', { headers: { 'sec-websocket-version': '13' } });
  return null;
}

/** The Sec-WebSocket-Accept a genuine 101 for this key carries (§4.2.2). */
function expectedAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

function acceptOf(raw: Buffer[] | string[] | null): string | undefined {
  if (raw === null) return undefined;
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toString('latin1').toLowerCase() !== 'sec-websocket-accept') continue;
    if (found !== undefined) return undefined; // two of them: not a valid handshake
    found = raw[i + 1].toString('latin1').trim();
  }
  return found;
}

async function runAll(ctx: RequestContext, steps: readonly Step[]): Promise<void> {
  for (const s of steps) await s(ctx);
}

function tunnel(rt: RequestPath, ctx: RequestContext, socket: Duplex, head: Buffer, tunnels: Set<Duplex>): void {
  const route = ctx.route!;
  let target: Target;
  try {
    target = route.upstream.pick() ?? failover(route.upstream);
  } catch (e) {
    rt.fail(ctx, toGatewayError(e));
    ctx.res.once('finish', () => socket.end());
    return;
  }
  // The upgrade's outcome feeds passive health and circuits like any exchange (once; a tunnel's later life does not).
  let reported = false;
  const report = (o: Outcome) => { if (!reported) { reported = true; rt.report?.(target, o, ctx.upstreamStart, true); } };
  let path = route.rewrite === null ? ctx.path : route.rewrite(ctx.path, ctx.params);
  path = target.basePath + path + (ctx.query !== null ? '?' + ctx.query : '');
  const headers = upstreamRequestHeaders(ctx.req.headers, {
    clientIp: ctx.clientIp, peer: rt.peer(ctx.req), peerTrusted: rt.peerTrusted(ctx.req), tls: rt.tls,
    requestId: ctx.requestId, traceparent: ctx.traceparent, host: route.preserveHost && ctx.req.headers.host ? ctx.req.headers.host : target.host,
  }, rt.stripHeaders, ctx.upstreamHeaders, true);
  delete headers.connection;
  delete headers.upgrade;
  ctx.target = target.origin;
  ctx.upstreamStart = performance.now();
  let abort: ((e?: Error) => void) | null = null;
  const onClientGone = () => abort?.();
  socket.once('close', onClientGone);

  const handler: Dispatcher.DispatchHandler = {
    onConnect(a) { abort = a; },
    onUpgrade(status, raw, up) {
      // A 101 that does not prove it read this handshake (§4.1: the client MUST fail it) is not relayed.
      if (acceptOf(raw as Buffer[] | null) !== expectedAccept(ctx.req.headers['sec-websocket-key'] as string)) {
        up.destroy();
        report(OUTCOME_FAIL);
        socket.off('close', onClientGone);
        ctx.errorCode = 'upstream_failed';
        rt.fail(ctx, new GatewayError('upstream_failed', 'The upstream service answered the WebSocket handshake without a valid Sec-WebSocket-Accept.', { extra: { cause: 'invalid_response' } }));
        ctx.res.once('finish', () => socket.end());
        return;
      }
      report(OUTCOME_OK);
      socket.off('close', onClientGone);
      ctx.upstreamMs = performance.now() - ctx.upstreamStart;
      const { headers: h } = clientResponseHeaders(raw ?? [], true);
      let head101 = `HTTP/1.1 ${status} Switching Protocols\r\n`;
      for (let i = 0; i < h.length; i += 2) head101 += `${h[i]}: ${h[i + 1]}\r\n`;
      socket.write(head101 + `x-request-id: ${ctx.requestId}\r\n\r\n`);
      ctx.res.detachSocket(socket as never);
      ctx.status = 101;
      if (head.length) up.write(head);
      tunnels.add(socket);
      rt.metrics.inflightStreams.labels('websocket').inc();
      let expiry: NodeJS.Timeout | undefined;
      const end = () => {
        if (!tunnels.delete(socket)) return;
        if (expiry !== undefined) clearTimeout(expiry);
        rt.metrics.inflightStreams.labels('websocket').dec();
        up.destroy();
        socket.destroy();
      };
      up.on('error', end).on('close', end);
      socket.on('error', end).on('close', end);
      const expiresAt = ctx.identity?.expiresAt;
      if (expiresAt !== undefined) {
        const toClient = new FrameBoundary();
        const toUpstream = new FrameBoundary();
        up.on('data', (c: Buffer) => toClient.push(c));
        socket.on('data', (c: Buffer) => toUpstream.push(c));
        // The credential that opened the tunnel has lapsed: both ends get a policy-violation close (1008) between
        // frames; one caught mid-frame is cut instead.
        const expire = () => {
          up.unpipe(socket);
          socket.unpipe(up);
          if (toClient.atBoundary) socket.end(closeFrame(1008, 'token expired', false)); else socket.destroy();
          if (toUpstream.atBoundary) up.end(closeFrame(1008, 'token expired', true)); else up.destroy();
        };
        const arm = () => {
          const left = expiresAt - Date.now();
          expiry = left > MAX_TIMER ? setTimeout(arm, MAX_TIMER) : setTimeout(expire, Math.max(0, left));
          expiry.unref();
        };
        arm();
      }
      up.pipe(socket);
      socket.pipe(up);
    },
    onHeaders(status, raw, _resume) {
      // The upstream refused the upgrade: relay its answer and close.
      report(status >= 500 ? OUTCOME_FAIL : OUTCOME_OK);
      const { headers: h } = clientResponseHeaders(raw ?? [], false);
      h.push('x-request-id', ctx.requestId, 'connection', 'close');
      ctx.status = status;
      ctx.res.writeHead(status, h);
      return true;
    },
    onData(chunk) { ctx.res.write(chunk); return true; },
    onComplete() { ctx.res.end(); ctx.res.once('finish', () => socket.end()); },
    onError(err) {
      report(socket.destroyed ? OUTCOME_NEUTRAL : OUTCOME_FAIL);
      socket.off('close', onClientGone);
      if (ctx.res.headersSent) { socket.destroy(); return; }
      const e = upstreamError(err);
      rt.fail(ctx, e);
      ctx.res.once('finish', () => socket.end());
    },
  };
  target.pool.dispatch({ path, method: 'GET', headers, upgrade: 'websocket', headersTimeout: route.timeouts.response }, handler);
}
