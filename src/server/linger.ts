import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closing an HTTP/1.1 connection whose request body the gateway will not read (a 413 by Content-Length, a body cut
 * off past the limit, CONNECT, framing it refuses) without losing the answer. Destroying the socket at once sends a
 * TCP reset while the client's body bytes are still arriving, and a reset may discard the response before the
 * client has read it (RFC 9112 §9.6). So: the response goes out, then a FIN (half-close), the gateway stops
 * reading, and only after a short grace is the socket destroyed; the client has read the response by then.
 */
const GRACE_MS = 2000;
const LINGERING = Symbol('gatehouse.lingering');

type LingerSocket = Socket & { [LINGERING]?: true; _paused?: boolean };

/** Half-closes now, stops reading, destroys after the grace. Idempotent. */
export function lingeringClose(socket: Socket, graceMs = GRACE_MS): void {
  const s = socket as LingerSocket;
  if (s[LINGERING] || s.destroyed) return;
  s[LINGERING] = true;
  // node's HTTP server resumes a socket for a request it dumps unless it believes the socket paused for backpressure
  s._paused = true;
  s.pause();
  s.end();
  const timer = setTimeout(() => s.destroy(), graceMs);
  timer.unref();
  s.once('close', () => clearTimeout(timer));
}

/** Whether the connection is already closing this way (a later parse error must not cut it short). */
export function isLingering(socket: Socket): boolean {
  return (socket as LingerSocket)[LINGERING] === true;
}

/**
 * Marks the response in flight as the connection's last: `Connection: close` is sent, and once it is written the
 * connection closes as above instead of node's immediate destroy (which is what resets a client still sending).
 * HTTP/2 has no connection to close per request: the stream ends with the response.
 */
export function closeAfterResponse(res: ServerResponse): void {
  if (res.req?.httpVersionMajor === 2) return;
  const socket = res.socket as LingerSocket | null;
  if (socket === null) return;
  res.shouldKeepAlive = false;
  if (!res.headersSent) res.setHeader('connection', 'close');
  // node calls destroySoon() on the socket of a response that ends the connection
  (socket as { destroySoon?: () => void }).destroySoon = () => lingeringClose(socket);
}
