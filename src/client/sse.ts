// Server-sent events read as the WHATWG HTML spec parses them ("event stream interpretation"), yielded as they
// arrive, with the token usage an LLM stream reports on the way (OpenAI: the last chunk before `[DONE]`;
// Anthropic: `message_start` and `message_delta`).

export interface SseEvent {
  /** The event type (`message` when the stream named none). */
  event: string;
  /** The data lines joined with "\n". */
  data: string;
  /** The last event id so far (ids persist across events, as in EventSource). */
  id: string;
  /** The reconnection time the server asked for with this event (`retry:`), ms. */
  retry?: number;
  /** `data` parsed as JSON (parsed once; throws on non-JSON data). */
  json<T = unknown>(): T;
}

/** Token usage as the stream reported it, in one shape whatever the provider. */
export interface StreamUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  /** The last usage block as it came (provider-specific fields such as cached tokens). */
  raw: Record<string, unknown>;
}

/**
 * Parses an event stream from a byte stream. Line ends may be CRLF, LF or CR (also split across chunks);
 * a leading BOM is dropped; an event cut off by the end of the stream is not dispatched.
 */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  let first = true;
  let skipLf = false;
  let data = '';
  let hasData = false;
  let type = '';
  let lastId = '';
  let retry: number | undefined;

  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    if (first && buf.length > 0) { if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1); first = false; }
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 10 && skipLf && i === start) { skipLf = false; start = i + 1; continue; }
      skipLf = c === 13;
      const line = buf.slice(start, i);
      start = i + 1;
      if (line === '') {
        if (hasData) {
          yield makeEvent(type || 'message', data.endsWith('\n') ? data.slice(0, -1) : data, lastId, retry);
        }
        data = ''; hasData = false; type = ''; retry = undefined;
        continue;
      }
      if (line.charCodeAt(0) === 58) continue; // ":" comment (keep-alive)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'data') { data += value + '\n'; hasData = true; }
      else if (field === 'event') type = value;
      else if (field === 'id') { if (!value.includes('\0')) lastId = value; }
      else if (field === 'retry') { if (/^\d+$/.test(value)) retry = Number(value); }
    }
    buf = buf.slice(start);
    if (buf.length > 0) skipLf = false;
  }
}

function makeEvent(event: string, data: string, id: string, retry: number | undefined): SseEvent {
  let parsed: { v: unknown } | undefined;
  return {
    event, data, id, ...(retry !== undefined ? { retry } : {}),
    json<T>() { parsed ??= { v: JSON.parse(data) }; return parsed.v as T; },
  };
}

/** Folds usage blocks into one running figure; the last block of a kind wins (Anthropic's output count is cumulative). */
export class UsageTracker {
  private input = -1;
  private output = -1;
  private total = -1;
  private raw: Record<string, unknown> | undefined;

  /** Looks at one event's data; cheap for events that do not mention usage. */
  observe(data: string): void {
    if (data.charCodeAt(0) !== 123 || !data.includes('"usage"')) return;
    let o: { usage?: unknown; message?: { usage?: unknown } };
    try { o = JSON.parse(data); } catch { return; }
    const u = o?.usage ?? o?.message?.usage;
    if (u === null || typeof u !== 'object') return;
    const x = u as Record<string, unknown>;
    const n = (k: string): number => (typeof x[k] === 'number' && Number.isFinite(x[k]) ? (x[k] as number) : -1);
    const cache = Math.max(0, n('cache_creation_input_tokens')) + Math.max(0, n('cache_read_input_tokens'));
    if (n('prompt_tokens') >= 0) this.input = n('prompt_tokens');
    else if (n('input_tokens') >= 0) this.input = n('input_tokens') + cache;
    if (n('completion_tokens') >= 0) this.output = n('completion_tokens');
    else if (n('output_tokens') >= 0) this.output = n('output_tokens');
    if (n('total_tokens') >= 0) this.total = n('total_tokens');
    this.raw = x;
  }

  get usage(): StreamUsage | undefined {
    if (this.raw === undefined) return undefined;
    const inputTokens = Math.max(0, this.input);
    const outputTokens = Math.max(0, this.output);
    return { inputTokens, outputTokens, totalTokens: this.total >= 0 ? this.total : inputTokens + outputTokens, raw: this.raw };
  }
}

/**
 * One streamed response: iterate it for its events (once). `[DONE]` (OpenAI's end marker) ends the iteration
 * and is not yielded; `usage` holds the usage reported so far, and the final figure once the iteration ends.
 * Breaking out of the loop, `close()` or the call's signal end the request.
 */
export class SseStream implements AsyncIterable<SseEvent> {
  readonly response: Response;
  /** The request id the gateway gave this exchange. */
  readonly requestId: string | undefined;
  /** True once the stream sent its end marker (`[DONE]`), or ended cleanly when no marker is configured. */
  done = false;
  /** The last event id seen (for a `Last-Event-ID` header, should the caller resume). */
  lastEventId = '';
  /** The last `retry:` the server sent, ms. */
  retry: number | undefined;
  private readonly tracker = new UsageTracker();
  private readonly doneData: string | null;
  private readonly stop: () => void;
  private iterated = false;

  constructor(response: Response, opts: { doneData: string | null; stop: () => void }) {
    this.response = response;
    this.requestId = response.headers.get('x-request-id') ?? undefined;
    this.doneData = opts.doneData;
    this.stop = opts.stop;
  }

  /** Usage reported by the stream so far (final once the iteration has ended). */
  get usage(): StreamUsage | undefined { return this.tracker.usage; }

  /** Ends the request (the connection is closed; the gateway sees the client leave). */
  close(): void { this.stop(); }

  async *[Symbol.asyncIterator](): AsyncGenerator<SseEvent> {
    if (this.iterated) throw new Error('an SseStream can be iterated once');
    this.iterated = true;
    const body = this.response.body;
    if (body === null) { this.done = this.doneData === null; return; }
    let finished = false;
    try {
      for await (const e of parseEventStream(chunks(body))) {
        this.lastEventId = e.id;
        if (e.retry !== undefined) this.retry = e.retry;
        if (this.doneData !== null && e.data === this.doneData) { this.done = true; continue; } // read on to the end: the server is closing
        if (this.done) continue;
        this.tracker.observe(e.data);
        yield e;
      }
      finished = true;
      if (this.doneData === null) this.done = true;
    } finally {
      if (!finished) this.stop();
    }
  }
}

/** A ReadableStream as an async iterable through its reader (browsers without ReadableStream iteration too). */
async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) { ended = true; return; }
      yield value;
    }
  } finally {
    if (!ended) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
