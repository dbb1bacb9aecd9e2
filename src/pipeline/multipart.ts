import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.ts';

/**
 * multipart/form-data (RFC 7578) for the request rules: the parts a bounded peek holds (`scanParts`), and a
 * rewriter that re-frames a whole body as it streams (`MultipartRewriter`): parts are dropped, renamed, checked
 * or added by name, while every kept part's content (file bytes above all) goes through untouched and unbuffered.
 * Only part headers (at most MAX_PART_HEAD each) and the values of parts a rule must see are held in memory.
 */

/** Longest part header block accepted (a Content-Disposition with a long filename fits many times over). */
export const MAX_PART_HEAD = 16 * 1024;

export interface PeekedPart {
  /** The `name` of its Content-Disposition; undefined when it has none. */
  name: string | undefined;
  /** Present for file parts (even an empty filename marks a file). */
  filename: string | undefined;
  /** The content of a text part the peek holds whole; undefined for file parts and cut parts. */
  value: string | undefined;
  /** The part ends within the peek. */
  whole: boolean;
}

/**
 * `boundary` of a multipart Content-Type, unquoted; undefined when absent. A Content-Type that names a parameter
 * twice is refused: parsers disagree on which one wins (first here, last in python-multipart and werkzeug), and the
 * service would then read parts framed differently from the ones the gateway checked.
 */
export function boundaryOf(contentType: string): string | undefined {
  const p = paramsOf(contentType);
  if (p === null) throw new GatewayError('bad_request', 'The multipart Content-Type names a parameter more than once.');
  const b = p.get('boundary');
  return b === '' ? undefined : b;
}

/** A `name=value` parameter of a header value (`; name="quoted"` or token), case-insensitive name. */
export function paramOf(header: string, name: string): string | undefined {
  return paramsOf(header)?.get(name.toLowerCase());
}

const PARAM = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*/y;

/**
 * The parameters of a header value (`type; a=b; c="q;d"`), names lower-cased, quoted strings respected (a
 * `; boundary=` inside a quoted value is data); null when a name repeats.
 */
export function paramsOf(header: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let at = header.indexOf(';');
  while (at !== -1 && at < header.length) {
    PARAM.lastIndex = at;
    const m = PARAM.exec(header);
    if (m === null) { at = header.indexOf(';', at + 1); continue; } // a parameter without "=": skipped
    const name = m[1].toLowerCase();
    if (out.has(name)) return null;
    out.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]);
    at = PARAM.lastIndex;
  }
  return out;
}

function dispositionOf(head: string): { name: string | undefined; filename: string | undefined } {
  const line = /(?:^|\r\n)content-disposition:([^\r\n]*)/i.exec(head)?.[1];
  if (line === undefined) return { name: undefined, filename: undefined };
  const p = paramsOf(line);
  if (p === null) throw new GatewayError('bad_request', 'A multipart part names a Content-Disposition parameter more than once.');
  return { name: p.get('name'), filename: p.get('filename') ?? p.get('filename*') };
}

/**
 * The parts a peek holds, in order, up to the first one it cuts (that one is listed with whole: false).
 * `complete` is whether the peek is the whole body. A malformed body yields the parts before the fault.
 */
export function scanParts(bytes: Buffer, boundary: string): PeekedPart[] {
  const out: PeekedPart[] = [];
  const delim = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  let at = bytes.indexOf(delim);
  if (at < 0) return out;
  at += delim.length;
  for (;;) {
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return out; // close delimiter
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) return out;
    const headEnd = bytes.indexOf('\r\n\r\n', lineEnd);
    if (headEnd < 0) return out;
    const { name, filename } = dispositionOf(bytes.toString('latin1', lineEnd, headEnd));
    const start = headEnd + 4;
    const end = bytes.indexOf(next, start);
    if (end < 0) { out.push({ name: utf8(name), filename: utf8(filename), value: undefined, whole: false }); return out; }
    out.push({ name: utf8(name), filename: utf8(filename), value: filename === undefined ? bytes.toString('utf8', start, end) : undefined, whole: true });
    at = end + next.length;
  }
}

/** Header parameters were read as latin1 (one char per byte); names are UTF-8 on the wire (RFC 7578 §5.1). */
function utf8(s: string | undefined): string | undefined {
  return s === undefined || !/[\x80-\xff]/.test(s) ? s : Buffer.from(s, 'latin1').toString('utf8');
}

// ---------------------------------------------------------------------------------------------

/** What happens to one part, decided from its name (after the edits before it) and whether it is a file. */
export interface PartPlan {
  drop: boolean;
  /** The name it is sent under (the same, or renamed). */
  name: string | undefined;
  /** Called with a text part's content (the part is held, up to the budget, until it ends). */
  check: ((value: string) => void) | null;
}

/** The edits a rewriter applies: a plan per part, and new text parts sent before the first original one. */
export interface MultipartPlan {
  plan(name: string | undefined, isFile: boolean): PartPlan;
  /** Parts sent first (fields a rule sets). */
  readonly prepend: ReadonlyArray<{ name: string; value: string }>;
  /** Whether the output can differ from the input (false: checks only, the bytes pass as they came). */
  readonly modifies: boolean;
}

const enum S { Preamble, AfterDelim, Head, Body, End }

/**
 * Re-frames a multipart body chunk by chunk: `push(chunk)` returns what to send for it, `end()` what is left.
 * Kept parts are sent as `--boundary CRLF headers CRLF CRLF content CRLF`, dropped parts not at all, and the
 * body ends with the close delimiter; preamble and epilogue are dropped (RFC 2046 §5.1.1 gives them no meaning).
 * When the plan only checks (modifies: false) the input is passed on exactly as it came.
 * Throws a GatewayError: 400 for a malformed body, 413 when a checked value passes `budget` bytes, or whatever a
 * check throws.
 */
export class MultipartRewriter {
  private readonly delim: Buffer;
  /** CRLF + delimiter: how a part's content ends. */
  private readonly next: Buffer;
  private readonly rules: MultipartPlan;
  private budget: number;
  private state = S.Preamble;
  /** Bytes held back: a possible delimiter cut by a chunk edge, or an unfinished header block. */
  private carry: Buffer = EMPTY;
  private part: PartPlan | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private out: Buffer[] = [];

  constructor(boundary: string, rules: MultipartPlan, budget: number) {
    this.delim = Buffer.from(`--${boundary}`);
    this.next = Buffer.from(`\r\n--${boundary}`);
    this.rules = rules;
    this.budget = budget;
  }

  push(chunk: Buffer): Buffer[] {
    this.out = [];
    if (!this.rules.modifies) this.out.push(chunk);
    let buf = chunk;
    const carry = this.carry;
    if (carry.length !== 0) {
      this.carry = EMPTY;
      if (this.state === S.Body && chunk.length >= this.next.length) {
        // Inside a part (a file: megabytes) only the seam can hide a delimiter cut by the last chunk edge: search
        // it apart, so the chunk itself is never copied.
        const seam = Buffer.concat([carry, chunk.subarray(0, this.next.length - 1)]);
        const at = seam.indexOf(this.next);
        if (at < 0) this.content(carry);
        else {
          this.content(seam.subarray(0, at));
          this.endPart();
          this.state = S.AfterDelim;
          buf = chunk.subarray(at + this.next.length - carry.length);
        }
      } else buf = Buffer.concat([carry, chunk]);
    }
    while (buf.length > 0) buf = this.step(buf);
    return this.out;
  }

  end(): Buffer[] {
    this.out = [];
    if (this.state !== S.End) throw malformed();
    return this.out;
  }

  private emit(b: Buffer): void {
    if (this.rules.modifies && b.length > 0) this.out.push(b);
  }

  /** Consumes a prefix of `buf`, returns the rest (empty when everything was taken or carried). */
  private step(buf: Buffer): Buffer {
    switch (this.state) {
      case S.Preamble: {
        // The first delimiter may open the body or follow a preamble line.
        const at = buf.indexOf(this.delim);
        // What is held keeps the CRLF before a delimiter cut by the chunk edge: without it the delimiter, once
        // complete, would look like one inside a preamble line and the first part would be skipped.
        if (at < 0 || at + this.delim.length + 2 > buf.length) { this.hold(buf, at < 0 ? this.delim.length + 1 : buf.length - at + Math.min(at, 2)); return EMPTY; }
        if (at > 0 && (buf[at - 1] !== 0x0a || buf[at - 2] !== 0x0d)) return buf.subarray(at + 1);
        this.emitPrepended();
        this.state = S.AfterDelim;
        return buf.subarray(at + this.delim.length);
      }
      case S.AfterDelim: {
        if (buf.length < 2) { this.hold(buf, buf.length); return EMPTY; }
        if (buf[0] === 0x2d && buf[1] === 0x2d) { this.emit(Buffer.concat([this.delim, CLOSE])); this.state = S.End; return EMPTY; }
        // Transport padding (spaces, tabs) may precede the CRLF that ends a delimiter line.
        const eol = buf.indexOf('\r\n');
        if (eol < 0) { if (buf.length > 256) throw malformed(); this.hold(buf, buf.length); return EMPTY; }
        if (!/^[ \t]*$/.test(buf.toString('latin1', 0, eol))) throw malformed();
        this.state = S.Head;
        return buf.subarray(eol + 2);
      }
      case S.Head: {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > MAX_PART_HEAD) throw new GatewayError('payload_too_large', `A multipart part's headers exceed ${MAX_PART_HEAD} bytes.`);
          this.hold(buf, buf.length);
          return EMPTY;
        }
        if (end > MAX_PART_HEAD) throw new GatewayError('payload_too_large', `A multipart part's headers exceed ${MAX_PART_HEAD} bytes.`);
        const head = buf.toString('latin1', 0, end);
        const d = dispositionOf('\r\n' + head);
        const plan = this.rules.plan(utf8(d.name), d.filename !== undefined);
        this.part = plan;
        if (!plan.drop) {
          const renamed = plan.name !== utf8(d.name) && plan.name !== undefined ? renameDisposition(head, plan.name) : null;
          this.emit(Buffer.concat([this.delim, CRLF, renamed === null ? buf.subarray(0, end) : Buffer.from(renamed, 'latin1'), CRLF2]));
        }
        this.state = S.Body;
        return buf.subarray(end + 4);
      }
      case S.Body: {
        const at = buf.indexOf(this.next);
        if (at < 0) {
          // Keep what could be the start of a delimiter; the rest is content.
          const keep = Math.min(buf.length, this.next.length - 1);
          this.content(buf.subarray(0, buf.length - keep));
          this.hold(buf, keep);
          return EMPTY;
        }
        this.content(buf.subarray(0, at));
        this.endPart();
        this.state = S.AfterDelim;
        return buf.subarray(at + this.next.length);
      }
      default:
        return EMPTY; // the epilogue
    }
  }

  private content(b: Buffer): void {
    if (b.length === 0) return;
    const p = this.part!;
    if (p.check !== null) {
      this.heldBytes += b.length;
      if (this.heldBytes > this.budget) throw new GatewayError('payload_too_large', `A multipart field this route checks is larger than ${this.budget} bytes (server.limits.bodyPeek).`);
      this.held.push(Buffer.from(b)); // a copy: the chunk's memory is not ours to keep
    }
    if (!p.drop) this.emit(b);
  }

  private endPart(): void {
    const p = this.part!;
    if (p.check !== null) {
      const v = Buffer.concat(this.held).toString('utf8');
      this.budget -= this.heldBytes;
      this.held = [];
      this.heldBytes = 0;
      p.check(v);
    }
    if (!p.drop) this.emit(CRLF);
    this.part = null;
  }

  private emitPrepended(): void {
    for (const f of this.rules.prepend) {
      const value = Buffer.from(f.value, 'utf8');
      // A value taken from the request (a header, a field) could carry the boundary and smuggle in parts of its own.
      if (value.includes(this.delim)) throw new GatewayError('bad_request', `A value this route writes into the multipart body (field "${f.name}") contains the body's boundary.`);
      this.emit(Buffer.from(`${this.delim}\r\ncontent-disposition: form-data; name="${quoteName(f.name)}"\r\n\r\n`, 'latin1'));
      this.emit(value);
      this.emit(CRLF);
    }
  }

  /** Keeps the last `n` bytes of `buf` for the next chunk. */
  private hold(buf: Buffer, want: number): void {
    const n = Math.min(want, buf.length);
    if (n <= 0) return;
    // a copy when small (a delimiter's worth), so a large chunk is not retained by a view of its tail
    this.carry = n <= 256 ? Buffer.from(buf.subarray(buf.length - n)) : buf.subarray(buf.length - n);
  }
}

const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const CLOSE = Buffer.from('--\r\n');

function malformed(): GatewayError {
  return new GatewayError('bad_request', 'The multipart body is malformed (a part or the closing boundary is missing).');
}

/** RFC 7578 §4.2: a name is a quoted-string; '"' and CR/LF are percent-encoded as browsers do. Bytes are UTF-8 written as latin1. */
function quoteName(name: string): string {
  return Buffer.from(name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A'), 'utf8').toString('latin1');
}

/** The header block with the `name` parameter of its Content-Disposition replaced. */
function renameDisposition(head: string, name: string): string {
  return head.replace(/(^|\r\n)(content-disposition:[^\r\n]*?;\s*name\s*=\s*)("(?:[^"\\]|\\.)*"|[^;\s]*)/i, (_m, a: string, b: string) => `${a}${b}"${quoteName(name)}"`);
}

/** The rewriter as a stream: errors (400/413/403 from a check) destroy it with the GatewayError. */
export class MultipartRewriteStream extends Transform {
  private readonly rw: MultipartRewriter;

  constructor(rw: MultipartRewriter) {
    super();
    this.rw = rw;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let out: Buffer[];
    try { out = this.rw.push(chunk); } catch (e) { cb(e as Error); return; }
    for (const b of out) this.push(b);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    let out: Buffer[];
    try { out = this.rw.end(); } catch (e) { cb(e as Error); return; }
    for (const b of out) this.push(b);
    cb();
  }
}
