import type { Readable } from 'node:stream';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from './context.ts';
import { peekBody } from './body-peek.ts';
import { restOf, setForwardBody } from './body-rewrite.ts';
import { MultipartRewriteStream, MultipartRewriter, boundaryOf, scanParts, type MultipartPlan, type PartPlan, type PeekedPart } from './multipart.ts';

/**
 * A request body as fields, shared by every rule of a request (claim binding, transforms, body-keyed limits,
 * validation): read once through the bounded peek, parsed once, edited by several rules and serialized once when
 * the proxy forwards it (through `ctx.forwardBody`, src/pipeline/body-rewrite.ts).
 *
 * Two views: `field()` reads the body as the client sent it (what binding checks and rate-limit keys look at);
 * `edited()` is the body as the upstream will receive it (what validation checks). JSON field names are dot paths
 * (`a.b.0.c`) for reads, `set` and `remove`; `rename` and `keep` take top-level names. Form and multipart names
 * are plain. JSON and form bodies are edited only when the peek holds them whole (413 otherwise: a body too large
 * to rewrite is never forwarded unrewritten); multipart bodies are rewritten as they stream, file parts untouched.
 */

export type BodyKind = 'none' | 'json' | 'form' | 'multipart' | 'other';

type Edit =
  | { op: 'keep'; names: ReadonlySet<string> }
  | { op: 'remove'; name: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'set'; name: string; value: unknown }
  | { op: 'check'; name: string; fn: (value: string) => void };

const UNPARSED = Symbol('unparsed');
const NONE: Buffer = Buffer.alloc(0);

export class RequestBody {
  readonly kind: BodyKind;
  /** The media type, lowercase, without parameters ('' when there is no Content-Type). */
  readonly mediaType: string;
  /** The bytes the peek read. */
  readonly bytes: Buffer;
  /** The peek holds the whole body. */
  readonly complete: boolean;
  /** The body has a Content-Encoding (gzip, ...): its kind is 'other' whatever its media type. */
  readonly encoded: boolean;
  private readonly ctx: RequestContext;
  private readonly boundary: string | undefined;
  private readonly budget: number;
  private json: unknown = UNPARSED;
  private pairs: Array<[string, string]> | null = null;
  private parts: PeekedPart[] | null = null;
  private readonly edits: Edit[] = [];
  /** The edited copy (JSON value or form pairs), made on the first edit. */
  private out: unknown = UNPARSED;

  constructor(ctx: RequestContext, bytes: Buffer, complete: boolean, present: boolean, budget: number) {
    this.ctx = ctx;
    this.bytes = bytes;
    this.complete = complete;
    this.budget = budget;
    const ct = ctx.req.headers['content-type'];
    const semi = ct === undefined ? -1 : ct.indexOf(';');
    this.mediaType = ct === undefined ? '' : (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
    this.boundary = this.mediaType === 'multipart/form-data' && ct !== undefined ? boundaryOf(ct) : undefined;
    // A compressed body is bytes only the service decompresses: no rule may read a field from it, or vouch for one.
    const ce = ctx.req.headers['content-encoding'];
    this.encoded = ce !== undefined && ce.trim().toLowerCase() !== 'identity';
    this.kind = !present ? 'none'
      : this.encoded ? 'other'
      : this.mediaType === 'application/json' || this.mediaType.endsWith('+json') ? 'json'
      : this.mediaType === 'application/x-www-form-urlencoded' ? 'form'
      : this.boundary !== undefined ? 'multipart' : 'other';
  }

  /** A field as the client sent it; undefined when absent (or, in a body larger than the peek, not within it). */
  field(name: string): string | undefined {
    switch (this.kind) {
      case 'json': {
        const v = this.complete ? at(this.parsedJson(false), name) : undefined;
        return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
      }
      case 'form': {
        for (const [k, v] of this.formPairs()) if (k === name) return v;
        return undefined;
      }
      case 'multipart': {
        for (const p of this.peekedParts()) if (p.name === name && p.value !== undefined) return p.value;
        return undefined;
      }
      default: return undefined;
    }
  }

  /**
   * Every value of a field as the client sent it: forms and multipart may repeat a name, and services differ on
   * which one they read (first, last, all), so a rule that vouches for a field must see them all. JSON: at most one.
   */
  fields(name: string): string[] {
    if (this.kind === 'form') return this.formPairs().filter(([k]) => k === name).map(([, v]) => v);
    if (this.kind === 'multipart') return this.peekedParts().filter((p) => p.name === name && p.value !== undefined).map((p) => p.value!);
    const v = this.field(name);
    return v === undefined ? [] : [v];
  }

  /** A JSON field of any type (objects and arrays too), as the client sent it; undefined when absent. */
  jsonField(name: string): unknown {
    return this.kind === 'json' && this.complete ? at(this.parsedJson(false), name) : undefined;
  }

  /** The parts the peek holds (multipart), with whether more may follow. */
  peekedParts(): PeekedPart[] {
    return (this.parts ??= this.boundary === undefined ? [] : scanParts(this.bytes, this.boundary));
  }

  /** The JSON document as the client sent it (400 when it is not JSON). Only for a complete JSON body. */
  parsedJson(strict = true): unknown {
    if (this.json === UNPARSED) {
      try { this.json = JSON.parse(this.bytes.toString('utf8')); } catch { this.json = INVALID; }
    }
    if (this.json === INVALID) {
      if (strict) throw new GatewayError('bad_request', 'The request body is not valid JSON.');
      return undefined;
    }
    return this.json;
  }

  /** Form pairs in order; in a body cut by the peek, only the pairs that ended within it. */
  formPairs(): Array<[string, string]> {
    if (this.pairs !== null) return this.pairs;
    let text = this.bytes.toString('utf8');
    if (!this.complete) text = text.slice(0, Math.max(0, text.lastIndexOf('&')));
    this.pairs = [...new URLSearchParams(text)];
    return this.pairs;
  }

  /**
   * The body as the upstream will receive it, for validation: the JSON value; form and multipart fields as an
   * object (a repeated name becomes an array; a file part is '' under its name). Multipart: the parts the peek held.
   */
  edited(): unknown {
    if (this.kind === 'json') return this.out !== UNPARSED ? this.out : this.parsedJson();
    if (this.kind === 'form') return fieldsObject(this.out !== UNPARSED ? (this.out as Array<[string, string]>) : this.formPairs());
    if (this.kind === 'multipart') {
      const fields: Array<[string, string]> = [];
      const plan = this.plan();
      for (const f of plan.prepend) fields.push([f.name, f.value]);
      for (const p of this.peekedParts()) {
        const pp = plan.plan(p.name, p.filename !== undefined);
        if (!pp.drop && pp.name !== undefined) fields.push([pp.name, p.filename !== undefined ? '' : p.value ?? '']);
      }
      return fieldsObject(fields);
    }
    return undefined;
  }

  // ---- edits ----------------------------------------------------------------------------------

  /** Drops every field whose (top-level) name is not in `names`. */
  keep(names: ReadonlySet<string>): void { this.edit({ op: 'keep', names }); }
  remove(name: string): void { this.edit({ op: 'remove', name }); }
  rename(from: string, to: string): void { this.edit({ op: 'rename', from, to }); }
  /** Sets a field (replacing every occurrence). JSON keeps the value's type; forms and multipart send it as text. */
  set(name: string, value: unknown): void { this.edit({ op: 'set', name, value }); }
  /**
   * Multipart only: calls `fn` with the value of every text part named `name` as the body streams (parts the peek
   * did not reach included); `fn` refuses by throwing a GatewayError, which aborts the upstream request.
   */
  check(name: string, fn: (value: string) => void): void { this.edit({ op: 'check', name, fn }); }

  private edit(e: Edit): void {
    if (this.kind === 'json' || this.kind === 'form') {
      if (!this.complete) throw tooLarge(this.budget);
      if (e.op === 'check') return;
      if (this.kind === 'json') applyJson(this, e);
      else this.out = applyForm(this.out !== UNPARSED ? (this.out as Array<[string, string]>) : this.formPairs(), e);
    } else if (this.kind !== 'multipart') {
      throw new GatewayError('unsupported_media_type', 'This route rewrites JSON, form (urlencoded) and multipart bodies only, without Content-Encoding.', { extra: { accepted: ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'] } });
    }
    this.edits.push(e);
    if (this.ctx.forwardBody === null) setForwardBody(this.ctx, { open: () => this.open() });
  }

  /** @internal JSON edits work on a copy, so `field()` keeps answering what the client sent. */
  jsonOut(): Record<string, unknown> {
    if (this.out === UNPARSED) {
      const v = this.parsedJson();
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new GatewayError('bad_request', 'The request body must be a JSON object for this route.');
      this.out = structuredClone(v);
    }
    return this.out as Record<string, unknown>;
  }

  private open(): { body: Buffer | Readable; length: number } {
    if (this.kind === 'json') {
      const b = Buffer.from(JSON.stringify(this.out === UNPARSED ? this.parsedJson() : this.out));
      return { body: b, length: b.length };
    }
    if (this.kind === 'form') {
      const b = Buffer.from(new URLSearchParams(this.out === UNPARSED ? this.formPairs() : (this.out as Array<[string, string]>)).toString());
      return { body: b, length: b.length };
    }
    const plan = this.plan();
    const rw = new MultipartRewriter(this.boundary!, plan, this.budget);
    const declared = this.ctx.req.headers['content-length'];
    if (this.complete) {
      const out = [...rw.push(this.bytes), ...rw.end()];
      const b = plan.modifies ? Buffer.concat(out) : this.bytes;
      return { body: b, length: b.length };
    }
    const stream = new MultipartRewriteStream(rw);
    const rest = restOf(this.ctx);
    if (Buffer.isBuffer(rest)) stream.end(rest);
    else {
      rest.once('error', (e) => stream.destroy(e));
      rest.pipe(stream);
    }
    // Checks alone leave the bytes as they came: the client's length still holds.
    return { body: stream, length: !plan.modifies && declared !== undefined ? Number(declared) : -1 };
  }

  /** The multipart edits folded into a plan per part name, and the fields to send first. */
  plan(): MultipartPlan {
    const edits = this.edits;
    const fold = (name: string | undefined, isFile: boolean, from: number): PartPlan => {
      let n = name;
      let check: ((v: string) => void) | null = null;
      for (let i = from; i < edits.length; i++) {
        const e = edits[i];
        if (e.op === 'keep') { if (n === undefined || !e.names.has(n)) return { drop: true, name: n, check }; }
        else if (e.op === 'remove' || e.op === 'set') { if (n === e.name) return { drop: true, name: n, check }; }
        else if (e.op === 'rename') { if (n === e.from) n = e.to; }
        else if (n === e.name && !isFile) { const prev: ((v: string) => void) | null = check; check = prev === null ? e.fn : (v: string) => { prev(v); e.fn(v); }; }
      }
      return { drop: false, name: n, check };
    };
    const prepend: Array<{ name: string; value: string }> = [];
    edits.forEach((e, i) => {
      if (e.op !== 'set') return;
      const p = fold(e.name, false, i + 1);
      if (!p.drop && p.name !== undefined) prepend.push({ name: p.name, value: asText(e.value) });
    });
    return { plan: (name, isFile) => fold(name, isFile, 0), prepend, modifies: edits.some((e) => e.op !== 'check') };
  }
}

const INVALID = Symbol('invalid');

function tooLarge(cap: number): GatewayError {
  return new GatewayError('payload_too_large', `This route rewrites or checks request bodies of at most ${cap} bytes (server.limits.bodyPeek); this one is larger.`);
}

/** A value as form/multipart text: strings as they are, other JSON values as JSON. */
export function asText(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v) ?? '';
}

/** The value at a dot path (`a.b.0.c`) of a parsed JSON document; own properties only. */
export function at(doc: unknown, path: string): unknown {
  let v = doc;
  for (const key of path.split('.')) {
    if (Array.isArray(v)) {
      if (!/^\d+$/.test(key)) return undefined;
      v = v[Number(key)];
    } else if (v !== null && typeof v === 'object') {
      if (!Object.hasOwn(v, key)) return undefined;
      v = (v as Record<string, unknown>)[key];
    } else return undefined;
  }
  return v;
}

function applyJson(body: RequestBody, e: Exclude<Edit, { op: 'check' }>): void {
  const o = body.jsonOut();
  switch (e.op) {
    case 'keep': for (const k of Object.keys(o)) if (!e.names.has(k)) delete o[k]; return;
    case 'rename': if (Object.hasOwn(o, e.from)) { const v = o[e.from]; delete o[e.from]; o[e.to] = v; } return;
    case 'remove': {
      const keys = e.name.split('.');
      const parent = keys.length === 1 ? o : at(o, keys.slice(0, -1).join('.'));
      const last = keys[keys.length - 1];
      if (Array.isArray(parent)) { if (/^\d+$/.test(last)) parent.splice(Number(last), 1); }
      else if (parent !== null && typeof parent === 'object') delete (parent as Record<string, unknown>)[last];
      return;
    }
    case 'set': {
      const keys = e.name.split('.');
      let cur: Record<string, unknown> = o;
      for (const k of keys.slice(0, -1)) {
        const next = Object.hasOwn(cur, k) ? cur[k] : undefined;
        if (next === null || typeof next !== 'object') cur[k] = {};
        cur = cur[k] as Record<string, unknown>;
      }
      cur[keys[keys.length - 1]] = e.value;
    }
  }
}

function applyForm(pairs: Array<[string, string]>, e: Exclude<Edit, { op: 'check' }>): Array<[string, string]> {
  switch (e.op) {
    case 'keep': return pairs.filter(([k]) => e.names.has(k));
    case 'remove': return pairs.filter(([k]) => k !== e.name);
    case 'rename': return pairs.map(([k, v]) => [k === e.from ? e.to : k, v]);
    case 'set': return [...pairs.filter(([k]) => k !== e.name), [e.name, asText(e.value)]];
  }
}

function fieldsObject(pairs: ReadonlyArray<[string, string]>): Record<string, string | string[]> {
  const o: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of pairs) {
    const prev = o[k];
    o[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return o;
}

/** One parsed body per request, whichever rule asks first; the peek behind it is the shared one (body-peek.ts). */
const bodies = new WeakMap<RequestContext, Promise<RequestBody>>();

/** The request body as fields, read through the shared bounded peek (`cap`: server.limits.bodyPeek). */
export function readBody(ctx: RequestContext, cap: number): Promise<RequestBody> {
  let p = bodies.get(ctx);
  if (p !== undefined) return p;
  const h = ctx.req.headers;
  const cl = h['content-length'];
  const present = !((cl === undefined || cl === '0') && h['transfer-encoding'] === undefined);
  p = present
    ? peekBody(ctx, cap).then(({ bytes, complete }) => new RequestBody(ctx, bytes, complete, true, cap))
    : Promise.resolve(new RequestBody(ctx, NONE, true, false, cap));
  bodies.set(ctx, p);
  return p;
}
