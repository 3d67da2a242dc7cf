/**
 * Function vectors (Todd et al. 2024, "Function Vectors in Large Language Models", ICLR).
 *
 * A few-shot prompt "x₁ y₁ x₂ y₂ … x_q" makes a model apply a function (antonym, capital of, …) to x_q. Todd et
 * al. find a handful of heads whose output at the last token carries *which* function: averaged over many
 * in-context prompts of one task and patched into a prompt whose labels were shuffled (so the demonstrations
 * no longer show the task), one of those heads' mean output alone raises the probability of the right answer.
 * The sum of the top heads' mean outputs, the function vector (FV), added to the residual stream of a
 * zero-shot prompt ("x_q" alone), makes the model apply the function there too: across their tasks and models,
 * zero-shot accuracy rises from near zero to a large share of the few-shot accuracy, with 10 heads (their
 * default) and the FV added in the early-middle layers.
 *
 * What is computed here, as their code (ericwtodd/function_vectors, src/utils/extract_utils.py,
 * src/compute_indirect_effect.py, src/utils/intervention_utils.py) does it:
 *  - meanHeadOutputs: each head's output before W_O (hook_z) at the last token, averaged over clean prompts;
 *  - indirectEffects: for each (layer, head), the corrupted (shuffled-label) prompts with that head's hook_z at
 *    the last token replaced by its mean, the answer's probability minus the unpatched corrupted probability,
 *    averaged over prompts (their `last_token_only` default); through the patching engine (patchSites);
 *  - functionVector: Σ over the top-k heads by mean indirect effect of mean_z · W_O;
 *  - addFunctionVector / functionVectorEffect: the FV added to resid_post of a layer (their "output of layer
 *    edit_layer") at the last token, and top-1 accuracy and answer probability with and without it.
 * Deviations: answers are single tokens (theirs: the answer's first token); every prompt of a task has one
 * length (the patching engine stacks prompts), so inputs of a task must tokenise to one length; the FV omits
 * the output bias b_O, which their code adds once per head for models whose out-projection has one (GPT-2,
 * GPT-NeoX) — a constant that does not depend on the task; they also drop prompts the model gets wrong before
 * averaging (`filter_set`), which is left to the caller here (pass only those prompts).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { ActivationCache } from '../../hooks/activation_cache.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { headLabel } from '../head_label.js';
import { accuracy, metricMean, probability, type Metric } from '../metrics.js';
import { Random } from '../../util/random.js';
import { readAsync, readNested, readSync, type Reads } from '../../util/reads.js';
import { patchSitesReads, type PatchSite, type SweepOptions } from './patching.js';

/** The metric of `logits` averaged over rows, read (the computation owns and frees `logits`). */
function* metricOf(metric: Metric, logits: tf.Tensor3D): Reads<number> {
  let mean: tf.Tensor;
  try {
    mean = metricMean(metric, logits);
  } finally {
    logits.dispose();
  }
  return (yield mean)[0];
}

/** One pair of a task: the input's tokens and the answer token. */
export interface IclPair {
  input: number[];
  output: number;
}

/** How a prompt is laid out: [bos] (input sep output end)* input sep. */
export interface IclTemplate {
  /** Token before everything (default none). */
  bos?: number;
  /** Tokens between an input and its output, and after the query (default none). */
  sep?: number[];
  /** Tokens after each demonstration's output (default none). */
  end?: number[];
}

/** A built prompt and the answer it asks for. */
export interface IclPrompt {
  tokens: number[];
  answer: number;
}

/** One prompt: demonstrations (their outputs shuffled among them if `shuffleLabels`), then the query. */
export function iclPrompt(demos: IclPair[], query: IclPair, template: IclTemplate = {}, shuffleLabels?: Random): IclPrompt {
  const outs = shuffleLabels ? shuffleLabels.shuffle(demos.map((d) => d.output)) : demos.map((d) => d.output);
  const sep = template.sep ?? [];
  const end = template.end ?? [];
  const tokens = [...(template.bos === undefined ? [] : [template.bos]), ...demos.flatMap((d, i) => [...d.input, ...sep, outs[i], ...end]), ...query.input, ...sep];
  return { tokens, answer: query.output };
}

export interface IclPromptsOptions {
  /** Demonstrations per prompt (default 10, as Todd et al.). 0: zero-shot prompts. */
  shots?: number;
  /** Prompts (default 25). */
  n?: number;
  seed?: number;
  /** Shuffle the demonstrations' outputs among them (the corrupted prompts; default false). */
  shuffleLabels?: boolean;
  template?: IclTemplate;
}

/**
 * `n` prompts of a task: each draws `shots` distinct pairs as demonstrations and a different pair as the query
 * (their code draws demonstrations and queries from separate splits; here one pool, never the same pair twice
 * in a prompt).
 */
export function iclPrompts(pairs: IclPair[], opts: IclPromptsOptions = {}): IclPrompt[] {
  const shots = opts.shots ?? 10;
  const n = opts.n ?? 25;
  if (!Number.isInteger(shots) || shots < 0) throw new HeadlensError(`shots ${shots} must be a non-negative integer`);
  if (pairs.length < shots + 1) throw new HeadlensError(`a task of ${pairs.length} pairs cannot give ${shots} demonstrations and a query`, 'use fewer shots or more pairs');
  const len = pairs[0].input.length;
  if (pairs.some((p) => p.input.length !== len || len === 0)) throw new HeadlensError('the inputs of a task tokenise to different lengths (or to none)', 'keep inputs of one length in tokens: prompts are stacked for patching');
  const rng = new Random(opts.seed ?? 0);
  return Array.from({ length: n }, () => {
    const [query, ...demos] = rng.shuffle(pairs).slice(0, shots + 1);
    return iclPrompt(demos, query, opts.template, opts.shuffleLabels ? rng : undefined);
  });
}

function rowsOf(prompts: IclPrompt[], what: string): number[][] {
  if (prompts.length === 0) throw new HeadlensError(`no ${what} prompts given`);
  const n = prompts[0].tokens.length;
  if (prompts.some((p) => p.tokens.length !== n)) throw new HeadlensError(`${what} prompts of different lengths`, 'prompts are stacked: use inputs of one length in tokens');
  return prompts.map((p) => p.tokens);
}

/** Each head's hook_z at the last token, averaged over the prompts: [layer][head][d_head]. */
export function meanHeadOutputs(model: HookedTransformer, prompts: IclPrompt[]): number[][][] {
  return readSync(meanHeadOutputsReads(model, prompts));
}

/** meanHeadOutputs, read asynchronously (WebGPU in Node). */
export function meanHeadOutputsAsync(model: HookedTransformer, prompts: IclPrompt[]): Promise<number[][][]> {
  return readAsync(meanHeadOutputsReads(model, prompts));
}

function* meanHeadOutputsReads(model: HookedTransformer, prompts: IclPrompt[]): Reads<number[][][]> {
  const rows = rowsOf(prompts, 'clean');
  const names = Array.from({ length: model.cfg.n_layers }, (_, l) => actName('z', l));
  const last = rows[0].length - 1;
  const { logits, cache } = model.runWithCache(rows, { names });
  logits.dispose();
  let means: tf.Tensor;
  try {
    means = tf.tidy(() => tf.stack(names.map((nm) => cache.get(nm).slice([0, last, 0, 0], [-1, 1, -1, -1]).mean([0, 1])))); // [layer, head, d_head]
  } finally {
    cache.dispose();
  }
  return yield* readNested<number[][][]>(means);
}

export interface IndirectEffects {
  /** Mean indirect effect [layer][head]: p(answer) with the head's mean output patched in, minus without. */
  effects: number[][];
  /** p(answer) on the corrupted prompts, unpatched (averaged). */
  corruptedProbability: number;
}

/**
 * The causal indirect effect of each head (Todd et al. §2.2): the mean of p_patched(answer) − p(answer) over
 * the corrupted prompts, where the head's hook_z at the last token is replaced by `mean` ([layer][head][d_head]).
 */
export function indirectEffects(model: HookedTransformer, corrupted: IclPrompt[], mean: number[][][], opts: SweepOptions = {}): IndirectEffects {
  return readSync(indirectEffectsReads(model, corrupted, mean, opts));
}

/** indirectEffects, read asynchronously (WebGPU in Node). */
export function indirectEffectsAsync(model: HookedTransformer, corrupted: IclPrompt[], mean: number[][][], opts: SweepOptions = {}): Promise<IndirectEffects> {
  return readAsync(indirectEffectsReads(model, corrupted, mean, opts));
}

function* indirectEffectsReads(model: HookedTransformer, corrupted: IclPrompt[], mean: number[][][], opts: SweepOptions): Reads<IndirectEffects> {
  const { n_layers, n_heads, d_head } = model.cfg;
  if (mean.length !== n_layers || mean.some((l) => l.length !== n_heads || l.some((h) => h.length !== d_head))) {
    throw new HeadlensError(`mean head outputs must be [${n_layers}][${n_heads}][${d_head}]`, 'compute them with meanHeadOutputs on the same model');
  }
  const rows = rowsOf(corrupted, 'corrupted');
  const [B, pos] = [rows.length, rows[0].length];
  const metric = probability(corrupted.map((p) => p.answer));
  const base = yield* metricOf(metric, model.forward(rows));
  // a source "run" whose hook_z holds the mean at the last token of every prompt (the other positions are never read)
  const acts = new Map<string, tf.Tensor>();
  for (let l = 0; l < n_layers; l++) {
    acts.set(
      actName('z', l),
      tf.tidy(() => {
        const m = tf.tensor3d([mean[l]]).expandDims(0) as tf.Tensor4D; // [1, 1, head, d_head]
        return tf.zeros([B, pos - 1, n_heads, d_head]).concat(m.tile([B, 1, 1, 1]), 1); // [batch, pos, head, d_head]
      }),
    );
  }
  const source = new ActivationCache(acts, model.cfg);
  try {
    const sites: PatchSite[] = [];
    for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) sites.push({ name: actName('z', l), head: h, pos: pos - 1 });
    const vals = yield* patchSitesReads(model, rows, source, sites, metric, opts);
    const effects = Array.from({ length: n_layers }, (_, l) => Array.from({ length: n_heads }, (_, h) => vals[l * n_heads + h] - base));
    return { effects, corruptedProbability: base };
  } finally {
    source.dispose();
  }
}

export interface TopHeadEffect {
  layer: number;
  head: number;
  label: string;
  effect: number;
}

/** Heads by mean indirect effect, highest first (ties: lower layer, then head, first). */
export function rankHeads(effects: number[][]): TopHeadEffect[] {
  return effects
    .flatMap((row, layer) => row.map((effect, head) => ({ layer, head, label: headLabel(layer, head), effect })))
    .sort((a, b) => b.effect - a.effect || a.layer - b.layer || a.head - b.head);
}

/** Σ over `heads` of mean_z[layer][head] · W_O[layer][head]: the function vector [d_model]. */
export function functionVector(model: HookedTransformer, mean: number[][][], heads: { layer: number; head: number }[]): number[] {
  return readSync(functionVectorReads(model, mean, heads));
}

/** functionVector, read asynchronously (WebGPU in Node). */
export function functionVectorAsync(model: HookedTransformer, mean: number[][][], heads: { layer: number; head: number }[]): Promise<number[]> {
  return readAsync(functionVectorReads(model, mean, heads));
}

function* functionVectorReads(model: HookedTransformer, mean: number[][][], heads: { layer: number; head: number }[]): Reads<number[]> {
  if (heads.length === 0) throw new HeadlensError('a function vector needs at least one head');
  const fvT = tf.tidy(() => {
    let fv = tf.zeros([model.cfg.d_model]);
    for (const { layer, head } of heads) {
      if (!(layer >= 0 && layer < model.cfg.n_layers && head >= 0 && head < model.cfg.n_heads)) throw new HeadlensError(`head L${layer}H${head} is not in the model`);
      const W_O = (model.param(`blocks.${layer}.attn.W_O`) as tf.Tensor3D).slice([head, 0, 0], [1, -1, -1]).reshape([model.cfg.d_head, model.cfg.d_model]); // [d_head, d_model]
      fv = fv.add(tf.tensor2d([mean[layer][head]]).matMul(W_O).reshape([model.cfg.d_model]));
    }
    return fv; // [d_model]
  });
  return Array.from(yield fvT);
}

/** A hook adding `fv` to blocks.{layer}.hook_resid_post at the last position (their add_function_vector). */
export function addFunctionVector(model: HookedTransformer, fv: number[], layer: number): FwdHook {
  if (fv.length !== model.cfg.d_model) throw new HeadlensError(`the function vector has ${fv.length} values; the model's d_model is ${model.cfg.d_model}`);
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.cfg.n_layers) throw new HeadlensError(`layer ${layer} is not a layer`, `use 0..${model.cfg.n_layers - 1}`);
  return [
    actName('resid_post', layer),
    (act) => {
      const [b, p, d] = act.shape;
      const add = tf.zeros([b, p - 1, d]).concat(tf.tensor1d(fv).reshape([1, 1, d]).tile([b, 1, 1]), 1); // [batch, pos, d_model], the FV at the last position
      return act.add(add);
    },
  ];
}

export interface FvEffect {
  /** Top-1 accuracy and mean answer probability without and with the FV. */
  accuracy: { without: number; with: number };
  probability: { without: number; with: number };
}

/** The zero-shot (or any) prompts run with and without the FV added at `layer`. */
export function functionVectorEffect(model: HookedTransformer, prompts: IclPrompt[], fv: number[], layer: number): FvEffect {
  return readSync(functionVectorEffectReads(model, prompts, fv, layer));
}

/** functionVectorEffect, read asynchronously (WebGPU in Node). */
export function functionVectorEffectAsync(model: HookedTransformer, prompts: IclPrompt[], fv: number[], layer: number): Promise<FvEffect> {
  return readAsync(functionVectorEffectReads(model, prompts, fv, layer));
}

function* functionVectorEffectReads(model: HookedTransformer, prompts: IclPrompt[], fv: number[], layer: number): Reads<FvEffect> {
  const rows = rowsOf(prompts, 'zero-shot');
  const answers = prompts.map((p) => p.answer);
  const [acc, prob] = [accuracy(answers), probability(answers)];
  const measure = function* (hooks: FwdHook[]): Reads<number[]> {
    const logits = model.runWithHooks(rows, { fwdHooks: hooks });
    let both: tf.Tensor;
    try {
      both = tf.tidy(() => tf.stack([metricMean(acc, logits), metricMean(prob, logits)])); // [2]
    } finally {
      logits.dispose();
    }
    return Array.from(yield both);
  };
  const [a0, p0] = yield* measure([]);
  const [a1, p1] = yield* measure([addFunctionVector(model, fv, layer)]);
  return { accuracy: { without: a0, with: a1 }, probability: { without: p0, with: p1 } };
}

export interface FunctionVectorOptions extends SweepOptions {
  /** Demonstrations per prompt (default 10). */
  shots?: number;
  /** Clean prompts averaged for the mean head outputs (default 100, as their N_TRIALS). */
  meanPrompts?: number;
  /** Corrupted prompts for the indirect effect (default 25, as their n_trials). */
  effectPrompts?: number;
  /** Zero-shot prompts evaluated (default 50). */
  evalPrompts?: number;
  /** Heads summed into the FV (default 10, as their n_top_heads; at most the model's heads). */
  topHeads?: number;
  /** The layer whose resid_post gets the FV for `zeroShot` (default ⌊n_layers / 3⌋; `byLayer` has every layer, as their script's default sweep). */
  layer?: number;
  template?: IclTemplate;
  seed?: number;
}

export interface FunctionVectorResult {
  /** The clean prompts' accuracy (ICL works?), the shuffled-label prompts' accuracy. */
  iclAccuracy: number;
  shuffledAccuracy: number;
  effects: number[][];
  corruptedProbability: number;
  top: TopHeadEffect[];
  fv: number[];
  layer: number;
  zeroShot: FvEffect;
  /** The same with the FV at each layer's resid_post in turn (their evaluate_function_vector.py sweeps all layers by default). */
  byLayer: FvEffect[];
  /** The prompts' sizes as used. */
  counts: { shots: number; meanPrompts: number; effectPrompts: number; evalPrompts: number };
}

/** Todd et al.'s pipeline on one task: mean outputs, indirect effects, the FV of the top heads, zero-shot with and without it. */
export function functionVectors(model: HookedTransformer, pairs: IclPair[], opts: FunctionVectorOptions = {}): FunctionVectorResult {
  return readSync(functionVectorsReads(model, pairs, opts));
}

/** functionVectors, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function functionVectorsAsync(model: HookedTransformer, pairs: IclPair[], opts: FunctionVectorOptions = {}): Promise<FunctionVectorResult> {
  return readAsync(functionVectorsReads(model, pairs, opts));
}

function* functionVectorsReads(model: HookedTransformer, pairs: IclPair[], opts: FunctionVectorOptions): Reads<FunctionVectorResult> {
  const seed = opts.seed ?? 0;
  const shots = opts.shots ?? 10;
  const counts = { shots, meanPrompts: opts.meanPrompts ?? 100, effectPrompts: opts.effectPrompts ?? 25, evalPrompts: opts.evalPrompts ?? 50 };
  const layer = opts.layer ?? Math.floor(model.cfg.n_layers / 3);
  const k = Math.min(opts.topHeads ?? 10, model.cfg.n_layers * model.cfg.n_heads);
  const clean = iclPrompts(pairs, { shots, n: counts.meanPrompts, seed, template: opts.template });
  const corrupted = iclPrompts(pairs, { shots, n: counts.effectPrompts, seed: seed + 1, shuffleLabels: true, template: opts.template });
  const zeroShot = iclPrompts(pairs, { shots: 0, n: counts.evalPrompts, seed: seed + 2, template: opts.template });
  const acc = (ps: IclPrompt[]) => metricOf(accuracy(ps.map((p) => p.answer)), model.forward(ps.map((p) => p.tokens)));
  const mean = yield* meanHeadOutputsReads(model, clean);
  const { effects, corruptedProbability } = yield* indirectEffectsReads(model, corrupted, mean, opts);
  const top = rankHeads(effects).slice(0, k);
  const fv = yield* functionVectorReads(model, mean, top);
  const iclAccuracy = yield* acc(clean);
  const shuffledAccuracy = yield* acc(corrupted);
  const zeroShotEffect = yield* functionVectorEffectReads(model, zeroShot, fv, layer);
  const byLayer: FvEffect[] = [];
  for (let l = 0; l < model.cfg.n_layers; l++) byLayer.push(yield* functionVectorEffectReads(model, zeroShot, fv, l));
  return { iclAccuracy, shuffledAccuracy, effects, corruptedProbability, top, fv, layer, zeroShot: zeroShotEffect, byLayer, counts };
}
