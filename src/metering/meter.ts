import type { RequestContext, ResponseTap } from '../pipeline/context.ts';
import { UsageParser, type Settlement, type TokenUsage } from './usage.ts';
import type { MeteringMetrics } from './metrics.ts';
import type { ModelLabel } from './model-labels.ts';

export type { Settlement };

export type SettleListener = (s: Settlement) => void;

/**
 * One per metered request: observes the upstream response through `ctx.tap` (never holding it) and
 * settles once, when the exchange is over, whatever the outcome (ctx.finally). Rate limits and quotas
 * on the same request share it, so the response is parsed once.
 */
export class UsageMeter implements ResponseTap {
  private readonly parser = new UsageParser();
  private readonly listeners: SettleListener[] = [];
  private readonly next: ResponseTap | null;
  private status = 0;
  private settled = false;

  constructor(next: ResponseTap | null, private readonly metrics: MeteringMetrics | null, private readonly label: ModelLabel) {
    this.next = next;
  }

  /** The request's meter, created (and hooked into the exchange) on first use. */
  static of(ctx: RequestContext, metrics: MeteringMetrics | null, label: ModelLabel): UsageMeter {
    if (ctx.tap instanceof UsageMeter) return ctx.tap;
    const m = new UsageMeter(ctx.tap, metrics, label);
    ctx.tap = m;
    ctx.finally((c) => m.settle(c));
    return m;
  }

  onSettled(fn: SettleListener): void {
    this.listeners.push(fn);
  }

  onHeaders(status: number, contentType: string | undefined, headers: readonly string[]): void {
    this.status = status;
    this.parser.onHeaders(contentType);
    this.next?.onHeaders?.(status, contentType, headers);
  }

  onData(chunk: Buffer): void {
    this.parser.onData(chunk);
    this.next?.onData?.(chunk);
  }

  onEnd(ok: boolean, status: number): void {
    this.next?.onEnd(ok, status);
  }

  private settle(ctx: RequestContext): void {
    if (this.settled) return;
    this.settled = true;
    // A cache hit never reached an upstream: a request, 0 tokens, 0 cost.
    const hit = ctx.cacheHit;
    const status = hit ? 200 : this.status;
    const refund = status === 0 || status >= 500;
    let tokens: TokenUsage;
    if (refund || hit) tokens = { input: 0, output: 0, total: 0, found: hit };
    else {
      tokens = this.parser.result();
      // Only a successful answer is assumed to carry generated text worth estimating.
      if (!tokens.found && (status < 200 || status >= 300)) tokens = { input: 0, output: 0, total: 0, found: false };
    }
    const ai = ctx.ai;
    // A hit (or a request no attempt was made for) has no answering upstream: the model asked for stands.
    const answered = ai !== null && ai.upstream !== '';
    const model = ai !== null ? (answered ? ai.model : ai.requested) : this.parser.model;
    const s: Settlement = {
      refund, status, tokens, bytes: refund ? 0 : ctx.bytesIn + this.parser.bytes, cached: hit,
      upstream: ai !== null ? (answered ? ai.upstream : '-') : undefined, model, label: answered ? ai.label : this.label(model),
    };
    if (!refund) ctx.usage = { model, input: tokens.input, output: tokens.output };
    if (this.metrics !== null && ctx.route !== null) this.metrics.record(ctx.route.name, s, ctx.identity?.consumer ?? ctx.identity?.id);
    for (const fn of this.listeners) fn(s);
  }
}
