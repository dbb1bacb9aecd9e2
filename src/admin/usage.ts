import { adminProblem, sendJson, type AdminHandler, type AdminHost } from './http.ts';
import type { QuotaSpec } from '../state/store.ts';
import { USAGE_RETENTION_DAYS } from '../state/memory.ts';
import { formatMicros } from '../metering/pricing.ts';

const DAY = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * GET /admin/usage?consumer=ID[&from=YYYY-MM-DD][&to=YYYY-MM-DD][&plan=NAME]
 * Usage records of one consumer per UTC day, route and usage type, their totals, and the consumer's
 * quotas as they stand now. Days default to today; at most the retention period is returned.
 */
export function registerUsageAdmin(routes: Map<string, AdminHandler>, host: AdminHost): void {
  routes.set('GET /admin/usage', usage(host));
}

function usage(host: AdminHost): AdminHandler {
  return async (req, res, url) => {
    const config = host.current.config;
    const store = host.store;
    const consumer = url.searchParams.get('consumer');
    if (!consumer) return adminProblem(req, res, 'bad_request', 'Give ?consumer=<id>.');
    const today = new Date().toISOString().slice(0, 10);
    const from = url.searchParams.get('from') ?? url.searchParams.get('to') ?? today;
    const to = url.searchParams.get('to') ?? (url.searchParams.has('from') ? today : from);
    if (!DATE.test(from) || !DATE.test(to) || from > to) return adminProblem(req, res, 'bad_request', 'from/to are UTC dates (YYYY-MM-DD), from <= to.');
    const days: string[] = [];
    for (let t = Date.parse(to + 'T00:00:00Z'); days.length < USAGE_RETENTION_DAYS && t >= Date.parse(from + 'T00:00:00Z'); t -= DAY) days.push(new Date(t).toISOString().slice(0, 10));
    days.reverse();

    // The file's consumer, else the runtime's (admin API), else defaults.plan.
    const runtimePlan = host.consumers.get(consumer)?.record.plan;
    const plan = url.searchParams.get('plan') ?? config.consumers.find((c) => c.id === consumer)?.plan
      ?? (runtimePlan !== undefined && Object.hasOwn(config.plans, runtimePlan) ? runtimePlan : undefined) ?? config.defaults.plan;
    const pq = plan !== undefined ? config.plans[plan]?.quota : undefined;
    const specs: QuotaSpec[] = [];
    if (pq?.requests) specs.push({ kind: 'requests', ...pq.requests });
    if (pq?.tokens) specs.push({ kind: 'tokens', ...pq.tokens });
    if (pq?.bytes) specs.push({ kind: 'bytes', ...pq.bytes });
    if (pq?.cost) specs.push({ kind: 'cost', ...pq.cost });

    try {
      const [rows, status] = await Promise.all([store.usage(consumer, days), store.quotaStatus(consumer, specs)]);
      // Cost is kept in micro-units (exact integers); amounts are shown beside them in the pricing currency.
      const quotas = status.map((q) => (q.kind === 'cost' ? { ...q, usedAmount: formatMicros(q.used), limitAmount: formatMicros(q.limit) } : q));
      const totals: Record<string, Record<string, number | string>> = {};
      const models = new Map<string, Record<string, number | string>>();
      for (const r of rows) {
        const t = (totals[r.route] ??= {});
        t[r.type] = ((t[r.type] as number | undefined) ?? 0) + r.value;
        if (r.upstream === undefined) continue;
        const k = `${r.route}\t${r.upstream}\t${r.model}`;
        let m = models.get(k);
        if (m === undefined) { m = { route: r.route, upstream: r.upstream, model: r.model ?? '' }; models.set(k, m); }
        m[r.type] = ((m[r.type] as number | undefined) ?? 0) + r.value;
      }
      for (const t of [...Object.values(totals), ...models.values()]) if (typeof t.cost_micros === 'number') t.cost = formatMicros(t.cost_micros);
      sendJson(res, 200, { consumer, plan: plan ?? null, from: days[0], to: days[days.length - 1], store: store.kind, currency: config.pricing?.currency ?? null, quotas, totals, byModel: [...models.values()], records: rows });
    } catch {
      adminProblem(req, res, 'store_unavailable', 'The state store did not answer.', { headers: { 'retry-after': '1' } });
    }
  };
}
