import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.ts';

/**
 * Finds one top-level field of a JSON object in its bytes, without parsing the document: the offsets of the
 * field's value, so a rewrite replaces exactly those bytes and leaves every other byte as the client sent it
 * (model routing renames the `model` of a chat request whose messages may be megabytes long).
 *
 * The scan is incremental (state carries across chunks), so the part of a body past the bounded peek is checked
 * as it streams: a second top-level occurrence of the field found there fails the stream. JSON parsers keep the
 * last of duplicate keys; a body that routes by its first `model` and is billed by its last must not pass.
 *
 * Strings are skipped with `indexOf` for the closing quote (the bulk of an LLM request is message text), keys at
 * depth 1 are compared to the field name (escaped keys are decoded), everything else is one byte at a time.
 */

const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN_OBJ = 0x7b, CLOSE_OBJ = 0x7d, OPEN_ARR = 0x5b, CLOSE_ARR = 0x5d, COLON = 0x3a, COMMA = 0x2c;
const START = 0, KEY_OR_END = 1, KEY = 2, COLON_NEXT = 3, VALUE_NEXT = 4, VALUE = 5, AFTER_VALUE = 6, DONE = 7, AFTER_VALUE_SCALAR = 8;
/** Longest raw key still compared (an escaped "model" is at most 6 × 5 + 2 bytes). */
const MAX_KEY = 64;

export type ScanProblem = 'not_object' | 'not_string' | 'duplicate';

export class TopLevelFieldScanner {
  /** Offsets of the field's value, quotes included ([start, end)), for each occurrence seen. */
  readonly found: Array<{ start: number; end: number }> = [];
  problem: ScanProblem | null = null;
  private readonly name: string;
  private state = START;
  /** Offset of the next byte to scan (bytes already pushed). */
  private offset = 0;
  /** Nesting depth inside a top-level value (0: at the top level of the object). */
  private depth = 0;
  private inString = false;
  private escape = false;
  private key: number[] = [];
  private keyEscaped = false;
  private matched = false;
  private valueStart = -1;

  constructor(name: string) {
    this.name = name;
  }

  /** The object's closing brace was seen. */
  get done(): boolean {
    return this.state === DONE;
  }

  push(buf: Buffer): void {
    const n = buf.length;
    let i = 0;
    const base = this.offset;
    this.offset += n;
    while (i < n && this.problem === null) {
      if (this.inString) {
        if (this.escape) { this.escape = false; if (this.state === KEY) this.collect(buf, i, i + 1); i++; continue; }
        const q = buf.indexOf(QUOTE, i);
        const b = buf.indexOf(BACKSLASH, i);
        if (b >= 0 && (q < 0 || b < q)) {
          if (this.state === KEY) { this.keyEscaped = true; this.collect(buf, i, b + 2 > n ? n : b + 2); }
          if (b + 1 >= n) { this.escape = true; i = n; } else i = b + 2;
          continue;
        }
        if (q < 0) { if (this.state === KEY) this.collect(buf, i, n); i = n; continue; }
        if (this.state === KEY) this.collect(buf, i, q);
        this.inString = false;
        i = q + 1;
        this.endString(base + q);
        continue;
      }
      const c = buf[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) { i++; continue; }
      switch (this.state) {
        case START:
          if (c !== OPEN_OBJ) { this.problem = 'not_object'; return; }
          this.state = KEY_OR_END;
          break;
        case KEY_OR_END:
          if (c === CLOSE_OBJ) { this.state = DONE; return; }
          if (c === QUOTE) { this.state = KEY; this.inString = true; this.key.length = 0; this.keyEscaped = false; }
          break;
        case COLON_NEXT:
          if (c === COLON) this.state = VALUE_NEXT;
          break;
        case VALUE_NEXT:
          if (this.matched && c !== QUOTE) { this.problem = 'not_string'; return; }
          this.state = VALUE;
          this.valueStart = base + i;
          if (c === QUOTE) this.inString = true;
          else if (c === OPEN_OBJ || c === OPEN_ARR) this.depth = 1;
          else this.state = AFTER_VALUE_SCALAR;
          break;
        case VALUE:
          // inside a nested object or array of a top-level value
          if (c === QUOTE) this.inString = true;
          else if (c === OPEN_OBJ || c === OPEN_ARR) this.depth++;
          else if ((c === CLOSE_OBJ || c === CLOSE_ARR) && --this.depth === 0) this.state = AFTER_VALUE;
          break;
        case AFTER_VALUE_SCALAR:
          // a number, true, false or null runs until a delimiter
          if (c === COMMA) this.state = KEY_OR_END;
          else if (c === CLOSE_OBJ) { this.state = DONE; return; }
          break;
        case AFTER_VALUE:
          if (c === COMMA) this.state = KEY_OR_END;
          else if (c === CLOSE_OBJ) { this.state = DONE; return; }
          break;
        default:
          return;
      }
      i++;
    }
  }

  private collect(buf: Buffer, from: number, to: number): void {
    for (let j = from; j < to && this.key.length <= MAX_KEY; j++) this.key.push(buf[j]);
  }

  private endString(at: number): void {
    if (this.state === KEY) {
      this.matched = this.isName();
      this.state = COLON_NEXT;
    } else if (this.state === VALUE && this.depth === 0) {
      if (this.matched) {
        if (this.found.length > 0) this.problem = 'duplicate';
        this.found.push({ start: this.valueStart, end: at + 1 });
      }
      this.matched = false;
      this.state = AFTER_VALUE;
    }
  }

  private isName(): boolean {
    const k = this.key;
    if (k.length > MAX_KEY) return false;
    if (!this.keyEscaped) {
      if (k.length !== this.name.length) return false;
      for (let j = 0; j < k.length; j++) if (k[j] !== this.name.charCodeAt(j)) return false;
      return true;
    }
    try { return JSON.parse('"' + Buffer.from(k).toString('utf8') + '"') === this.name; } catch { return false; }
  }
}

/** A top-level field of a complete JSON body: its value's offsets, or why it cannot be read. */
export function findTopLevelField(body: Buffer, name: string): { start: number; end: number } | ScanProblem | null {
  const s = new TopLevelFieldScanner(name);
  s.push(body);
  if (s.problem !== null) return s.problem;
  return s.found[0] ?? null;
}

/** `body` with the bytes [start, end) replaced by `value` (three slices, no copy of the rest into a new string). */
export function splice(body: Buffer, at: { start: number; end: number }, value: Buffer): Buffer {
  return Buffer.concat([body.subarray(0, at.start), value, body.subarray(at.end)], body.length - (at.end - at.start) + value.length);
}

/**
 * The rest of a body after a peek, passed through unchanged while the scan (begun on the peeked bytes) goes on:
 * a second top-level occurrence of the field fails the stream with 400 (the proxy aborts the upstream request).
 */
export class FieldGuardStream extends Transform {
  private readonly scanner: TopLevelFieldScanner;

  private readonly field: string;

  constructor(scanner: TopLevelFieldScanner, field: string) {
    super();
    this.scanner = scanner;
    this.field = field;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.scanner.done) {
      this.scanner.push(chunk);
      if (this.scanner.problem !== null) return cb(new GatewayError('bad_request', `The request body has more than one top-level "${this.field}" field.`));
    }
    cb(null, chunk);
  }
}
