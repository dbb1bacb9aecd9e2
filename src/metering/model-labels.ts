import { isPattern } from './model-names.ts';

/**
 * The `model` label of token metrics: a model the config names (or `observability.metrics.models` lists), else
 * "other"; "none" when no model is known. Clients choose model names, so the label is bounded by the config, never
 * by what requests carry. One per generation (compile-time `shared` slot).
 */
export type ModelLabel = (model: string | undefined) => string;

export interface LabelNeeds {
  observability: { metrics: { models?: readonly string[] } };
  pricing?: { models: Readonly<Record<string, unknown>> };
  routes: ReadonlyArray<{ models?: Readonly<Record<string, ReadonlyArray<{ model?: string }>>> }>;
}

export function modelLabeler(c: LabelNeeds): ModelLabel {
  let names: Set<string>;
  if (c.observability.metrics.models !== undefined) names = new Set(c.observability.metrics.models);
  else {
    names = new Set();
    for (const m of Object.keys(c.pricing?.models ?? {})) if (!isPattern(m)) names.add(m);
    for (const r of c.routes) for (const [m, cands] of Object.entries(r.models ?? {})) {
      if (!isPattern(m)) names.add(m);
      for (const x of cands) if (x.model !== undefined) names.add(x.model);
    }
  }
  return (model) => (model === undefined || model === '' ? 'none' : names.has(model) ? model : 'other');
}

/** The generation's labeler, built once for all its routes. */
export function modelLabels(c: LabelNeeds, shared: Map<string, unknown>): ModelLabel {
  let l = shared.get('model-labels') as ModelLabel | undefined;
  if (l === undefined) { l = modelLabeler(c); shared.set('model-labels', l); }
  return l;
}
