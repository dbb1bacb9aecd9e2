import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer, createServer as createH2cServer, constants as h2, type Http2Server, type Http2SecureServer, type ServerHttp2Session, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.ts';
import type { Http2Config } from './listener-schema.ts';
import type { TlsCertificates } from './tls.ts';
import { guardSession, type AbuseReason } from './http2-guard.ts';

/** The part of `server:` the listener reads (once, at start). */
export interface ListenerSettings {
  limits: { maxHeaderSize: number; maxHeaderCount: number; headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxConnections?: number };
  http2: Http2Config;
}

export interface ListenerHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  clientError: (err: NodeJS.ErrnoException, socket: Duplex) => void;
  /** A new client connection (TCP), for the connection gauge. */
  connection: (socket: Socket) => void;
  /**
   * A CONNECT request: over HTTP/1.1 with the raw socket (node's parser has let go of it), over HTTP/2 with a
   * response for its stream. The gateway is no forward proxy; node would close an HTTP/1.1 one without a word.
   */
  connect: (req: IncomingMessage, socketOrResponse: Duplex | ServerResponse) => void;
  /** An HTTP/2 connection was sent GOAWAY for abuse. */
  abuse?: (reason: AbuseReason, remoteAddress: string | undefined) => void;
}

type H1Server = HttpServer & { closeIdleConnections(): void; closeAllConnections?: () => void };
type AnyServer = NetServer | HttpServer | Http2SecureServer | Http2Server;

/**
 * The main listener, in one of four shapes chosen at start:
 *  - plain HTTP/1.1 (node:http, exactly as before: the hot path has nothing added);
 *  - TLS without HTTP/2 (node:https);
 *  - TLS with HTTP/2 negotiated by ALPN (`h2`, then `http/1.1` on the same port: node:http2 with allowHTTP1);
 *  - cleartext HTTP/2 beside HTTP/1.1 (`http2.cleartext`): the first bytes of a connection decide (the HTTP/2
 *    preface or not), then it goes to an HTTP/2 or an HTTP/1.1 server. Without it, an h2 preface on the plain
 *    listener is answered 400 like any other malformed HTTP/1.1.
 * Requests over HTTP/2 reach the same request handler through node's compatibility API (Http2ServerRequest and
 * Http2ServerResponse), after `adaptHttp2Request`; WebSocket upgrades stay on HTTP/1.1.
 */
export class Listener {
  /** The server that owns the port. */
  readonly server: AnyServer;
  readonly tls: boolean;
  readonly http2: boolean;
  /** Serves HTTP/1.1 connections (the same object as `server` unless h2c sniffs in front of it). */
  private readonly h1: H1Server | Http2SecureServer;
  private readonly sessions = new Set<ServerHttp2Session>();
  /** HTTP/1.1 connections of an HTTP/2-capable server, which has no closeAllConnections of its own. */
  private readonly h1Sockets = new Set<Socket>();
  private readonly h2c: Http2Server | null = null;

  constructor(s: ListenerSettings, certs: TlsCertificates | null, on: ListenerHandlers, logger: Logger) {
    const limits = s.limits;
    const h1Options = {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      // headers/request timeouts are only checked this often; keep it well under the shortest one
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeout / 4))),
      requireHostHeader: true,
      noDelay: true,
    };
    const h2Settings = { maxConcurrentStreams: s.http2.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderSize };
    // Past this many fields nghttp2 refuses the stream; between maxHeaderCount and here the handler answers 431.
    const maxHeaderListPairs = limits.maxHeaderCount * 2 + 8;
    const onH2Request = adaptHttp2Request(on.request, limits.requestTimeout);
    this.tls = certs !== null;
    if (certs !== null && s.http2.enabled) {
      const server = createSecureServer({ ...certs.serverOptions(), allowHTTP1: true, settings: h2Settings, maxHeaderListPairs, noDelay: true } as Parameters<typeof createSecureServer>[0], onH2Request);
      // The HTTP/1.1 side of an allowHTTP1 server reads node:http's settings from the server object.
      Object.assign(server, h1Options);
      // A handshake that failed is not an HTTP exchange: never answer it with HTTP bytes.
      server.removeAllListeners('tlsClientError');
      server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
      server.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2') return;
        this.h1Sockets.add(socket);
        socket.once('close', () => this.h1Sockets.delete(socket));
      });
      this.h1 = server;
      this.server = server;
      this.http2 = true;
    } else if (certs !== null) {
      const server = createHttpsServer({ ...certs.serverOptions(), ...h1Options }, on.request);
      this.h1 = server as unknown as H1Server;
      this.server = server;
      this.http2 = false;
    } else if (s.http2.cleartext) {
      const h1 = createHttpServer(h1Options, on.request) as H1Server;
      // Never listens itself: connections arrive from the sniffer. Its timeouts and connection list start here.
      h1.emit('listening');
      const h2server = createH2cServer({ settings: h2Settings, maxHeaderListPairs }, onH2Request);
      this.h2c = h2server;
      this.h1 = h1;
      this.server = createNetServer({ noDelay: true }, (socket) => sniffPreface(socket, h1, h2server, limits.headersTimeout));
      this.http2 = true;
    } else {
      this.h1 = createHttpServer(h1Options, on.request) as H1Server;
      this.server = this.h1;
      this.http2 = false;
    }
    if (limits.maxConnections) this.server.maxConnections = limits.maxConnections;
    // node keeps only the first maxHeadersCount fields in req.headers (all of them stay in rawHeaders, which the
    // handler counts against maxHeaderCount): never fewer than a request the gateway accepts may carry.
    (this.h1 as { maxHeadersCount: number }).maxHeadersCount = Math.max(limits.maxHeaderCount, 2000);
    this.h1.on('upgrade', on.upgrade);
    this.h1.on('connect', on.connect);
    // Expect: 100-continue is answered when the body is first read (after routing, auth, limits and the size
    // check), never up front: node's default would invite a client to send a body the gateway then refuses.
    const h1Request = (this.h1 === this.server && this.http2 ? onH2Request : on.request) as (req: IncomingMessage, res: ServerResponse) => void;
    this.h1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => { continueOnRead(req, res); h1Request(req, res); });
    this.h2c?.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) => { continueOnRead(req, res); onH2Request(req, res); });
    this.h1.on('clientError', on.clientError);
    this.server.on('connection', on.connection);
    const h2server = this.h2c ?? (this.http2 ? this.server as Http2SecureServer : null);
    if (this.h2c !== null) this.h2c.on('connect', on.connect); // (the TLS server is this.h1: it has the listener)
    h2server?.on('session', (session: ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // GOAWAY after a quiet spell; streams still open finish first.
      session.setTimeout(s.http2.idleTimeout, () => session.close());
      guardSession(session, s.http2.limits, (reason) => {
        on.abuse?.(reason, session.socket?.remoteAddress);
        logger.warn({ reason, clientIp: session.socket?.remoteAddress }, 'http2: connection exceeded a flood limit; sent GOAWAY (ENHANCE_YOUR_CALM)');
      });
    });
  }

  listen(host: string, port: number): Promise<void> {
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /** Stops accepting; every HTTP/2 connection gets GOAWAY (its open streams finish). Resolves once the port is closed and every connection has ended. */
  close(): Promise<void> {
    const closed = new Promise<void>((r) => (this.server.listening ? this.server.close(() => r()) : r()));
    for (const s of this.sessions) if (!s.closed) s.close();
    if (this.h2c !== null) (this.h1 as H1Server).close(() => {});
    return closed;
  }

  /** Closes HTTP/1.1 keep-alive connections that have no request in flight (drain calls this until done). */
  closeIdleConnections(): void {
    (this.h1 as H1Server).closeIdleConnections();
  }

  /** Cuts every connection now. */
  closeAllConnections(): void {
    const h1 = this.h1 as H1Server;
    if (typeof h1.closeAllConnections === 'function') h1.closeAllConnections();
    for (const s of this.h1Sockets) s.destroy();
    for (const s of this.sessions) s.destroy();
  }

  /** Installs a new default certificate (SNI lookups read the new set by themselves). */
  setSecureContext(options: object): void {
    (this.server as Http2SecureServer).setSecureContext(options);
  }
}

/**
 * What the request path needs that HTTP/2 spells differently, set on the request before it enters the same
 * handler as HTTP/1.1: `host` from `:authority`; a body of unknown length (no content-length, the HEADERS frame
 * did not end the stream) marked as `transfer-encoding: chunked`, which is how the rest of the path recognizes a
 * streamed body (limits, content type, forwarding) — the header itself is hop-by-hop and never forwarded (GET and
 * HEAD excepted);
 * `res.req`, which node's Http2ServerResponse lacks. Pseudo-headers are skipped when headers are forwarded.
 */
export function adaptHttp2Request(handle: (req: IncomingMessage, res: ServerResponse) => void, requestTimeout = 0): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return function onRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    // "HTTP/2.0" in an HTTP/1.1 request line also reads as major 2; only a stream is HTTP/2
    if (req.httpVersionMajor === 2 && 'stream' in req) {
      const r = req as Http2ServerRequest;
      const h = r.headers;
      if (h.host === undefined && h[':authority'] !== undefined) h.host = h[':authority'];
      // GET/HEAD: some clients leave the stream open after HEADERS and end it with an empty DATA frame; that is no body.
      if (h['content-length'] === undefined && !r.stream.endAfterHeaders && r.method !== 'GET' && r.method !== 'HEAD') h['transfer-encoding'] = 'chunked';
      (res as { req?: unknown }).req = req;
      if (!r.stream.endAfterHeaders && r.method !== 'GET' && r.method !== 'HEAD') {
        deferEnd(r);
        if (requestTimeout > 0) limitBodyTime(r, requestTimeout);
      }
    }
    handle(req as IncomingMessage, res as ServerResponse);
  };
}

/**
 * A stream the client resets (RST_STREAM, or nghttp2's own reset for DATA beyond content-length) ends node's compat
 * request exactly like an END_STREAM: 'end' first, the reset code only later. The upstream would then get a
 * truncated body as if it were whole. So the end of the body waits until the reset that caused it would have been
 * processed, and becomes an error if the stream was reset.
 */
function deferEnd(r: Http2ServerRequest): void {
  const stream = r.stream;
  const push = r.push;
  r.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null) return push.call(r, chunk, encoding);
    // No more reads meanwhile: node's compat request asserts it is not read once its stream has closed.
    r._read = noRead;
    // node delivers the reset code to JS one event-loop turn after the end of data (measured on node 20): wait two.
    setImmediate(() => setImmediate(() => {
      const code = stream.rstCode;
      if (code !== undefined && code !== h2.NGHTTP2_NO_ERROR) r.destroy(Object.assign(new Error('HTTP/2 stream reset by the client'), { code: 'ECONNRESET' }));
      else push.call(r, null);
    }));
    return false;
  };
}

/** Sends 100 Continue the first time the request body is read, unless an answer has started by then. */
function continueOnRead(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const r = req as { _read(n: number): void };
  const read = r._read;
  r._read = function (this: unknown, n: number): void {
    r._read = read;
    if (!res.headersSent && !res.writableEnded) res.writeContinue();
    read.call(this, n);
  };
}

/**
 * `server.limits.requestTimeout` for an HTTP/2 request body (node applies it to HTTP/1.1 only): a stream whose body
 * has not ended in time is cancelled (RST_STREAM CANCEL), which aborts the upstream request through deferEnd.
 * A slow-body client (RUDY) on HTTP/2 is otherwise held only by the session's idle timeout, which a trickle resets.
 */
function limitBodyTime(r: Http2ServerRequest, ms: number): void {
  const stream = r.stream;
  const timer = setTimeout(() => { if (!stream.destroyed) stream.close(h2.NGHTTP2_CANCEL); }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  r.once('end', clear);
  stream.once('close', clear);
}

function noRead(): void { /* the end is on its way */ }

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/**
 * h2c beside HTTP/1.1 on one port: reads until the first bytes tell an HTTP/2 preface from an HTTP/1.1 request
 * line (at most 16 bytes; a method never starts with "PRI "), puts them back, and hands the socket over.
 */
function sniffPreface(socket: Socket, h1: HttpServer, h2server: Http2Server, headersTimeout: number): void {
  let seen: Buffer = Buffer.alloc(0);
  // Until the first bytes decide, neither server's timeouts apply: a connection that sends nothing (or a few bytes
  // of a preface) would otherwise be held open for ever.
  const timer = setTimeout(() => socket.destroy(), headersTimeout);
  timer.unref();
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && n < PREFACE.length) return; // not decided yet
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.pause();
    socket.unshift(seen);
    if (isH2) {
      // The HTTP/2 session reads what is buffered on the next tick; resuming here would drop it.
      h2server.emit('connection', socket);
    } else {
      h1.emit('connection', socket);
      socket.resume();
    }
  };
  const onError = () => { clearTimeout(timer); socket.destroy(); };
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', onData);
  socket.on('error', onError);
}

export { h2 as http2Constants };
