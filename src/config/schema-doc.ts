import { z } from 'zod';
import { configSchema } from './schema.ts';

/**
 * The config schema as JSON Schema (`gatehouse schema`, the published `schema/gatehouse.schema.json`) and as the
 * generated key reference of docs/configuration.md. Both are derived from the zod schema's `.describe()` texts, so
 * an editor's hover text, the docs and validation cannot disagree; `node scripts/gen-config-docs.mjs` rewrites
 * both files and test/config/schema-docs.test.ts fails when either drifts.
 */

export type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  format?: string;
  [k: string]: unknown;
};

export function configJsonSchema(): JsonSchema {
  const s = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const { $schema, ...rest } = s;
  return {
    $schema,
    title: 'Gatehouse configuration',
    description: 'gatehouse.yaml: the whole configuration of a Gatehouse gateway (docs/configuration.md).',
    ...rest,
  };
}

/** One documented key: its dotted path (`routes[].match.path`, `upstreams.<name>.health`), type, default, text. */
export interface KeyDoc { path: string; type: string; default?: unknown; required: boolean; description?: string }

/** Every property of the schema, depth first in schema order; union variants and map values are walked too. */
export function listKeys(schema: JsonSchema): KeyDoc[] {
  const out: KeyDoc[] = [];
  const seen = new Set<string>();
  const walk = (node: JsonSchema | undefined, path: string, mapName: string): void => {
    if (!node || typeof node !== 'object') return;
    for (const [name, prop] of Object.entries(node.properties ?? {})) {
      const p = path ? `${path}.${name}` : name;
      if (!seen.has(p)) {
        seen.add(p);
        out.push({ path: p, type: typeOf(prop), default: prop.default, required: node.required?.includes(name) ?? false, description: prop.description });
      }
      walk(prop, p, keyName(name));
    }
    for (const alt of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])]) walk(alt, path, mapName);
    if (node.items) walk(node.items, `${path}[]`, mapName);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${path}.<${mapName}>`, 'name');
  };
  walk(schema, '', 'name');
  return out;
}

/** The placeholder for a map's keys: `upstreams.<name>`, `match.headers.<header>`. */
function keyName(property: string): string {
  if (property === 'headers' || property === 'set' || property === 'add') return 'header';
  if (property === 'models') return 'model';
  if (property === 'query') return 'param';
  return 'name';
}

export function typeOf(n: JsonSchema): string {
  if (n.format === 'duration' || n.format === 'size') return n.format;
  if (n.enum) return n.enum.map((v) => JSON.stringify(v).replace(/^"|"$/g, '')).join(' | ');
  if (n.const !== undefined) return JSON.stringify(n.const);
  const alts = n.anyOf ?? n.oneOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(' or ');
  const t = Array.isArray(n.type) ? n.type.join(' or ') : n.type;
  if (t === 'array') return n.items ? `${wrap(typeOf(n.items))}[]` : 'array';
  if (t === 'object') {
    if (n.properties) return 'object';
    if (n.additionalProperties && typeof n.additionalProperties === 'object') return `map of ${typeOf(n.additionalProperties)}`;
    return 'object';
  }
  return t ?? 'any';
}

const wrap = (t: string) => (/ or | \| /.test(t) ? `(${t})` : t);

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The generated key reference: one table per top-level section. */
export function configReferenceMarkdown(schema: JsonSchema = configJsonSchema()): string {
  const keys = listKeys(schema);
  const sections = Object.keys(schema.properties ?? {});
  const lines: string[] = [];
  for (const section of sections) {
    const top = keys.find((k) => k.path === section)!;
    lines.push(`### \`${section}\``, '', top.description ?? '', '');
    const rows = keys.filter((k) => k.path.startsWith(section + '.') || k.path.startsWith(section + '['));
    if (rows.length === 0) {
      lines.push(`Type: ${top.type}${top.default !== undefined ? `; default \`${JSON.stringify(top.default)}\`` : ''}.`, '');
      continue;
    }
    lines.push('| key | type | default | description |', '| --- | --- | --- | --- |');
    for (const k of rows) {
      const def = k.default !== undefined ? `\`${cell(JSON.stringify(k.default))}\`` : k.required ? 'required' : '';
      lines.push(`| \`${cell(k.path)}\` | ${cell(k.type)} | ${def} | ${cell(k.description ?? '')} |`);
    }
    lines.push('');
  }
  return lines.join('\n').trimEnd() + '\n';
}

export const DOC_BEGIN = '<!-- BEGIN GENERATED KEY REFERENCE (from the config schema: run `node scripts/gen-config-docs.mjs`; do not edit by hand) -->';
export const DOC_END = '<!-- END GENERATED KEY REFERENCE -->';

/** docs/configuration.md with its generated section replaced; the hand-written prose around it is kept. */
export function withReference(doc: string, reference = configReferenceMarkdown()): string {
  const a = doc.indexOf(DOC_BEGIN);
  const b = doc.indexOf(DOC_END);
  if (a < 0 || b < a) throw new Error(`docs/configuration.md has no generated section (${DOC_BEGIN} … ${DOC_END})`);
  return `${doc.slice(0, a + DOC_BEGIN.length)}\n\n${reference}\n${doc.slice(b)}`;
}

/** The published schema file's text (stable: two-space JSON and a final newline). */
export function schemaFileText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n';
}
