// Opening a WebSocket through the gateway with credentials. The gateway authenticates the handshake before the
// tunnel opens: from headers (`Authorization: Bearer …`, or the API-key header), or, for JWTs on routes whose
// provider sets `queryParam`, from a query parameter (what a browser, which cannot set handshake headers, uses).
import { GatewayProblem } from './problem.ts';

/** What the helper needs of a WebSocket: the standard browser interface, which `ws` also implements. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (ev: any) => void, options?: { once?: boolean }): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  removeEventListener(type: string, listener: (ev: any) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * A WebSocket constructor: `globalThis.WebSocket` (browsers, Node 22+) or `ws`'s default export. Header
 * credentials need one that takes `(url, protocols, { headers })` as `ws` does.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

/** How a handshake carries the credential: headers (`ws`, server-side) or a query parameter (browsers). */
export type WebSocketAuthMode = 'header' | 'query';

export interface OpenWebSocketOptions {
  WebSocket: WebSocketConstructor;
  mode: WebSocketAuthMode;
  headers: Record<string, string>;
  /** Query mode: parameter name and value to add. */
  query?: { name: string; value: string };
  protocols?: string | string[];
  signal?: AbortSignal;
  /** How long the handshake may take, ms. */
  timeout?: number;
}

interface UpgradeResponse extends AsyncIterable<Uint8Array> { statusCode?: number; headers: Record<string, string | string[] | undefined> }

/**
 * Opens the socket and resolves once it is open. A refused handshake rejects with a GatewayProblem when the
 * implementation shows the response (`ws`'s `unexpected-response`), else with an Error (browsers hide it).
 */
export function openWebSocket(url: string, o: OpenWebSocketOptions): Promise<WebSocketLike> {
  const u = new URL(url);
  if (o.query !== undefined) u.searchParams.set(o.query.name, o.query.value);
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) { reject(o.signal.reason); return; }
    const sock = o.mode === 'header'
      ? new o.WebSocket(u.href, o.protocols, { headers: o.headers })
      : new o.WebSocket(u.href, o.protocols);
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      sock.removeEventListener('open', onOpen);
      sock.removeEventListener('error', onError);
      sock.removeEventListener('close', onClose);
    };
    const fail = (e: unknown) => {
      if (settled) return;
      cleanup();
      // Closing a socket that never opened makes `ws` emit an error of its own; nobody else listens any more.
      sock.addEventListener('error', () => {});
      try { sock.close(); } catch { /* not open yet */ }
      reject(e);
    };
    const onOpen = () => {
      if (settled) return;
      cleanup();
      // `ws` delivers a message that came with the handshake in the same tick as 'open', before the caller's
      // `await` returns and it adds a listener; hold messages until the caller has had that turn.
      const flow = sock as unknown as { pause?: () => void; resume?: () => void };
      if (typeof flow.pause === 'function' && typeof flow.resume === 'function') { flow.pause(); setTimeout(() => flow.resume!(), 0); }
      resolve(sock);
    };
    const onError = () => fail(new Error(`WebSocket handshake with ${u.origin}${u.pathname} failed`));
    const onClose = (ev: { code?: number }) => fail(new Error(`WebSocket closed before it opened (code ${ev?.code ?? 'unknown'})`));
    const onAbort = () => fail(o.signal!.reason);
    const timer = o.timeout !== undefined && o.timeout > 0
      ? setTimeout(() => fail(new DOMException(`WebSocket handshake took longer than ${o.timeout} ms`, 'TimeoutError')), o.timeout)
      : undefined;
    o.signal?.addEventListener('abort', onAbort, { once: true });
    sock.addEventListener('open', onOpen);
    sock.addEventListener('error', onError);
    sock.addEventListener('close', onClose);
    // `ws` hands over a refused handshake's response; read the problem+json the gateway sent.
    const emitter = sock as unknown as { once?: (ev: string, fn: (req: { destroy(): void }, res: UpgradeResponse) => void) => void };
    if (typeof emitter.once === 'function') {
      emitter.once('unexpected-response', (req, res) => {
        void problemOf(res).then((p) => { req.destroy(); fail(p); }, (e) => { req.destroy(); fail(e); });
      });
    }
  });
}

async function problemOf(res: UpgradeResponse): Promise<GatewayProblem> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of res) { parts.push(c); size += c.length; if (size > 64 * 1024) break; }
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of parts) { bytes.set(c, at); at += c.length; }
  return GatewayProblem.from(new Response(bytes, { status: res.statusCode ?? 500, headers }));
}

/** The constructor to use: the one given, else the platform's; a clear error when neither exists (Node 20). */
export function webSocketConstructor(given: WebSocketConstructor | undefined): WebSocketConstructor {
  if (given !== undefined) return given;
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (g === undefined) throw new Error("No WebSocket implementation: pass { WebSocket } (e.g. `import WebSocket from 'ws'`), or run on Node 22+ or in a browser");
  return g;
}
