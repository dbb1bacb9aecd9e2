import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';

export type AbuseReason = 'rapid_reset' | 'ping_flood' | 'settings_flood';

export interface FloodLimits {
  window: number;
  maxResets: number;
  maxPings: number;
  maxSettings: number;
}

/**
 * Per-connection flood limits for HTTP/2 (counted in fixed windows of `window` ms):
 *  - stream resets by the client (CVE-2023-44487, "rapid reset": open a stream, reset it at once, repeat; every
 *    stream costs the server a request, the reset costs the client nothing). Node 20's nghttp2 (>= 1.57) already
 *    sends GOAWAY past a token bucket of 1,000 resets refilled at 33/s; this limit is lower, configurable, logged
 *    and counted;
 *  - PING and SETTINGS frames (CVE-2019-9512/9515: each one forces an ACK). nghttp2 stops after 1,000 unsent ACKs;
 *    a client that reads its ACKs is not stopped by that, this limit stops it.
 * Past a limit the connection gets GOAWAY with ENHANCE_YOUR_CALM and is closed; its streams are cut.
 */
export function guardSession(session: ServerHttp2Session, limits: FloodLimits, onAbuse: (reason: AbuseReason) => void): void {
  let windowStart = Date.now();
  let resets = 0;
  let pings = 0;
  let settings = 0;
  let done = false;
  const count = (reason: AbuseReason): void => {
    if (done) return;
    const now = Date.now();
    if (now - windowStart >= limits.window) { windowStart = now; resets = 0; pings = 0; settings = 0; }
    const over = reason === 'rapid_reset' ? ++resets > limits.maxResets
      : reason === 'ping_flood' ? ++pings > limits.maxPings
        : ++settings > limits.maxSettings;
    if (!over) return;
    done = true;
    onAbuse(reason);
    if (!session.destroyed) {
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // Let the GOAWAY frame go out, then cut whatever is left.
      setTimeout(() => session.destroy(), 50).unref();
    }
  };
  session.on('stream', (stream: ServerHttp2Stream) => {
    // 'aborted' fires when the stream closes before our side ended; a stream we destroyed ourselves is already
    // marked destroyed by then and is not the client's doing.
    stream.once('aborted', () => { if (!stream.destroyed) count('rapid_reset'); });
  });
  session.on('ping', () => count('ping_flood'));
  session.on('remoteSettings', () => count('settings_flood'));
}
