import { StringDecoder } from 'node:string_decoder';

/** Token usage of one response. `found` is false when no usage block arrived (then only `total` is set, estimated). */
export interface TokenUsage {
  input: number;
  output: number;
  total: number;
  found: boolean;
  /** Input tokens served from the provider's prompt cache (a part of `input`, priced as `cachedInput`). */
  cached?: number;
}

/** How one exchange ended, as far as billing is concerned. */
export interface Settlement {
  /** Give reservations back: no upstream response, a 5xx, or the client left before any response. */
  refund: boolean;
  /** Upstream status (0 = none). */
  status: number;
  tokens: TokenUsage;
  /** Request body bytes plus response body bytes. */
  bytes: number;
  /** The upstream and model that answered, when model routing chose them; else the model the response named. */
  upstream?: string;
  model?: string;
  /** The `model` metric label (bounded by the config). */
  label: string;
  /** Answered from the response cache: 0 tokens, 0 cost. */
  cached: boolean;
}

/** JSON bodies up to this size are parsed whole; past it only a tail is kept and searched. */
export const JSON_CAPTURE_LIMIT = 1024 * 1024;
const TAIL = 64 * 1024;
/** An SSE line longer than this cannot be a usage event worth the memory; it is skipped. */
const MAX_LINE = 64 * 1024;
/** Without a usage block, tokens are estimated as response bytes / 4 (the usual ~4 bytes per token of English text). */
export const BYTES_PER_TOKEN = 4;

const NONE = 0, JSON_BODY = 1, SSE = 2;

/**
 * Reads token usage from a response as it streams by, without holding the response:
 * - JSON (`application/json`): the top-level `usage` block, OpenAI (`prompt_tokens`, `completion_tokens`,
 *   `total_tokens`) or Anthropic (`input_tokens`, `output_tokens`, cache tokens counted as input).
 *   Bodies up to 1 MiB are parsed whole; a larger body keeps only its last 64 KiB, where `usage` sits.
 * - SSE (`text/event-stream`): line by line with a small carry-over; only `data:` lines that mention
 *   "usage" are parsed. OpenAI sends a final chunk with `usage`; Anthropic sends input tokens in
 *   `message_start` and cumulative output tokens in `message_delta`.
 * - anything else: no usage; the estimate applies.
 */
export class UsageParser {
  private mode = NONE;
  bytes = 0;
  private chunks: Buffer[] = [];
  private captured = 0;
  private overflow = false;
  private decoder: StringDecoder | null = null;
  private carry = '';
  private skipping = false;
  private input = -1;
  private output = -1;
  private total = -1;
  private cachedInput = -1;
  /** The model the response names (OpenAI: `model`; Anthropic: `message.model` in streams). */
  model: string | undefined = undefined;

  onHeaders(contentType: string | undefined): void {
    const ct = contentType?.toLowerCase() ?? '';
    if (ct.startsWith('text/event-stream')) { this.mode = SSE; this.decoder = new StringDecoder('utf8'); }
    else if (ct.includes('json')) this.mode = JSON_BODY;
    else this.mode = NONE;
  }

  onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.mode === SSE) this.sse(this.decoder!.write(chunk));
    else if (this.mode === JSON_BODY) this.capture(chunk);
  }

  /** Usage from the response so far; estimated from the bytes seen when none arrived. */
  result(): TokenUsage {
    if (this.mode === JSON_BODY) this.parseJson();
    else if (this.mode === SSE && this.carry !== '' && !this.skipping) this.line(this.carry);
    if (this.input >= 0 || this.output >= 0 || this.total >= 0) {
      const input = Math.max(0, this.input);
      const output = Math.max(0, this.output);
      return { input, output, total: this.total >= 0 ? Math.max(this.total, input + output) : input + output, found: true, ...(this.cachedInput > 0 ? { cached: this.cachedInput } : {}) };
    }
    return { input: 0, output: 0, total: Math.ceil(this.bytes / BYTES_PER_TOKEN), found: false };
  }

  private capture(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.captured += chunk.length;
    if (!this.overflow && this.captured <= JSON_CAPTURE_LIMIT) return;
    this.overflow = true;
    // Keep roughly the last TAIL bytes.
    while (this.chunks.length > 1 && this.captured - this.chunks[0].length >= TAIL) this.captured -= this.chunks.shift()!.length;
  }

  private parseJson(): void {
    if (this.chunks.length === 0) return;
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    if (!this.overflow) {
      try {
        const o = JSON.parse(text) as { usage?: unknown; model?: unknown } | null;
        this.read(o?.usage);
        if (typeof o?.model === 'string') this.model = o.model;
      } catch { /* not JSON after all */ }
      return;
    }
    const at = text.lastIndexOf('"usage"');
    if (at < 0) return;
    const open = text.indexOf('{', at);
    const close = open < 0 ? -1 : matchingBrace(text, open);
    if (close < 0) return;
    try { this.read(JSON.parse(text.slice(open, close + 1))); } catch { /* a partial or odd block */ }
  }

  private sse(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      if (this.skipping) this.skipping = false;
      else this.line(this.carry === '' ? text.slice(start, nl) : this.carry + text.slice(start, nl));
      this.carry = '';
      start = nl + 1;
    }
    if (start < text.length && !this.skipping) {
      this.carry += text.slice(start);
      if (this.carry.length > MAX_LINE) { this.carry = ''; this.skipping = true; }
    }
  }

  private line(l: string): void {
    if (!l.startsWith('data:') || !l.includes('usage')) return;
    let o: { usage?: unknown; model?: unknown; message?: { usage?: unknown; model?: unknown } } | null;
    try { o = JSON.parse(l.slice(5)); } catch { return; }
    if (o === null || typeof o !== 'object') return;
    this.read(o.usage ?? o.message?.usage);
    const model = o.model ?? o.message?.model;
    if (typeof model === 'string') this.model = model;
  }

  private read(u: unknown): void {
    if (u === null || typeof u !== 'object') return;
    const x = u as Record<string, unknown>;
    const num = (k: string) => (typeof x[k] === 'number' && Number.isFinite(x[k]) && (x[k] as number) >= 0 ? (x[k] as number) : -1);
    const prompt = num('prompt_tokens');
    const completion = num('completion_tokens');
    const total = num('total_tokens');
    const input = num('input_tokens');
    const output = num('output_tokens');
    const cache = Math.max(0, num('cache_creation_input_tokens')) + Math.max(0, num('cache_read_input_tokens'));
    if (prompt >= 0) this.input = prompt;
    else if (input >= 0) this.input = input + cache;
    if (completion >= 0) this.output = completion;
    else if (output >= 0) this.output = output; // Anthropic's message_delta carries the running total
    if (total >= 0) this.total = total;
    // OpenAI: prompt_tokens_details.cached_tokens; Anthropic: cache_read_input_tokens (cache writes cost as input).
    const details = x.prompt_tokens_details as Record<string, unknown> | undefined;
    const cachedTokens = details !== null && typeof details === 'object' && typeof details.cached_tokens === 'number' ? details.cached_tokens : num('cache_read_input_tokens');
    if (cachedTokens >= 0) this.cachedInput = cachedTokens;
  }
}

/** Index of the brace closing the object that opens at `open`, skipping strings; -1 if it does not close. */
function matchingBrace(s: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123) depth++;
    else if (c === 125 && --depth === 0) return i;
  }
  return -1;
}
