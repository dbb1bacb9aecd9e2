import type { AdminHost } from './http.ts';
import { formatMicros } from '../metering/pricing.ts';

export interface ConsumerUsage {
  consumer: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Every token, estimated ones included (`tokens` in the usage records). */
  tokens: number;
  costMicros: number;
  /** costMicros in the pricing currency, as GET /admin/usage shows it. */
  cost: string | null;
}

/** The dashboard's table of today's usage, refreshed at most this often (one store read per known consumer). */
export const USAGE_REFRESH_MS = 10_000;
/** Consumers read per refresh; beyond this the table says how many were left out. */
export const USAGE_MAX_CONSUMERS = 200;

/**
 * Today's (UTC) tokens and cost per consumer, from the usage records GET /admin/usage reads: the file's
 * consumers and the runtime's, at most USAGE_MAX_CONSUMERS of them, those with any usage, most expensive first.
 * Subjects that are not consumers (a JWT `sub` without a consumer) are in the records but not listed here.
 */
export async function consumerUsageToday(host: AdminHost): Promise<{ day: string; consumers: ConsumerUsage[]; leftOut: number; error: string | null }> {
  const day = new Date().toISOString().slice(0, 10);
  const ids = [...new Set([...host.current.config.consumers.map((c) => c.id), ...host.consumers.list().map((v) => v.record.id)])];
  const read = ids.slice(0, USAGE_MAX_CONSUMERS);
  const priced = host.current.config.pricing !== undefined;
  try {
    const rows = await Promise.all(read.map((id) => host.store.usage(id, [day])));
    const consumers: ConsumerUsage[] = [];
    rows.forEach((records, i) => {
      if (records.length === 0) return;
      const u: ConsumerUsage = { consumer: read[i], requests: 0, inputTokens: 0, outputTokens: 0, tokens: 0, costMicros: 0, cost: null };
      for (const r of records) {
        if (r.type === 'requests') u.requests += r.value;
        else if (r.type === 'input_tokens') u.inputTokens += r.value;
        else if (r.type === 'output_tokens') u.outputTokens += r.value;
        else if (r.type === 'tokens') u.tokens += r.value;
        else if (r.type === 'cost_micros') u.costMicros += r.value;
      }
      if (priced || u.costMicros > 0) u.cost = formatMicros(u.costMicros);
      consumers.push(u);
    });
    consumers.sort((a, b) => b.costMicros - a.costMicros || b.tokens - a.tokens || a.consumer.localeCompare(b.consumer));
    return { day, consumers, leftOut: ids.length - read.length, error: null };
  } catch {
    return { day, consumers: [], leftOut: ids.length - read.length, error: 'The state store did not answer.' };
  }
}
