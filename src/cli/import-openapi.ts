import { readFile, writeFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/**
 * `gatehouse import openapi FILE|URL --upstream NAME [--prefix P] [--auth MODE]`: turns an
 * OpenAPI 3.x document (what every FastAPI service serves at /openapi.json) into Gatehouse
 * route YAML, one route per operation, so a route table of hundreds of endpoints is generated
 * rather than written by hand. See docs/migrating.md.
 */

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const SUPPORTED = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch']);
const AUTH_MODES = ['public', 'jwt', 'apikey', 'any', 'forward'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export interface ImportOptions {
  upstream: string;
  /** Gateway path prefix the service is mounted under; stripped again before forwarding. */
  prefix?: string;
  /** `auth:` for every route (operations that declare `security: []` become public). Omitted: routes inherit `defaults.auth`. */
  auth?: AuthMode;
  /** Where the document came from, for the header comment. */
  source?: string;
  /**
   * `--validate`: each route validates requests against its operation (`validate: { openapi: FILE, operation }`);
   * the file as the config will name it (read relative to the config file).
   */
  validateWith?: string;
}

export interface ImportResult {
  yaml: string;
  routes: number;
  warnings: string[];
}

interface Operation {
  method: string;
  path: string;
  gatewayPath: string;
  operationId?: string;
  summary?: string;
  tag: string;
  deprecated: boolean;
  publicByDocument: boolean;
  multipart: boolean;
  order: number;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export class ImportError extends Error {}

/** Route YAML for every operation of an OpenAPI 3.x document. Pure: no I/O. */
export function routesFromOpenApi(doc: unknown, opts: ImportOptions): ImportResult {
  if (!isObj(doc)) throw new ImportError('the document is not a JSON/YAML object');
  const version = typeof doc.openapi === 'string' ? doc.openapi : undefined;
  if (version === undefined) {
    throw new ImportError(typeof doc.swagger === 'string' ? 'Swagger 2.0 documents are not supported; convert to OpenAPI 3 first' : 'not an OpenAPI document (no "openapi" version field)');
  }
  if (!/^3\./.test(version)) throw new ImportError(`OpenAPI ${version} is not supported (3.0 and 3.1 are)`);
  if (!/^[A-Za-z0-9_.:-]+$/.test(opts.upstream)) throw new ImportError(`--upstream "${opts.upstream}" must use letters, digits, "-", "_", "." or ":"`);
  const prefix = normalizePrefix(opts.prefix);
  const paths = isObj(doc.paths) ? doc.paths : {};
  const globalSecurity = Array.isArray(doc.security) ? doc.security : undefined;
  const warnings: string[] = [];
  const ops: Operation[] = [];
  const shapes = new Map<string, string>();

  for (const [rawPath, item] of Object.entries(paths)) {
    if (!isObj(item)) continue;
    if (!rawPath.startsWith('/')) { warnings.push(`skipped path "${rawPath}": paths start with "/"`); continue; }
    if (typeof item.$ref === 'string') { warnings.push(`skipped path "${rawPath}": $ref path items are not resolved`); continue; }
    const path = unifyParams(toRoutePath(rawPath), shapes);
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      if (!SUPPORTED.has(method)) { warnings.push(`skipped ${method.toUpperCase()} ${rawPath}: the gateway does not route ${method.toUpperCase()}`); continue; }
      const security = Array.isArray(op.security) ? op.security : globalSecurity;
      const tags = Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : [];
      ops.push({
        method: method.toUpperCase(),
        path: rawPath,
        gatewayPath: prefix ? (path === '/' ? prefix : prefix + path) : path,
        operationId: typeof op.operationId === 'string' ? op.operationId : undefined,
        summary: typeof op.summary === 'string' ? op.summary : undefined,
        tag: tags[0] ?? '',
        deprecated: op.deprecated === true,
        publicByDocument: security !== undefined && security.length === 0 && Array.isArray(op.security),
        multipart: isObj(op.requestBody) && isObj(op.requestBody.content) && Object.keys(op.requestBody.content).some((c) => c.startsWith('multipart/')),
        order: ops.length,
      });
    }
  }

  const names = routeNames(ops, opts.upstream);
  const groups = new Map<string, Operation[]>();
  for (const op of ops) {
    const list = groups.get(op.tag);
    if (list) list.push(op); else groups.set(op.tag, [op]);
  }
  // Tagged groups in order of first appearance; untagged operations last.
  const ordered = [...groups.entries()].sort(([a], [b]) => (a === '' ? 1 : 0) - (b === '' ? 1 : 0));

  const info = isObj(doc.info) ? doc.info : {};
  const title = typeof info.title === 'string' ? info.title : 'untitled';
  const out: string[] = [
    `# Generated by \`gatehouse import openapi${opts.source ? ' ' + opts.source : ''} --upstream ${opts.upstream}${prefix ? ' --prefix ' + prefix : ''}${opts.auth ? ' --auth ' + opts.auth : ''}${opts.validateWith !== undefined ? ' --validate' : ''}\``,
    `# from "${oneLine(title)}"${typeof info.version === 'string' ? ' ' + oneLine(info.version) : ''} (OpenAPI ${version}): ${ops.length} operation${ops.length === 1 ? '' : 's'}, one route each.`,
    `# Needs an upstream named "${opts.upstream}" under upstreams:.${opts.auth ? '' : ' Routes without auth: inherit defaults.auth.'}${opts.validateWith !== undefined ? ` Requests are validated against ${oneLine(opts.validateWith)} (relative to the config file).` : ''}`,
    'routes:',
  ];
  if (ops.length === 0) out[out.length - 1] = 'routes: []';
  for (const [tag, list] of ordered) {
    out.push('', `  # ---- ${tag === '' ? 'untagged' : oneLine(tag)} (${list.length})`);
    for (const op of list) {
      const notes: string[] = [];
      if (op.summary) notes.push(oneLine(op.summary));
      if (op.deprecated) notes.push('deprecated');
      if (op.multipart) notes.push('multipart upload, streamed; set limits.maxBodySize if files can exceed server.limits.maxBodySize');
      if (op.publicByDocument) notes.push('the document declares security: [] (open)');
      if (notes.length) out.push(`  # ${op.method} ${op.path}: ${notes.join('; ')}`);
      out.push(`  - name: ${names.get(op)}`);
      out.push(`    match: { path: ${scalar(op.gatewayPath)}, methods: [${op.method}] }`);
      out.push(`    upstream: ${scalar(opts.upstream)}`);
      const auth = op.publicByDocument && opts.auth ? 'public' : opts.auth;
      if (auth) out.push(`    auth: ${auth}`);
      if (prefix) out.push(`    rewrite: { stripPrefix: ${scalar(prefix)} }`);
      if (opts.validateWith !== undefined) out.push(`    validate: { openapi: ${scalar(opts.validateWith)}, operation: ${scalar(operationRef(op, ops))} }`);
    }
  }
  return { yaml: out.join('\n') + '\n', routes: ops.length, warnings };
}

/** How a route names its operation: the operationId when it is unique in the document, else `METHOD /path`. */
function operationRef(op: Operation, ops: readonly Operation[]): string {
  const id = op.operationId;
  return id !== undefined && ops.filter((o) => o.operationId === id).length === 1 ? id : `${op.method} ${op.path}`;
}

/** `{param}` → `:param` (find-my-way syntax); a literal ":" is escaped as "::". */
export function toRoutePath(p: string): string {
  return p.split(/(\{[^}]*\})/).map((part) => {
    if (part.startsWith('{') && part.endsWith('}')) return ':' + (part.slice(1, -1).replace(/[^A-Za-z0-9_]/g, '_') || 'param');
    return part.replace(/:/g, '::');
  }).join('');
}

/** Two paths that differ only in parameter names are one route shape; keep the first names seen so the router sees one node. */
function unifyParams(path: string, shapes: Map<string, string>): string {
  const shape = path.replace(/(^|[^:]):[A-Za-z0-9_]+/g, '$1:');
  const seen = shapes.get(shape);
  if (seen !== undefined) return seen;
  shapes.set(shape, path);
  return path;
}

function normalizePrefix(p: string | undefined): string {
  if (p === undefined || p === '' || p === '/') return '';
  if (!p.startsWith('/')) throw new ImportError(`--prefix "${p}" must start with "/"`);
  if (/[{}:*?#\s]/.test(p)) throw new ImportError(`--prefix "${p}" must be a plain path (no parameters, wildcards or spaces)`);
  return p.replace(/\/+$/, '');
}

/**
 * Route names from operationIds, prefixed with the upstream so imports of several services never
 * collide. FastAPI's generated ids are `<function>_<path as \W→_>_<method>`: the function name alone
 * is used when it stays unique.
 */
function routeNames(ops: Operation[], upstream: string): Map<Operation, string> {
  const short = new Map<Operation, string>();
  const full = new Map<Operation, string>();
  for (const op of ops) {
    const f = op.operationId !== undefined ? sanitize(op.operationId) : sanitize(`${op.method.toLowerCase()}_${op.path}`).replace(/_+/g, '_');
    full.set(op, f);
    const suffix = `${op.path.replace(/\W/g, '_')}_${op.method.toLowerCase()}`;
    short.set(op, op.operationId !== undefined && op.operationId.endsWith(suffix) && op.operationId.length > suffix.length ? sanitize(op.operationId.slice(0, -suffix.length)) : f);
  }
  const count = new Map<string, number>();
  for (const s of short.values()) count.set(s, (count.get(s) ?? 0) + 1);
  const used = new Set<string>();
  const out = new Map<Operation, string>();
  for (const op of ops) {
    const base = `${upstream}.${count.get(short.get(op)!)! > 1 ? full.get(op)! : short.get(op)!}`;
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    out.set(op, name);
  }
  return out;
}

function sanitize(id: string): string {
  return id.replace(/[^A-Za-z0-9_.:-]+/g, '_').replace(/^_+|_+$/g, '') || 'operation';
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** A YAML flow-context scalar: plain when unambiguous, JSON-quoted otherwise. */
function scalar(s: string): string {
  return /^[A-Za-z0-9_/.~-][A-Za-z0-9_/.~:-]*$/.test(s) && !/:$/.test(s) ? s : JSON.stringify(s);
}

/** Reads a document from a file or an http(s) URL (JSON or YAML). */
export async function readOpenApi(src: string): Promise<unknown> {
  return (await readOpenApiText(src)).doc;
}

/** The document and the text it was read from (what `--save` writes). */
export async function readOpenApiText(src: string): Promise<{ text: string; doc: unknown }> {
  let text: string;
  if (/^https?:\/\//i.test(src)) {
    let r;
    try {
      const { request } = await import('undici'); // loaded when used: see upstreams/undici.ts
      r = await request(src, { headers: { accept: 'application/json, application/yaml;q=0.9, */*;q=0.1' }, headersTimeout: 10_000, bodyTimeout: 10_000 });
    } catch (e) {
      throw new ImportError(`cannot fetch ${src}: ${(e as Error).message}`);
    }
    text = await r.body.text();
    if (r.statusCode !== 200) throw new ImportError(`cannot fetch ${src}: HTTP ${r.statusCode}`);
  } else {
    try {
      text = await readFile(src, 'utf8');
    } catch (e) {
      throw new ImportError(`cannot read ${src}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  try {
    return { text, doc: JSON.parse(text) };
  } catch {
    try {
      return { text, doc: parseYaml(text) };
    } catch (e) {
      throw new ImportError(`${src} is neither JSON nor YAML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}

type Sink = { write(s: string): unknown };

/** The CLI entry: `positionals` are ["openapi", SOURCE]. Writes YAML to `out` (stdout), warnings and errors to `err`; returns the exit code. */
export async function runImport(positionals: string[], v: Record<string, string | boolean | undefined>, out: Sink = process.stdout, err: Sink = process.stderr): Promise<number> {
  const [kind, src] = positionals;
  if (kind !== 'openapi') { err.write(`gatehouse: import: unknown source kind "${kind ?? ''}" (only "openapi")\n`); return 2; }
  if (!src) { err.write('gatehouse: import openapi: give a FILE or URL\n'); return 2; }
  if (typeof v.upstream !== 'string' || v.upstream === '') { err.write('gatehouse: import openapi: --upstream NAME is required\n'); return 2; }
  const auth = v.auth as string | undefined;
  if (auth !== undefined && !(AUTH_MODES as readonly string[]).includes(auth)) { err.write(`gatehouse: import openapi: --auth must be one of ${AUTH_MODES.join(', ')}\n`); return 2; }
  const save = typeof v.save === 'string' && v.save !== '' ? v.save : undefined;
  const remote = /^https?:\/\//i.test(src);
  // The gateway reads a validation document from a file at load, never from the network: a URL is saved first.
  if (v.validate === true && remote && save === undefined) { err.write('gatehouse: import openapi: --validate with a URL needs --save FILE (the gateway validates against a file it reads at load, never a URL)\n'); return 2; }
  try {
    const { text, doc } = await readOpenApiText(src);
    const r = routesFromOpenApi(doc, { upstream: v.upstream, prefix: v.prefix as string | undefined, auth: auth as AuthMode | undefined, source: src, validateWith: v.validate === true ? save ?? src : undefined });
    if (save !== undefined) {
      try { await writeFile(save, text); } catch (e) { err.write(`gatehouse: import openapi: cannot write ${save}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`); return 1; }
      err.write(`saved the document to ${save}\n`);
    }
    for (const w of r.warnings) err.write(`warning: ${w}\n`);
    out.write(r.yaml);
    return 0;
  } catch (e) {
    if (e instanceof ImportError) { err.write(`gatehouse: import openapi: ${e.message}\n`); return 1; }
    throw e;
  }
}
