/**
 * The causal check beside every head score: mask the top-k heads and measure the task, against k heads drawn
 * at random (seeded, several draws) from the rest. A score alone is a correlation; Wu et al. 2024 showed the
 * claim is causal by masking the top retrieval heads (Needle-in-a-Haystack fails, the model hallucinates)
 * against as many random heads (accuracy barely moves). Masking uses src/interp/interventions/ablation.ts: 'uniform'
 * (their masking: the head attends evenly over the keys it may see), or 'zero' / 'mean' / 'resample'.
 * A control metric, where the task has one (time-invariant facts for temporal heads, probability on the
 * label tokens for correct-letter heads), should not move when the right heads are masked.
 */
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { Random } from '../../util/random.js';
import { headAblationHooks, type AblationOptions, type HeadRef } from '../interventions/ablation.js';

/** What a metric returns: the task measure and, optionally, a control that should not move. */
export interface MaskMetric {
  main: number;
  control?: number;
}

export interface MaskCheckOptions {
  /** How many random draws of k heads (default 5). */
  draws?: number;
  seed?: number;
  /** How to mask (default { kind: 'uniform' }, as Wu et al.). */
  ablation?: AblationOptions;
}

export interface MaskCheck {
  metric: string;
  control?: string;
  ablation: string;
  k: number;
  baseline: MaskMetric;
  top: { heads: HeadRef[] } & MaskMetric;
  random: ({ heads: HeadRef[] } & MaskMetric)[];
  randomMean: MaskMetric;
}

/** Masks `heads` (the top k) and `draws` random sets of as many other heads; `metric(hooks)` measures each. */
export function maskHeadsCheck(
  model: HookedTransformer,
  heads: HeadRef[],
  metric: (fwdHooks: FwdHook[]) => MaskMetric,
  names: { metric: string; control?: string },
  opts: MaskCheckOptions = {},
): MaskCheck {
  const { n_layers, n_heads } = model.cfg;
  const k = heads.length;
  const others: HeadRef[] = [];
  for (let layer = 0; layer < n_layers; layer++) for (let head = 0; head < n_heads; head++) if (!heads.some((h) => h.layer === layer && h.head === head)) others.push({ layer, head });
  if (k === 0 || others.length < k) throw new HeadlensError(`maskHeadsCheck: cannot draw ${k} random heads from the ${others.length} others`, 'mask fewer heads');
  const ablation = opts.ablation ?? { kind: 'uniform' };
  const rng = new Random(opts.seed ?? 0);
  const run = (hs: HeadRef[]) => ({ heads: hs, ...metric(headAblationHooks(model, hs, ablation)) });
  const random = Array.from({ length: opts.draws ?? 5 }, () => run(rng.shuffle(others).slice(0, k)));
  const mean = (f: (m: MaskMetric) => number | undefined) => {
    const v = random.map(f).filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const control = mean((m) => m.control);
  return {
    metric: names.metric,
    ...(names.control ? { control: names.control } : {}),
    ablation: ablation.kind,
    k,
    baseline: metric([]),
    top: run(heads),
    random,
    randomMean: { main: mean((m) => m.main)!, ...(control !== undefined ? { control } : {}) },
  };
}
