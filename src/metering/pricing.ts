import { z } from 'zod';
import { obj } from '../config/zod-helpers.ts';
import { ModelTable } from './model-names.ts';

/**
 * Prices per model and what a request costs, in integer micro-units of the currency (1 USD = 1,000,000): budgets
 * are reserved, settled and compared as integers in the store's scripts, so no float ever drifts.
 *
 * A price per million tokens in currency units is a price per token in micro-units, so prices are kept as
 * pico-units per token (price × 10⁶, exact for up to six decimals) and a request's cost is
 * ceil(Σ tokens × pico / 10⁶) micro-units: rounded up once per request, never per token.
 */

/** A price per million tokens, with at most six decimals (so it is a whole number of pico-units per token). */
const price = z.number({ error: 'expected a price per million tokens, e.g. 2.5' }).min(0).refine((p) => Math.abs(p * 1e6 - Math.round(p * 1e6)) < 1e-6, 'at most six decimals');
export const modelPriceSchema = obj({
  input: price.describe('Price per million input (prompt) tokens.'),
  output: price.describe('Price per million output (completion) tokens.'),
  cachedInput: price.optional().describe('Price per million cached input tokens (default: `input`).'),
}).describe('Prices per million tokens, at most six decimals.');
export const pricingSchema = obj({
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code, e.g. USD').prefault('USD').describe('ISO 4217 code, shown with amounts (402 answers, GET /admin/usage); budgets are in this currency.'),
  models: z.record(z.string(), modelPriceSchema).describe('Model name (or a pattern ending in `*`) → price per million tokens.'),
});
export type PricingConfig = z.output<typeof pricingSchema>;

/** A currency amount (a budget's limit) with at most six decimals, as micro-units. */
export const amountMicros = z.number({ error: 'expected an amount, e.g. 50 or 12.5' }).positive()
  .refine((a) => Math.abs(a * 1e6 - Math.round(a * 1e6)) < 1e-6, 'at most six decimals')
  .transform((a) => Math.round(a * 1e6))
  .refine((m) => Number.isSafeInteger(m), 'too large');

/** Pico-units per token. */
export interface Price { readonly input: bigint; readonly output: bigint; readonly cachedInput: bigint }

const pico = (p: number): bigint => BigInt(Math.round(p * 1e6));

export class Pricing {
  readonly currency: string;
  private readonly table: ModelTable<Price>;

  constructor(cfg: PricingConfig | undefined) {
    this.currency = cfg?.currency ?? 'USD';
    this.table = new ModelTable(Object.entries(cfg?.models ?? {}).map(([m, p]) => [m, { input: pico(p.input), output: pico(p.output), cachedInput: pico(p.cachedInput ?? p.input) }] as const));
  }

  price(model: string): Price | undefined {
    return this.table.get(model);
  }
}

/** What a request cost, in micro-units (rounded up): `cached` input tokens are a part of `input` charged at the cached price. */
export function costMicros(p: Price, input: number, output: number, cached = 0): number {
  const c = Math.min(Math.max(0, cached), input);
  const total = BigInt(input - c) * p.input + BigInt(c) * p.cachedInput + BigInt(output) * p.output;
  return Number((total + 999_999n) / 1_000_000n);
}

/** The most a request may cost before its answer is known: the prompt estimate at the input price and the completion bound at the output price. */
export function reserveMicros(prices: readonly Price[], promptTokens: number, outputTokens: number): number {
  let most = 0;
  for (const p of prices) most = Math.max(most, costMicros(p, promptTokens, outputTokens));
  return most;
}

/** Micro-units as a decimal amount ("12.3456", at least two decimals). */
export function formatMicros(m: number): string {
  const neg = m < 0;
  const a = Math.abs(m);
  const frac = String(a % 1_000_000).padStart(6, '0').replace(/0{1,4}$/, '');
  return `${neg ? '-' : ''}${Math.floor(a / 1_000_000)}.${frac}`;
}
