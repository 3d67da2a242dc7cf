/**
 * The causal check beside every head score: mask the top-k heads and measure the task, against k heads drawn
 * at random (seeded, several draws) from the rest. A score alone is a correlation; Wu et al. 2024 showed the
 * claim is causal by masking the top retrieval heads (Needle-in-a-Haystack fails, the model hallucinates)
 * against as many random heads (accuracy barely moves). Masking uses src/interp/interventions/ablation.ts: 'uniform'
 * (their masking: the head attends evenly over the keys it may see), or 'zero' / 'mean' / 'resample'.
 * A control metric, where the task has one (time-invariant facts for temporal heads, probability on the
 * label tokens for correct-letter heads), should not move when the right heads are masked.
 *
 * Where the random heads come from: with `ranking` (every head's score), from outside the top `avoidTop` heads
 * of that ranking, as Wu et al.'s needle_in_haystack_with_mask.py draws its random heads from outside the top 100
 * retrieval heads (their construct_random_head; in the released code the exclusion test compares a tuple with
 * lists and never fires, the intent is plain from the code around it). Here the top N counts only heads scoring
 * above 0 (heads tied at 0 have no order to be "top" in) and is clipped so that k heads remain to draw (the
 * model's head count − k when the masked heads are the top k): a 16-head toy model has no 100 heads to avoid.
 * Without `ranking`: from every head but the masked ones.
 */
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { Random } from '../../util/random.js';
import { readAsync, readSync, valueOf, type Reads } from '../../util/reads.js';
import { headLabel } from '../head_label.js';
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
  /** Every head's score [n_layers][n_heads]: random heads are drawn from outside its top `avoidTop`. */
  ranking?: number[][];
  /** How many of the ranking's top heads (scoring above 0) the random draws avoid (default 100, as Wu et al.). */
  avoidTop?: number;
  /** What else the metric was run with (e.g. where the mask applies), copied into the result's settings. */
  settings?: Record<string, unknown>;
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
  /** How the check ran: the ablation, the draws and seed, where the random heads came from, and opts.settings. */
  settings: Record<string, unknown>;
}

/**
 * The heads the random draws avoid: the top `n` of `ranking` among heads scoring above 0 (ties broken by layer,
 * then head), n clipped so that `masked.length` heads outside them and the masked ones remain to draw.
 */
export function topRanked(ranking: number[][], n: number, masked: HeadRef[]): HeadRef[] {
  const all: { layer: number; head: number; score: number }[] = [];
  ranking.forEach((row, layer) => row.forEach((score, head) => all.push({ layer, head, score })));
  const same = (a: HeadRef, b: HeadRef) => a.layer === b.layer && a.head === b.head;
  const ranked = all.filter((h) => h.score > 0).sort((a, b) => b.score - a.score || a.layer - b.layer || a.head - b.head);
  const left = (top: HeadRef[]) => all.filter((h) => !masked.some((m) => same(m, h)) && !top.some((t) => same(t, h))).length;
  let top = ranked.slice(0, Math.min(n, ranked.length));
  while (top.length > 0 && left(top) < masked.length) top = top.slice(0, -1);
  return top.map(({ layer, head }) => ({ layer, head }));
}

/**
 * What a causal check measures with some heads masked: the metric, or a computation of it that reads from the
 * backend (util/reads.ts), so the check runs on WebGPU in Node through maskHeadsCheckAsync.
 */
export type MaskMetricFn = (fwdHooks: FwdHook[]) => MaskMetric | Reads<MaskMetric>;

/** Masks `heads` (the top k) and `draws` random sets of as many other heads; `metric(hooks)` measures each. */
export function maskHeadsCheck(model: HookedTransformer, heads: HeadRef[], metric: MaskMetricFn, names: { metric: string; control?: string }, opts: MaskCheckOptions = {}): MaskCheck {
  return readSync(maskHeadsCheckReads(model, heads, metric, names, opts));
}

/** maskHeadsCheck, reading asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function maskHeadsCheckAsync(model: HookedTransformer, heads: HeadRef[], metric: MaskMetricFn, names: { metric: string; control?: string }, opts: MaskCheckOptions = {}): Promise<MaskCheck> {
  return readAsync(maskHeadsCheckReads(model, heads, metric, names, opts));
}

/** maskHeadsCheck as a computation (util/reads.ts). */
export function* maskHeadsCheckReads(
  model: HookedTransformer,
  heads: HeadRef[],
  metric: MaskMetricFn,
  names: { metric: string; control?: string },
  opts: MaskCheckOptions = {},
): Reads<MaskCheck> {
  const { n_layers, n_heads } = model.cfg;
  const k = heads.length;
  const avoidTop = opts.avoidTop ?? 100;
  if (!(Number.isInteger(avoidTop) && avoidTop >= 0)) throw new HeadlensError(`maskHeadsCheck: avoidTop ${avoidTop} must be an integer ≥ 0`);
  if (opts.ranking && !(opts.ranking.length === n_layers && opts.ranking.every((r) => r.length === n_heads))) {
    throw new HeadlensError(`maskHeadsCheck: the ranking must be [${n_layers}][${n_heads}], one score per head`, 'pass the scores of this model');
  }
  const avoided = opts.ranking ? topRanked(opts.ranking, avoidTop, heads) : [];
  const taken = (layer: number, head: number) => [...heads, ...avoided].some((h) => h.layer === layer && h.head === head);
  const others: HeadRef[] = [];
  for (let layer = 0; layer < n_layers; layer++) for (let head = 0; head < n_heads; head++) if (!taken(layer, head)) others.push({ layer, head });
  if (k === 0 || others.length < k) throw new HeadlensError(`maskHeadsCheck: cannot draw ${k} random heads from the ${others.length} others`, 'mask fewer heads');
  const ablation = opts.ablation ?? { kind: 'uniform' };
  const rng = new Random(opts.seed ?? 0);
  const run = function* (hs: HeadRef[]): Reads<{ heads: HeadRef[] } & MaskMetric> {
    return { heads: hs, ...(yield* valueOf(metric(headAblationHooks(model, hs, ablation)))) };
  };
  // the draws first, then the baseline and the top heads: the order the values were computed in before
  const random: ({ heads: HeadRef[] } & MaskMetric)[] = [];
  for (let d = 0; d < (opts.draws ?? 5); d++) random.push(yield* run(rng.shuffle(others).slice(0, k)));
  const mean = (f: (m: MaskMetric) => number | undefined) => {
    const v = random.map(f).filter((x): x is number => x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const control = mean((m) => m.control);
  const settings = {
    ablation: ablation.kind,
    draws: opts.draws ?? 5,
    seed: opts.seed ?? 0,
    randomFrom: opts.ranking ? `outside the top ${avoided.length} heads by score (avoidTop ${avoidTop}: heads above 0, leaving k to draw)` : 'every head but the masked ones',
    avoided: avoided.map((h) => headLabel(h.layer, h.head)),
    ...opts.settings,
  };
  const baseline = yield* valueOf(metric([]));
  const top = yield* run(heads);
  return {
    metric: names.metric,
    ...(names.control ? { control: names.control } : {}),
    ablation: ablation.kind,
    k,
    baseline,
    top,
    random,
    randomMean: { main: mean((m) => m.main)!, ...(control !== undefined ? { control } : {}) },
    settings,
  };
}
