import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit, Scalar, type Alias, type Document, type Node } from 'yaml';
import { configSchema, type Config } from './schema.ts';
import { interpolate, isSingleReference } from './interpolate.ts';
import { ConfigError, formatPath, type ConfigIssue } from './errors.ts';
import { normalize } from './normalize.ts';
import { checkConfig } from './check.ts';
import { suggest } from './suggest.ts';

/** `GATEHOUSE_*` variables that override server settings (precedence: defaults → file → env → CLI flags). */
const ENV_OVERRIDES: Record<string, { path: string[]; list?: boolean }> = {
  GATEHOUSE_LISTEN: { path: ['server', 'listen'] },
  GATEHOUSE_ENVIRONMENT: { path: ['server', 'environment'] },
  GATEHOUSE_TRUSTED_PROXIES: { path: ['server', 'trustedProxies'], list: true },
  GATEHOUSE_MAX_BODY_SIZE: { path: ['server', 'limits', 'maxBodySize'] },
  GATEHOUSE_SHUTDOWN_GRACE: { path: ['server', 'shutdownGrace'] },
  GATEHOUSE_LOG_LEVEL: { path: ['observability', 'log', 'level'] },
  GATEHOUSE_LOG_FORMAT: { path: ['observability', 'log', 'format'] },
  GATEHOUSE_ADMIN_LISTEN: { path: ['admin', 'listen'] },
  GATEHOUSE_ADMIN_TOKEN: { path: ['admin', 'token'] },
  GATEHOUSE_STATE_STORE: { path: ['state', 'store'] },
  GATEHOUSE_REDIS_URL: { path: ['state', 'redis', 'url'] },
};
export const ENV_OVERRIDE_NAMES = Object.keys(ENV_OVERRIDES);

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** CLI flags, applied last: dotted path → value. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  /** Parsed, normalized and checked. */
  config: Config;
  warnings: string[];
  file: string;
  /** sha256 of the effective config (after ${VAR} interpolation and overrides), hex, first 16 digits: tells two loads apart. */
  hash: string;
  /** Adds file:line:col to issues found after loading (route compilation) from their dotted key path. */
  locate(issue: ConfigIssue): ConfigIssue;
}

export function loadConfigFile(file: string, opts: LoadOptions = {}): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, path: '', message: `cannot read config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  return loadConfigText(text, file, opts);
}

export function loadConfigText(text: string, file = 'gatehouse.yaml', opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // Every issue from the file has a position: one without a node of its own (an empty file) points at its start.
  const at = (offset: number | undefined) => (({ line, col }) => ({ line, col }))(lines.linePos(offset ?? 0));

  // One syntax slip makes the YAML parser report every line after it; the first few are what a person needs.
  const seenLines = new Set<number | undefined>();
  const issues: ConfigIssue[] = [];
  for (const e of doc.errors) {
    const pos: { line?: number; col?: number } = at(e.pos[0]);
    if (seenLines.has(pos.line)) continue;
    seenLines.add(pos.line);
    if (issues.length === 5) { issues.push({ file, ...pos, path: '', message: `…and ${doc.errors.length - 5} more YAML syntax errors after these; fix the first one first` }); break; }
    issues.push({ file, ...pos, path: '', message: e.message.split('\n')[0] });
  }
  if (issues.length) throw new ConfigError(issues);

  // A provider key written into the file would sit in version control and every copy of it: it must come from the environment.
  const ups = doc.get('upstreams', true);
  if (isMap(ups)) {
    for (const pair of ups.items) {
      const key = isMap(pair.value) ? pair.value.get('apiKey', true) : undefined;
      if (isScalar(key) && typeof key.value === 'string' && !key.value.includes('${')) {
        issues.push({ file, ...at(key.range?.[0]), path: `upstreams.${String(isScalar(pair.key) ? pair.key.value : pair.key)}.apiKey`, message: 'an API key is read from the environment, never written in the file: apiKey: "${OPENAI_API_KEY}"' });
      }
    }
  }

  // Keys whose variable is missing: the schema's complaint about the placeholder left there would only repeat it.
  const unset = new Set<string>();
  interpolateDocument(doc, env, (node, path, message) => {
    unset.add(formatPath(path));
    issues.push({ file, ...at(node.range?.[0]), path: formatPath(path), message });
  });

  const raw = toJS(doc, file, at) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([{ file, ...at(doc.contents?.range?.[0]), path: '', message: 'the config must be a YAML mapping (key: value)' }]);

  const origin = new Map<string, string>();
  for (const [name, { path, list }] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setIn(raw, path, list ? v.split(',').map((s) => s.trim()).filter(Boolean) : coerceScalar(v));
    origin.set(path.join('.'), `environment variable ${name}`);
  }
  for (const [dotted, v] of Object.entries(opts.overrides ?? {})) {
    if (v === undefined) continue;
    setIn(raw, dotted.split('.'), v);
    origin.set(dotted, 'command-line flag');
  }

  const locate = (path: readonly PropertyKey[], key?: string): ConfigIssue => {
    const dotted = path.map(String).join('.');
    const from = origin.get(dotted);
    if (from) return { file: from, path: formatPath(path), message: '' };
    return { file, ...at(nodeOffset(doc, path, key)), path: formatPath(key ? [...path, key] : path), message: '' };
  };

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      if (unset.has(formatPath(iss.path))) continue;
      const key = iss.code === 'unrecognized_keys' ? iss.keys[0] : undefined;
      issues.push({ ...locate(iss.path, key), message: iss.message });
    }
    // The cross-reference checks need a valid config; the commonest one (a misspelt upstream name) is cheap to
    // find on the raw file too, so one run reports it beside the schema's problems.
    for (const r of rawUpstreamRefs(raw)) if (!issues.some((i) => i.path === formatPath(r.path))) issues.push({ ...locate(r.path), message: r.message });
    throw new ConfigError(issues);
  }
  if (issues.length) throw new ConfigError(issues);

  const { config, issues: normalizing } = normalize(parsed.data, { dir: dirname(resolvePath(file)) });
  const warnings: string[] = [];
  for (const r of [...normalizing, ...checkConfig(config)]) {
    if (r.warning) warnings.push(`${formatPath(r.path)}: ${r.message}`);
    else issues.push({ ...locate(r.path), message: r.message });
  }
  if (issues.length) throw new ConfigError(issues);
  const locateLater = (i: ConfigIssue): ConfigIssue => (i.line !== undefined ? i : { ...locate(parseDotted(i.path)), message: i.message });
  return { config, warnings, file, hash: configHash(raw), locate: locateLater };
}

/** Key order does not change the hash: the same settings written differently are the same config. */
function configHash(raw: unknown): string {
  const canonical = (v: unknown): unknown => Array.isArray(v) ? v.map(canonical)
    : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(raw))).digest('hex').slice(0, 16);
}

/**
 * The document as plain values. An alias to an anchor defined later (or nowhere), and alias expansion past the
 * parser's bound (a "billion laughs" file), throw from the parser: reported at the first alias instead.
 */
function toJS(doc: Document, file: string, at: (offset: number | undefined) => { line: number; col: number }): unknown {
  try {
    return doc.toJS() ?? {};
  } catch (e) {
    let first: Alias | undefined;
    let unresolved: Alias | undefined;
    visit(doc, { Alias(_, node) {
      first ??= node;
      if (node.resolve(doc) === undefined) { unresolved = node; return visit.BREAK; }
    } });
    const excessive = /excessive alias/i.test((e as Error).message);
    const node = excessive ? first : unresolved ?? first;
    throw new ConfigError([{ file, ...at(node?.range?.[0]), path: '', message: excessive || node === undefined
      ? 'too many alias expansions (a YAML resource-exhaustion pattern); write the values out'
      : `alias *${node.source} refers to no anchor defined before it` }]);
  }
}

/** Replaces `${VAR}` in every string scalar, keeping plain (unquoted) scalars typed: `${PORT:-8000}` stays a number. */
function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv, onError: (node: Node, path: PropertyKey[], message: string) => void): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const r = interpolate(node.value, env);
      if ('missing' in r) { onError(node, pathOf(ancestors, node), `environment variable ${r.missing} is not set (use \${${r.missing}:-default} for a default)`); return; }
      if ('malformed' in r) { onError(node, pathOf(ancestors, node), `malformed reference "${r.malformed}": write \${NAME} or \${NAME:-default}, or $\${ for a literal \${`); return; }
      // A list item that is exactly one reference takes a comma-separated value as several items:
      // `origins: ["${CORS_ORIGINS}"]` with CORS_ORIGINS=https://a,https://b is two origins.
      const parent = ancestors[ancestors.length - 1];
      if (typeof key === 'number' && isSeq(parent) && isSingleReference(node.value) && r.value.includes(',')) {
        const items = r.value.split(',').map((s) => s.trim()).filter(Boolean)
          .map((s) => Object.assign(new Scalar(node.type === Scalar.PLAIN ? coerceScalar(s) : s), { range: node.range }));
        parent.items.splice(key, 1, ...items);
        return key + items.length;
      }
      node.value = node.type === Scalar.PLAIN ? coerceScalar(r.value) : r.value;
    },
  });
}

function coerceScalar(v: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

function pathOf(ancestors: readonly unknown[], node: unknown): PropertyKey[] {
  const path: PropertyKey[] = [];
  let child = node;
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const a = ancestors[i];
    if (isPair(a)) { if (a.value === child && isScalar(a.key)) path.unshift(String(a.key.value)); }
    else if (isSeq(a)) path.unshift(a.items.indexOf(child as never));
    child = a;
  }
  return path;
}

/** Offset of the node at `path` (or of `key` inside it); falls back to the nearest ancestor that exists. */
function nodeOffset(doc: Document, path: readonly PropertyKey[], key?: string): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const p of key === undefined ? path : [...path, key]) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p));
      if (!pair) break;
      offset = (p === key ? (pair.key as Node) : (pair.value as Node | null) ?? (pair.key as Node))?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof p === 'number' && node.items[p]) {
      node = node.items[p];
      offset = (node as Node).range?.[0] ?? offset;
    } else break;
  }
  return offset;
}

function rawUpstreamRefs(raw: Record<string, unknown>): Array<{ path: PropertyKey[]; message: string }> {
  const ups = raw.upstreams !== null && typeof raw.upstreams === 'object' ? Object.keys(raw.upstreams) : [];
  const routes = Array.isArray(raw.routes) ? raw.routes : [];
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  routes.forEach((r, i) => {
    const name = (r as { upstream?: unknown } | null)?.upstream;
    if (typeof name !== 'string' || ups.includes(name)) return;
    const s = suggest(name, ups);
    out.push({ path: ['routes', i, 'upstream'], message: `unknown upstream "${name}"${s ? ` (did you mean "${s}"?)` : ups.length ? ` (known: ${ups.join(', ')})` : ''}` });
  });
  return out;
}

function parseDotted(p: string): PropertyKey[] {
  const out: PropertyKey[] = [];
  for (const m of p.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

function setIn(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}
