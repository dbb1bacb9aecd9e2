import { randomBytes } from 'node:crypto';

/**
 * Where WebSocket frames begin and end in one direction of a tunnel (RFC 6455 §5.2), read from the frame headers
 * only: payload bytes are counted, never copied. The gateway needs it to close a tunnel itself (a JWT that
 * expired) without cutting a frame in half; a tunnel that never closes itself never builds one.
 */
export class FrameBoundary {
  private readonly head = Buffer.alloc(14);
  private have = 0;
  private need = 2;
  private payload = 0;

  /** No frame is partly through: a frame written now starts cleanly. */
  get atBoundary(): boolean {
    return this.have === 0 && this.payload === 0;
  }

  push(b: Buffer): void {
    let i = 0;
    while (i < b.length) {
      if (this.payload > 0) {
        const n = Math.min(this.payload, b.length - i);
        this.payload -= n;
        i += n;
        continue;
      }
      this.head[this.have++] = b[i++];
      if (this.have === 2) {
        const len7 = this.head[1] & 0x7f;
        this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.head[1] & 0x80 ? 4 : 0);
      }
      if (this.have >= 2 && this.have === this.need) {
        const len7 = this.head[1] & 0x7f;
        this.payload = len7 < 126 ? len7 : len7 === 126 ? this.head.readUInt16BE(2) : this.head.readUInt32BE(2) * 2 ** 32 + this.head.readUInt32BE(6);
        this.have = 0;
        this.need = 2;
      }
    }
  }
}

/** A close frame (RFC 6455 §5.5.1): masked when the gateway speaks as the client (towards the upstream). */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, payload]);
}
