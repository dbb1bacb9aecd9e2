import { z } from 'zod';
import { Counter } from 'prom-client';
import { obj, positiveInt } from '../config/zod-helpers.ts';
import type { Issue } from '../config/errors.ts';
import { GatewayError } from '../errors.ts';
import type { RequestContext, Step } from '../pipeline/context.ts';
import type { Policy } from '../pipeline/policy.ts';
import { readBody, type RequestBody } from '../pipeline/request-body.ts';
import type { Metrics } from '../observability/metrics.ts';
import { BYTES_PER_TOKEN } from '../metering/usage.ts';

/**
 * Prompt guards (`promptGuard:` on a route), on the prompt text of an LLM request — `messages[].content` (strings
 * and text parts), Anthropic's `system`, `prompt`, `input` — read through the shared peek and parse:
 * - `maxTokens`: the prompt's estimated size (UTF-8 bytes / 4) at most; larger → 400 `prompt_too_large`;
 * - `block`: named lists of regular expressions, compiled at load (patterns that could backtrack without bound are
 *   refused), matched against each text; a match → 422 `prompt_blocked` naming the list, never the text;
 * - `redact`: e-mail addresses, phone numbers and card numbers (Luhn-checked) in the prompt are replaced by
 *   `[EMAIL]`, `[PHONE]`, `[CARD]` in the body the upstream receives (src/pipeline/request-body.ts edits).
 * The input is bounded: the body must fit the peek (`server.limits.bodyPeek`, 413 otherwise). Nothing of the
 * prompt is logged; the metrics count refusals and redactions per guard.
 */
export const promptGuardRouteKeys = {
  promptGuard: obj({
    maxTokens: positiveInt.optional().describe('Estimated prompt tokens at most (400 prompt_too_large).'),
    block: z.array(obj({
      name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "-", "_" or "."').describe('Name of the guard (in the problem and the metrics).'),
      patterns: z.array(z.string().min(1)).min(1).describe('Regular expressions; a prompt matching one is refused.'),
      ignoreCase: z.boolean().prefault(true).describe('Match regardless of case.'),
    }).describe('A named list of patterns.')).prefault([]).describe('Prompts matching these are refused (422 prompt_blocked).'),
    redact: z.array(z.enum(['email', 'phone', 'card'])).prefault([]).describe('Kinds of personal data replaced in the prompt before it is forwarded: email, phone, card.'),
  }).optional().describe('Checks on the prompt of an LLM request (docs/ai-traffic.md).'),
};
type RouteGuard = NonNullable<z.output<(typeof promptGuardRouteKeys)['promptGuard']>>;

interface Needs {
  server: { limits: { bodyPeek: number } };
  routes: ReadonlyArray<{ promptGuard?: RouteGuard }>;
}
type Route = { name: string; promptGuard?: RouteGuard };

/**
 * A quantified group that itself contains a quantifier (`(a+)+`, `(\w*)*`, `(x|y+){2,}`): the shape of patterns
 * whose backtracking grows exponentially with the input (ReDoS). Refused at load; write the pattern without
 * nesting, or anchor the inner part.
 */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d+,\d*\})/;

export const promptGuardPolicy: Policy<Needs, Route> = {
  name: 'prompt-guard',
  check(c, out: Issue[]) {
    c.routes.forEach((r, i) => {
      const g = r.promptGuard;
      if (g === undefined) return;
      const names = new Set<string>();
      g.block.forEach((b, j) => {
        if (names.has(b.name)) out.push({ path: ['routes', i, 'promptGuard', 'block', j, 'name'], message: `"${b.name}" is used twice` });
        names.add(b.name);
        b.patterns.forEach((p, k) => {
          const at = ['routes', i, 'promptGuard', 'block', j, 'patterns', k];
          try { new RegExp(p, 'u'); } catch (e) { out.push({ path: at, message: `not a regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}` }); return; }
          if (NESTED_QUANTIFIER.test(p)) out.push({ path: at, message: 'a quantified group containing a quantifier can take exponential time on some inputs (ReDoS); rewrite it without the nesting' });
        });
      });
      if (g.maxTokens === undefined && g.block.length === 0 && g.redact.length === 0) out.push({ path: ['routes', i, 'promptGuard'], message: 'promptGuard sets no guard (maxTokens, block or redact)', warning: true });
    });
  },
  compile({ config, route, env }) {
    const g = route.promptGuard;
    if (g === undefined) return undefined;
    const lists = g.block.map((b) => ({ name: b.name, re: new RegExp(b.patterns.map((p) => `(?:${p})`).join('|'), b.ignoreCase ? 'iu' : 'u') }));
    const redactors = REDACTORS.filter((r) => g.redact.includes(r.kind));
    const m = guardMetrics(env.metrics);
    const route_ = route.name;
    const cap = config.server.limits.bodyPeek;
    const max = g.maxTokens;
    const step: Step = (ctx) => readBody(ctx, cap).then((body) => guard(ctx, body, cap, max, lists, redactors, m, route_));
    return step;
  },
};

interface Text { path: string; text: string }

function guard(ctx: RequestContext, body: RequestBody, cap: number, max: number | undefined, lists: ReadonlyArray<{ name: string; re: RegExp }>, redactors: readonly Redactor[], m: GuardMetrics, route: string): void {
  if (body.kind === 'none') return;
  if (body.kind !== 'json') throw new GatewayError('unsupported_media_type', 'This route checks the prompt of a JSON body (without Content-Encoding).', { extra: { accepted: ['application/json'] } });
  if (!body.complete) throw new GatewayError('payload_too_large', `This route checks prompts of at most ${cap} bytes (server.limits.bodyPeek); this body is larger.`);
  const texts = promptTexts(body.parsedJson());
  if (max !== undefined) {
    let bytes = 0;
    for (const t of texts) bytes += Buffer.byteLength(t.text, 'utf8');
    const estimated = Math.ceil(bytes / BYTES_PER_TOKEN);
    if (estimated > max) {
      m.actions.labels(route, 'maxTokens', 'refused').inc();
      throw new GatewayError('prompt_too_large', `The prompt is about ${estimated} tokens; this route accepts at most ${max}.`, { extra: { guard: 'maxTokens', limit: max, estimated } });
    }
  }
  for (const l of lists) {
    for (const t of texts) {
      if (l.re.test(t.text)) {
        m.actions.labels(route, l.name, 'refused').inc();
        throw new GatewayError('prompt_blocked', `The prompt was refused by the guard "${l.name}".`, { extra: { guard: l.name } });
      }
    }
  }
  if (redactors.length === 0) return;
  for (const t of texts) {
    let s = t.text;
    for (const r of redactors) {
      const next = r.apply(s);
      if (next !== s) { m.actions.labels(route, r.kind, 'redacted').inc(); s = next; }
    }
    if (s !== t.text) body.set(t.path, s);
  }
}

/** The prompt's text fields with their dot paths (for RequestBody edits). */
export function promptTexts(doc: unknown): Text[] {
  const out: Text[] = [];
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return out;
  const o = doc as Record<string, unknown>;
  const content = (v: unknown, path: string) => {
    if (typeof v === 'string') out.push({ path, text: v });
    else if (Array.isArray(v)) v.forEach((p, i) => {
      if (typeof p === 'string') out.push({ path: `${path}.${i}`, text: p });
      else if (p !== null && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string') out.push({ path: `${path}.${i}.text`, text: (p as { text: string }).text });
    });
  };
  const messages = (v: unknown, path: string) => {
    if (!Array.isArray(v)) return;
    v.forEach((msg, i) => { if (msg !== null && typeof msg === 'object') content((msg as { content?: unknown }).content, `${path}.${i}.content`); });
  };
  messages(o.messages, 'messages');
  content(o.system, 'system');
  content(o.prompt, 'prompt');
  if (Array.isArray(o.input) && o.input.some((x) => x !== null && typeof x === 'object')) messages(o.input, 'input');
  else content(o.input, 'input');
  return out;
}

interface Redactor { kind: 'email' | 'phone' | 'card'; apply(s: string): string }

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
const PHONE = /(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w])/g;
const digits = (s: string) => s.replace(/\D/g, '');

/** Luhn checksum: the card-number digit test that rules out most other long numbers. */
export function luhn(d: string): boolean {
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let x = d.charCodeAt(d.length - 1 - i) - 48;
    if (i % 2 === 1) { x *= 2; if (x > 9) x -= 9; }
    sum += x;
  }
  return sum % 10 === 0;
}

/** Cards before phones: a card number would otherwise read as a long phone number. */
const REDACTORS: readonly Redactor[] = [
  { kind: 'email', apply: (s) => (s.includes('@') ? s.replace(EMAIL, '[EMAIL]') : s) },
  { kind: 'card', apply: (s) => s.replace(CARD, (m) => { const d = digits(m); return d.length >= 13 && d.length <= 19 && luhn(d) ? '[CARD]' : m; }) },
  { kind: 'phone', apply: (s) => s.replace(PHONE, (m) => { const n = digits(m).length; return n >= 9 && n <= 15 ? '[PHONE]' : m; }) },
];

export function redactText(s: string, kinds: ReadonlyArray<'email' | 'phone' | 'card'>): string {
  for (const r of REDACTORS) if (kinds.includes(r.kind)) s = r.apply(s);
  return s;
}

class GuardMetrics {
  readonly actions: Counter<string>;
  constructor(m: Metrics) {
    this.actions = new Counter({ name: 'gatehouse_prompt_guard_total', help: 'Prompt guard actions by route, guard (maxTokens, a block list\'s name, email, phone, card) and action (refused, redacted).', labelNames: ['route', 'guard', 'action'], registers: [m.registry] });
  }
}
const metricsCache = new WeakMap<Metrics, GuardMetrics>();
function guardMetrics(m: Metrics): GuardMetrics {
  let x = metricsCache.get(m);
  if (x === undefined) { x = new GuardMetrics(m); metricsCache.set(m, x); }
  return x;
}
