import { createRequire } from 'node:module';
import type { Ajv as AjvCore, ErrorObject, ValidateFunction } from 'ajv';
import { GatewayError } from '../errors.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { RequestBody } from '../pipeline/request-body.ts';
import { deref, esc, type OpenApiDocument, type Operation } from './openapi-document.ts';

/**
 * An operation of an OpenAPI document compiled, at config load, into one check per request: path, query and header
 * parameters (strings coerced to the declared types, as the service's own framework does), and JSON, form and
 * multipart bodies against the schema of their media type. Failures are listed as JSON Pointers into
 * `{ path, query, header, body }` with ajv's message, which names the rule broken, never the value sent.
 */

// ajv and ajv-formats are CommonJS; their default exports through createRequire keep the types simple. Required on
// the first document compiled, not at startup: ~10 MB of RSS that a config without `validate:` never needs.
const require = createRequire(import.meta.url);
type AjvClass = new (opts: Record<string, unknown>) => AjvCore;
let ajvModules: { Ajv: AjvClass; Ajv2020: AjvClass; addFormats: (ajv: AjvCore) => unknown } | null = null;
function loadAjv(): NonNullable<typeof ajvModules> {
  return ajvModules ??= { Ajv: require('ajv').default, Ajv2020: require('ajv/dist/2020').default, addFormats: require('ajv-formats').default };
}

/** At most this many failures are listed (the rest are summed up). */
const MAX_ERRORS = 20;

export interface FieldError { pointer: string; detail: string }

/** One document's compilers: a strict one for JSON bodies, a coercing one for text (parameters, forms, multipart). */
export class DocumentCompiler {
  readonly doc: OpenApiDocument;
  private readonly strict: AjvCore;
  private readonly coerce: AjvCore;

  constructor(doc: OpenApiDocument) {
    this.doc = doc;
    const { Ajv, Ajv2020, addFormats } = loadAjv();
    const make = (coerceTypes: false | 'array') => {
      const C = doc.is31 ? Ajv2020 : Ajv;
      // strict: false: OpenAPI adds keywords (example, xml, discriminator, ...) JSON Schema does not know; formats no
      // one defined are not checked rather than failing the load.
      const ajv = new C({ strict: false, allErrors: true, coerceTypes, validateSchema: false, logger: false, discriminator: true });
      addFormats(ajv);
      ajv.addSchema(doc.doc, 'doc');
      return ajv;
    };
    this.strict = make(false);
    this.coerce = make('array');
  }

  /** Compiles the schema at `pointer` (in the document's context, so its `$ref`s resolve). Throws on a bad schema. */
  schema(pointer: string, coerce: boolean): ValidateFunction {
    return (coerce ? this.coerce : this.strict).compile({ $ref: 'doc#' + pointer.split('/').map(encodeURIComponent).join('/') });
  }

  /** An object schema whose properties are the schemas at the given pointers. */
  object(props: ReadonlyArray<{ name: string; pointer: string; required: boolean }>): ValidateFunction {
    return this.coerce.compile({
      type: 'object',
      properties: Object.fromEntries(props.map((p) => [p.name, { $ref: 'doc#' + p.pointer.split('/').map(encodeURIComponent).join('/') }])),
      required: props.filter((p) => p.required).map((p) => p.name),
    });
  }
}

interface BodySchema { media: string; validate: ValidateFunction | null }

export interface OperationValidator {
  /** Whether the operation declares a request body (the body is then read through the peek). */
  readonly hasBody: boolean;
  /** The failures of a request (empty when it conforms); `body` null: the request has none. Throws 413/415 for bodies it cannot validate. */
  check(ctx: RequestContext, body: RequestBody | null): FieldError[];
}

/**
 * `paramNames`: the route's name for each path parameter of the document (a route may call `{document_id}` `:id`).
 */
export function compileOperation(c: DocumentCompiler, op: Operation, paramNames: ReadonlyMap<string, string>, peekCap: number): OperationValidator {
  const group = (where: string) => op.parameters.filter((p) => p.in === where && p.hasSchema).map((p) => ({ name: p.name, pointer: p.pointer + '/schema', required: p.required }));
  const path = group('path');
  const query = group('query');
  // RFC: Accept, Content-Type and Authorization described as header parameters are ignored by OpenAPI.
  const header = group('header').filter((p) => !['accept', 'content-type', 'authorization'].includes(p.name));
  const vPath = path.length ? c.object(path) : null;
  const vQuery = query.length ? c.object(query) : null;
  const vHeader = header.length ? c.object(header) : null;

  let bodyRequired = false;
  const bodies: BodySchema[] = [];
  if (op.op.requestBody !== undefined) {
    const rb = deref(c.doc.doc, op.op.requestBody, op.pointer + '/requestBody');
    const v = rb.v as { required?: boolean; content?: Record<string, { schema?: unknown }> };
    bodyRequired = v.required === true;
    for (const [media, entry] of Object.entries(v.content ?? {})) {
      const m = media.split(';')[0].trim().toLowerCase();
      const json = m === 'application/json' || m.endsWith('+json');
      const pointer = `${rb.pointer}/content/${esc(media)}/schema`;
      bodies.push({ media: m, validate: entry?.schema !== undefined ? c.schema(pointer, !json) : null });
    }
  }
  const accepted = bodies.map((b) => b.media);

  return {
    hasBody: bodies.length > 0,
    check(ctx, body) {
      const errors: FieldError[] = [];
      if (vPath !== null) {
        const o: Record<string, unknown> = {};
        for (const p of path) { const v = ctx.params[paramNames.get(p.name) ?? p.name]; if (v !== undefined) o[p.name] = v; }
        collect(vPath, o, '/path', errors, false);
      }
      if (vQuery !== null) {
        const sp = new URLSearchParams(ctx.query ?? '');
        const o: Record<string, unknown> = {};
        for (const p of query) { const all = sp.getAll(p.name); if (all.length) o[p.name] = all.length === 1 ? all[0] : all; }
        collect(vQuery, o, '/query', errors, false);
      }
      if (vHeader !== null) {
        const o: Record<string, unknown> = {};
        for (const p of header) { const v = ctx.req.headers[p.name]; if (v !== undefined) o[p.name] = v; }
        collect(vHeader, o, '/header', errors, false);
      }
      if (bodies.length > 0) {
        if (body === null || body.kind === 'none') { if (bodyRequired) errors.push({ pointer: '/body', detail: 'is required' }); }
        else {
          if (body.encoded) throw new GatewayError('unsupported_media_type', 'This route validates request bodies: send them without Content-Encoding.', { extra: { accepted } });
          const b = match(bodies, body.mediaType);
          if (b === undefined) throw new GatewayError('unsupported_media_type', `This operation accepts request bodies of type ${accepted.join(', ')}.`, { extra: { accepted } });
          if (b.validate !== null && body.kind !== 'other') {
            let partial = false;
            if (!body.complete) {
              // A multipart upload may run past the peek inside a file part; any other body must fit to be validated.
              const parts = body.kind === 'multipart' ? body.peekedParts() : [];
              const last = parts[parts.length - 1];
              if (last === undefined || last.whole || last.filename === undefined) throw new GatewayError('payload_too_large', `This route validates request bodies up to ${peekCap} bytes (server.limits.bodyPeek; a multipart body's fields must come within it, files may follow).`);
              partial = true;
            }
            collect(b.validate, body.edited(), '/body', errors, partial);
          }
        }
      }
      return errors;
    },
  };
}

function match(bodies: readonly BodySchema[], media: string): BodySchema | undefined {
  const slash = media.indexOf('/');
  return bodies.find((b) => b.media === media) ?? bodies.find((b) => b.media === media.slice(0, slash) + '/*') ?? bodies.find((b) => b.media === '*/*');
}

/**
 * Runs a validator and adds its failures, one per field (the outermost rule broken, so an `anyOf` reads as one
 * failure, not one per branch). `partial`: the body was only seen in part, so a required top-level field may follow.
 */
function collect(v: ValidateFunction, data: unknown, prefix: string, out: FieldError[], partial: boolean): void {
  if (v(data)) return;
  const best = new Map<string, ErrorObject>();
  for (const e of v.errors ?? []) {
    if (partial && e.keyword === 'required' && e.instancePath === '') continue;
    const ptr = pointerOf(e);
    const prev = best.get(ptr);
    if (prev === undefined || e.schemaPath.length < prev.schemaPath.length) best.set(ptr, e);
  }
  for (const [ptr, e] of best) out.push({ pointer: prefix + ptr, detail: detailOf(e) });
}

function pointerOf(e: ErrorObject): string {
  const p = e.params as { missingProperty?: string; additionalProperty?: string; propertyName?: string };
  if (e.keyword === 'required' || e.keyword === 'dependentRequired') return `${e.instancePath}/${esc(p.missingProperty ?? '')}`;
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') return `${e.instancePath}/${esc(p.additionalProperty ?? p.propertyName ?? '')}`;
  return e.instancePath;
}

function detailOf(e: ErrorObject): string {
  if (e.keyword === 'required' || e.keyword === 'dependentRequired') return 'is required';
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') return 'is not allowed';
  return e.message ?? 'is not valid';
}

/** The 400 for a request that does not conform. */
export function invalid(errors: FieldError[]): GatewayError {
  const shown = errors.slice(0, MAX_ERRORS);
  const more = errors.length - shown.length;
  const what = shown.map((e) => e.pointer).join(', ');
  return new GatewayError('request_invalid', `The request does not match the API schema at ${what}${more > 0 ? ` and ${more} more` : ''}.`, { extra: { errors: shown } });
}
