import { writeSync } from 'node:fs';

/** A write goes to the fd once this much is buffered; an access line waits at most LAZY_MS otherwise. */
const CHUNK = 16_384;
const LAZY_MS = 100;
/** What may wait for a stuck stdout reader before lines are dropped (and counted) instead of growing memory. */
const MAX_QUEUED = 16 * 1024 * 1024;

/**
 * The logger's stdout in production: every line (pino's own and the access log's) is encoded once into a
 * buffer and written in chunks of up to 16 KiB, in order. It replaces sonic-boom's async
 * mode, which appends each line to a pending string and re-measures that whole string (`Buffer.byteLength`)
 * on every write: with ~50 lines per event-loop turn under load that cost ~35 µs of CPU per line pinned to one
 * core, against ~3 µs here (docs/performance.md). Access lines may wait up to 100 ms for a chunk to fill;
 * pino's lines (lifecycle, warnings, errors) go out at the end of the current turn. A reader that stops reading
 * (a full pipe) costs at most 16 MiB; past that, lines are dropped and counted, and the gateway keeps serving.
 */
export class LogSink {
  private buf = Buffer.allocUnsafe(CHUNK * 2);
  private len = 0;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** The fd answered EAGAIN: wait for the retry timer. */
  private blocked = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Lines dropped because the reader fell 16 MiB behind. */
  dropped = 0;

  constructor(private readonly fd: number) {}

  /** pino's lines: out by the end of this event-loop turn. */
  write(s: string): boolean {
    this.append(s);
    if (this.immediate === null) this.immediate = setImmediate(this.flushNow);
    return true;
  }

  /** Access lines: out when a chunk fills, or LAZY_MS after the first line waiting. */
  writeLazy(s: string): void {
    this.append(s);
    if (this.timer === null && this.len > 0) { this.timer = setTimeout(this.flushNow, LAZY_MS); this.timer.unref(); }
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.flushNow();
    cb?.();
  }

  /** At exit: everything buffered goes out now, waiting out a full pipe for up to a second. */
  flushSync(): void {
    this.cut();
    const until = Date.now() + 1000;
    while (this.queue.length > 0 && Date.now() < until) { this.blocked = false; this.kick(); }
  }

  private readonly flushNow = (): void => {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.immediate !== null) { clearImmediate(this.immediate); this.immediate = null; }
    this.cut();
    this.kick();
  };

  private append(s: string): void {
    // write() stops short rather than overflow; a line can take up to 3 bytes per UTF-16 unit.
    if (this.len + s.length * 3 > this.buf.length) {
      this.cut();
      if (s.length * 3 > this.buf.length) { this.enqueue(Buffer.from(s)); this.kick(); return; }
    }
    this.len += this.buf.write(s, this.len);
    if (this.len >= CHUNK) this.cut();
  }

  /**
   * Hands what is buffered to the fd. The common case writes straight from the buffer, which is then reused (no
   * allocation per chunk); only what a full pipe left unwritten is copied into the queue.
   */
  private cut(): void {
    if (this.len === 0) return;
    const chunk = this.buf.subarray(0, this.len);
    this.len = 0;
    if (this.queue.length === 0 && !this.blocked) {
      const n = this.writeOnce(chunk);
      if (n < chunk.length) this.enqueue(Buffer.from(chunk.subarray(n)));
    } else {
      this.enqueue(Buffer.from(chunk));
    }
  }

  private enqueue(b: Buffer): void {
    // A chunk holds many lines: each is counted (the drop path is rare, so the scan costs nothing that matters).
    if (this.queued + b.length > MAX_QUEUED) { this.dropped += countLines(b); return; }
    this.queue.push(b);
    this.queued += b.length;
  }

  /** Writes what a full pipe held back, in order. */
  private kick(): void {
    while (!this.blocked && this.queue.length > 0) {
      const b = this.queue[0];
      const n = this.writeOnce(b);
      this.queued -= n;
      if (n < b.length) this.queue[0] = b.subarray(n);
      else this.queue.shift();
    }
  }

  /**
   * One synchronous write, like pino's default destination: ~10 µs per 16 KiB chunk, no write in flight on the
   * thread pool, so order holds and nothing is pending when the process exits. A non-blocking pipe that is full
   * (EAGAIN) is retried 10 ms later instead of stalling the event loop. Returns the bytes that are done with.
   */
  private writeOnce(b: Buffer): number {
    try {
      return writeSync(this.fd, b, 0, b.length);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return b.length; // stdout closed: nowhere to write it
      if (!this.blocked) {
        this.blocked = true;
        setTimeout(() => { this.blocked = false; this.kick(); }, 10).unref();
      }
      return 0;
    }
  }
}

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}
