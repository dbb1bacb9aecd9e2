import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * OpenAPI 3.0/3.1 documents for request validation: read from a file at config load (never fetched: see
 * docs/request-rules.md, "Why a file"), parsed once per file version, and searched for the operation a route
 * serves. Pure lookups after the read; src/rules/openapi-validator.ts compiles what they find.
 */

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

export interface OpenApiDocument {
  file: string;
  /** Changes when the file does: the validators of a reload are compiled again only for a new version. */
  version: string;
  doc: Json;
  /** 3.1 documents are JSON Schema 2020-12; 3.0 ones a draft-04/07 dialect with `nullable`. */
  is31: boolean;
}

export interface Operation {
  method: string;
  /** The path template as the document writes it (`/v2/documents/{document_id}`). */
  path: string;
  /** JSON pointer (RFC 6901) of the operation object. */
  pointer: string;
  op: Json;
  /** Path-level and operation-level parameters merged ($refs resolved), with their pointers. */
  parameters: Array<{ name: string; in: string; required: boolean; pointer: string; hasSchema: boolean }>;
}

const cache = new Map<string, OpenApiDocument>();

/** Reads and parses a document (JSON or YAML), again only when the file changed; throws Error with a reason. */
export function readDocument(file: string): OpenApiDocument {
  let st;
  try { st = statSync(file); } catch (e) { throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  const version = `${st.mtimeMs}:${st.size}`;
  const hit = cache.get(file);
  if (hit !== undefined && hit.version === version) return hit;
  const text = readFileSync(file, 'utf8');
  let doc: unknown;
  try { doc = JSON.parse(text); } catch {
    try { doc = parseYaml(text); } catch (e) { throw new Error(`${file} is neither JSON nor YAML: ${(e as Error).message.split('\n')[0]}`); }
  }
  if (!isObj(doc) || typeof doc.openapi !== 'string') throw new Error(`${file} is not an OpenAPI 3 document (no "openapi" version field)`);
  if (!/^3\.[01]\./.test(doc.openapi)) throw new Error(`${file}: OpenAPI ${doc.openapi} is not supported (3.0 and 3.1 are)`);
  const d = { file, version, doc, is31: doc.openapi.startsWith('3.1') };
  cache.set(file, d);
  return d;
}

/** RFC 6901 pointer segment. */
export function esc(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Follows a local `$ref` (`#/components/...`); the object and its pointer. */
export function deref(doc: Json, v: unknown, pointer: string): { v: unknown; pointer: string } {
  for (let i = 0; i < 10 && isObj(v) && typeof v.$ref === 'string'; i++) {
    const ref = v.$ref;
    if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported (${ref})`);
    pointer = ref.slice(1);
    v = ref.slice(2).split('/').reduce<unknown>((o, k) => (isObj(o) ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : Array.isArray(o) ? o[Number(k)] : undefined), doc);
    if (v === undefined) throw new Error(`$ref ${ref} points nowhere`);
  }
  return { v, pointer };
}

/** Every operation of the document. */
export function operations(d: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  const paths = isObj(d.doc.paths) ? d.doc.paths : {};
  for (const [path, item] of Object.entries(paths)) {
    if (!isObj(item)) continue;
    const base = `/paths/${esc(path)}`;
    const shared = Array.isArray(item.parameters) ? item.parameters.map((p, i) => ({ p, pointer: `${base}/parameters/${i}` })) : [];
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const pointer = `${base}/${method}`;
      const own = Array.isArray(op.parameters) ? op.parameters.map((p, i) => ({ p, pointer: `${pointer}/parameters/${i}` })) : [];
      const byKey = new Map<string, Operation['parameters'][number]>();
      for (const { p, pointer: ptr } of [...shared, ...own]) {
        const r = deref(d.doc, p, ptr);
        if (!isObj(r.v) || typeof r.v.name !== 'string' || typeof r.v.in !== 'string') continue;
        const name = r.v.in === 'header' ? r.v.name.toLowerCase() : r.v.name;
        byKey.set(`${r.v.in}:${name}`, { name, in: r.v.in, required: r.v.required === true || r.v.in === 'path', pointer: r.pointer, hasSchema: isObj(r.v.schema) });
      }
      out.push({ method: method.toUpperCase(), path, pointer, op, parameters: [...byKey.values()] });
    }
  }
  return out;
}

/** `{name}` → `{}`: two templates that differ only in parameter names are the same path. */
export function shapeOf(template: string): string {
  return template.replace(/\{[^}]*\}/g, '{}');
}

/** The parameter names of a document path template, in order. */
export function templateParams(template: string): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
}

/**
 * The operation `spec` names: an operationId, or `METHOD /path` as the document writes it. Undefined when none.
 */
export function findOperation(ops: readonly Operation[], spec: string): Operation | undefined {
  const m = /^([A-Za-z]+)\s+(\/.*)$/.exec(spec.trim());
  if (m !== null) return ops.find((o) => o.method === m[1].toUpperCase() && o.path === m[2]);
  return ops.find((o) => o.op.operationId === spec);
}
