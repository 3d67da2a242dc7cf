/**
 * Activation patching: run the model on one input, copy one activation in from a run on another, and
 * measure what moves.
 *
 * Causal tracing (Meng et al. 2022, ROME) and the IOI study (Wang et al. 2022) made this the standard
 * way to localise a behaviour: with a clean prompt ("When Mary and John went to the store, John gave a
 * drink to" → Mary) and a corrupted one that differs in the decisive token, patching a component's clean
 * activation into the corrupted run (denoising) shows what is sufficient to restore the answer, and
 * patching the corrupted activation into the clean run (noising) shows what is necessary. Zhang & Nanda
 * 2023 show the two can disagree and that the metric matters (logit difference over probability; report
 * it normalised, 0 = corrupted, 1 = clean). Heimersheim & Janiak 2024 list the usual sweeps: the
 * residual stream by layer and position, attention and MLP outputs by position, and each head's output,
 * queries, keys, values and pattern, by position or over all positions; those are the named variants.
 *
 * Everything goes through `patchSites`: a list of sites (hook name, optional head, optional position),
 * each evaluated as one patched variant, on the engine of stacked_runs.ts (variants stacked along the batch,
 * each pass starting at its sites' layer, the metric's position alone unembedded). A 0/1 mask over
 * [variant, 1, …] picks which slots of which variant take the source's values. The result is what one
 * forward per variant gives, to float rounding, in far fewer and shorter passes.
 *
 * Positions mean query positions: for hook_pattern [batch, head, query_pos, key_pos] a site patches one
 * query row. Under GQA, 'head-k' and 'head-v' index key/value heads (hook_k/hook_v have that many).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { ActivationCache } from '../../hooks/activation_cache.js';
import { actName, hookHeadAxis, positionAxis } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import { headAxisLabels, Labelled, layerAxis, posAxis, type Axis } from '../labelled.js';
import type { AttentionMaskInput } from '../../model/padding.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { metricMean, metricValue, type Metric } from '../metrics.js';
import { BaseRun, pipelinedPasses, stackedValues, startLayer, variantsPerPass, type PassOptions } from './stacked_runs.js';

/**
 * One patched variant: at hook `name`, the slot of `head` (all heads if absent) at query position `pos` (all if
 * absent); for hook_pattern / hook_attn_scores, `keyPos` narrows it to one key (source) position.
 */
export interface PatchSite {
  name: string;
  head?: number;
  pos?: number;
  keyPos?: number;
}

export interface SweepOptions extends PassOptions {
  /**
   * [batch, pos] of 1 (real token) and 0 (padding) for a padded batch of prompts of unequal length, one mask for
   * the clean and the corrupted prompts alike (src/model/padding.ts). A metric at one position must read a real
   * token in every prompt: pad on the left.
   */
  attentionMask?: AttentionMaskInput;
}

/**
 * The metric (averaged over prompts) of `base` run once per site with that site's activation taken from
 * `source`, a cache of a run on prompts of the same shape. Returns one number per site, in the order given.
 * Sites are grouped by the layer they start at (stacked_runs.ts): each group's passes start there.
 */
export function patchSites(
  model: HookedTransformer,
  base: TokenInput,
  source: ActivationCache,
  sites: PatchSite[],
  metric: Metric,
  opts: SweepOptions = {},
): Float64Array {
  return readSync(patchSitesReads(model, base, source, sites, metric, opts));
}

/** patchSites, reading each pass's values asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function patchSitesAsync(
  model: HookedTransformer,
  base: TokenInput,
  source: ActivationCache,
  sites: PatchSite[],
  metric: Metric,
  opts: SweepOptions = {},
): Promise<Float64Array> {
  return readAsync(patchSitesReads(model, base, source, sites, metric, opts));
}

/** patchSites as a computation (util/reads.ts). */
export function* patchSitesReads(
  model: HookedTransformer,
  base: TokenInput,
  source: ActivationCache,
  sites: PatchSite[],
  metric: Metric,
  opts: SweepOptions,
): Reads<Float64Array> {
  const run = new BaseRun(model, base, opts.attentionMask);
  try {
    for (const s of sites) checkSite(source, s, run.batch, run.pos);
    const per = variantsPerPass(model, run.batch, run.pos, opts);
    const out = new Float64Array(sites.length);
    // embeddings-level sites (start null) first, then blocks in increasing order: BaseRun walks forward once
    const order = sites.map((site, i) => ({ site, i, start: startLayer([site.name]) }));
    order.sort((a, b) => (a.start ?? -1) - (b.start ?? -1) || a.i - b.i);
    // the passes: runs of at most `per` sites that start at the same layer
    const chunks: (typeof order)[] = [];
    for (let g = 0; g < order.length; ) {
      let end = g;
      while (end < order.length && end - g < per && order[end].start === order[g].start) end++;
      chunks.push(order.slice(g, end));
      g = end;
    }
    let done = 0;
    yield* pipelinedPasses(
      chunks,
      (chunk) => stackedValues(model, run, chunk.length, chunk[0].start, stackedHooks(source, chunk.map((c) => c.site), run.batch), metric),
      (chunk, vals) => {
        chunk.forEach((c, k) => (out[c.i] = vals[k]));
        done += chunk.length;
        opts.onProgress?.(done, sites.length);
      },
    );
    return out;
  } finally {
    run.dispose();
  }
}

/** Hooks for a stack of V variants × B prompts: one hook per hook name, masking in the source's slots. */
function stackedHooks(source: ActivationCache, chunk: PatchSite[], B: number): FwdHook[] {
  const byName = new Map<string, { v: number; site: PatchSite }[]>();
  chunk.forEach((site, v) => byName.set(site.name, [...(byName.get(site.name) ?? []), { v, site }]));
  const V = chunk.length;
  return [...byName].map(([name, list]): FwdHook => [
    name,
    (act) => {
      const rest = act.shape.slice(1);
      const last = rest[rest.length - 1];
      const per = rest.slice(0, -1).reduce((x, y) => x * y, 1);
      const src = source.get(name); // [B, …rest]
      const m = variantMask(name, rest, V, list); // [V, 1, …rest], the last axis 1 unless sites name a key position
      const mask = m.reshape([V, 1, per, m.shape[m.rank - 1]]);
      // rank 4 throughout: tfjs' WebGPU backend has no 5-d where, and tiles a 5-d tensor on the CPU
      const a = act.reshape([V, B, per, last]);
      const patched = tf.where(mask, src.reshape([1, B, per, last]), a); // the source's values exactly where masked
      return patched.reshape(act.shape);
    },
  ]);
}

/** Axes of the head and the (query) position in an activation without its batch axis (from the hook table). */
function slotAxes(name: string): { head?: number; pos: number } {
  const head = hookHeadAxis(name);
  return { head: head === undefined ? undefined : head - 1, pos: (positionAxis(name) ?? 1) - 1 };
}

function variantMask(name: string, rest: number[], V: number, list: { v: number; site: PatchSite }[]): tf.Tensor {
  const byKey = list.some(({ site }) => site.keyPos !== undefined); // the key axis is the last of hook_pattern / hook_attn_scores
  const shape = byKey ? [...rest] : [...rest.slice(0, -1), 1];
  const per = shape.reduce((a, b) => a * b, 1);
  const m = new Float32Array(V * per);
  const ax = slotAxes(name);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  for (const { v, site } of list) {
    for (let off = 0; off < per; off++) {
      const idx = strides.map((s, i) => Math.floor(off / s) % shape[i]);
      if (site.pos !== undefined && idx[ax.pos] !== site.pos) continue;
      if (site.head !== undefined && ax.head !== undefined && idx[ax.head] !== site.head) continue;
      if (site.keyPos !== undefined && idx[shape.length - 1] !== site.keyPos) continue;
      m[v * per + off] = 1;
    }
  }
  return tf.tensor(m, [V, 1, ...shape]).cast('bool');
}

function checkSite(source: ActivationCache, s: PatchSite, B: number, pos: number): void {
  if (!source.has(s.name)) throw new HeadlensError(`the source cache holds no '${s.name}'`, `run the source prompts with runWithCache(…, { names: ['${s.name}', …] })`);
  const shape = source.get(s.name).shape;
  if (shape[0] !== B || (slotAxes(s.name).pos === 0 ? shape[1] : shape[2]) !== pos) {
    throw new HeadlensError(`source '${s.name}' is [${shape}] but the patched run has ${B} prompts of ${pos} tokens`, 'clean and corrupted prompts must have the same batch size and length in tokens');
  }
  const ax = slotAxes(s.name);
  if (s.head !== undefined) {
    if (ax.head === undefined) throw new HeadlensError(`${s.name} has no head axis`, 'leave head out for residual, attn_out and mlp_out sites');
    const n = shape[ax.head + 1];
    if (!Number.isInteger(s.head) || s.head < 0 || s.head >= n) throw new HeadlensError(`head ${s.head} is out of range for ${s.name} (${n} heads)`);
  }
  if (s.pos !== undefined && (!Number.isInteger(s.pos) || s.pos < 0 || s.pos >= pos)) throw new HeadlensError(`position ${s.pos} is outside the sequence (${pos} tokens)`);
  if (s.keyPos !== undefined) {
    if (!/attn\.hook_(pattern|attn_scores)$/.test(s.name)) throw new HeadlensError(`${s.name} has no key position axis`, 'keyPos is for attn.hook_pattern and attn.hook_attn_scores');
    if (!Number.isInteger(s.keyPos) || s.keyPos < 0 || s.keyPos >= shape[shape.length - 1]) throw new HeadlensError(`key position ${s.keyPos} is outside the keys (${shape[shape.length - 1]})`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Named sweeps

export type PatchComponent =
  | 'resid-pre' | 'resid-mid' | 'resid-post' | 'attn-out' | 'mlp-out'
  | 'head-out' | 'head-q' | 'head-k' | 'head-v' | 'head-pattern';

export const PATCH_COMPONENTS: PatchComponent[] = ['resid-pre', 'resid-mid', 'resid-post', 'attn-out', 'mlp-out', 'head-out', 'head-q', 'head-k', 'head-v', 'head-pattern'];

const HOOK: Record<PatchComponent, Parameters<typeof actName>[0]> = {
  'resid-pre': 'resid_pre', 'resid-mid': 'resid_mid', 'resid-post': 'resid_post', 'attn-out': 'attn_out', 'mlp-out': 'mlp_out',
  'head-out': 'z', 'head-q': 'q', 'head-k': 'k', 'head-v': 'v', 'head-pattern': 'pattern',
};

export interface ActivationPatchingOptions extends SweepOptions {
  clean: TokenInput;
  corrupted: TokenInput;
  metric: Metric;
  /** 'denoising' (default): clean activations into the corrupted run. 'noising': corrupted into clean. */
  direction?: 'denoising' | 'noising';
  /** One variant per position (default true for residual/attn_out/mlp_out, false for heads). */
  byPos?: boolean;
}

/**
 * One sweep over every layer (× head) (× position) of a component. Axes: [layer, pos] or [layer] for
 * residual, attn_out and mlp_out; [layer, pos, head] or [layer, head] for heads ('head-k'/'head-v' over
 * key/value heads, axis 'kv_head'). meta holds the metric on the clean and corrupted runs.
 */
export function activationPatching(model: HookedTransformer, component: PatchComponent, opts: ActivationPatchingOptions): Labelled {
  return patchComponents(model, [component], opts)[component]!;
}

/** activationPatching, reading each pass's values asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export async function activationPatchingAsync(model: HookedTransformer, component: PatchComponent, opts: ActivationPatchingOptions): Promise<Labelled> {
  return (await readAsync(patchComponentsReads(model, [component], opts)))[component]!;
}

/** activationPatching as a computation (util/reads.ts), for callers that are computations themselves. */
export function* activationPatchingReads(model: HookedTransformer, component: PatchComponent, opts: ActivationPatchingOptions): Reads<Labelled> {
  return (yield* patchComponentsReads(model, [component], opts))[component]!;
}

/** Several components from one pair of source runs (the "every" bundles use this). */
export function patchComponents(model: HookedTransformer, components: PatchComponent[], opts: ActivationPatchingOptions): Partial<Record<PatchComponent, Labelled>> {
  return readSync(patchComponentsReads(model, components, opts));
}

function* patchComponentsReads(model: HookedTransformer, components: PatchComponent[], opts: ActivationPatchingOptions): Reads<Partial<Record<PatchComponent, Labelled>>> {
  const { cfg } = model;
  for (const c of components) {
    if (!PATCH_COMPONENTS.includes(c)) throw new HeadlensError(`unknown component '${c}'`, `use one of ${PATCH_COMPONENTS.join(', ')}`);
    if (c === 'resid-mid' && (cfg.parallel_attn_mlp || cfg.attn_only)) throw new HeadlensError(`model ${cfg.model_name} has no resid_mid (parallel attention/MLP or attention-only)`, 'use resid-pre or resid-post');
    if (c === 'mlp-out' && cfg.attn_only) throw new HeadlensError(`model ${cfg.model_name} is attention-only and has no MLPs`);
  }
  const denoise = (opts.direction ?? 'denoising') === 'denoising';
  const [base, from] = denoise ? [opts.corrupted, opts.clean] : [opts.clean, opts.corrupted];
  const names = components.flatMap((c) => Array.from({ length: cfg.n_layers }, (_, l) => actName(HOOK[c], l)));
  const { logits: srcLogits, cache } = model.runWithCache(from, { names, attentionMask: opts.attentionMask });
  let baseLogits: tf.Tensor3D | undefined;
  try {
    baseLogits = model.forward(base, { attentionMask: opts.attentionMask });
    const srcValue = (yield metricMean(opts.metric, srcLogits))[0];
    const baseValue = (yield metricMean(opts.metric, baseLogits))[0];
    srcLogits.dispose();
    baseLogits.dispose();
    const baseline = { [denoise ? 'clean' : 'corrupted']: srcValue, [denoise ? 'corrupted' : 'clean']: baseValue };
    const pos = cache.get(names[0]).shape[component0Pos(names[0])];
    const out: Partial<Record<PatchComponent, Labelled>> = {};
    for (const c of components) {
      const isHead = c.startsWith('head-');
      const byPos = opts.byPos ?? !isHead;
      const nH = c === 'head-k' || c === 'head-v' ? cfg.n_key_value_heads : cfg.n_heads;
      const sites: PatchSite[] = [];
      for (let l = 0; l < cfg.n_layers; l++) {
        const name = actName(HOOK[c], l);
        for (const p of byPos ? Array.from({ length: pos }, (_, i) => i) : [undefined]) {
          if (isHead) for (let h = 0; h < nH; h++) sites.push({ name, head: h, pos: p });
          else sites.push({ name, pos: p });
        }
      }
      const vals = yield* patchSitesReads(model, base, cache, sites, opts.metric, opts);
      const axes: Axis[] = [layerAxis(cfg.n_layers)];
      if (byPos) axes.push(posAxis(pos));
      if (isHead) axes.push(headAxisLabels(nH, nH === cfg.n_heads ? 'head' : 'kv_head'));
      out[c] = new Labelled(axes, vals, { component: c, direction: denoise ? 'denoising' : 'noising', ...baseline });
    }
    return out;
  } finally {
    srcLogits.dispose();
    baseLogits?.dispose();
    cache.dispose();
  }
}

function component0Pos(name: string): number {
  return slotAxes(name).pos + 1;
}

/** TransformerLens' named sweeps. */
export const patchResidPre = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'resid-pre', { byPos: true, ...o });
export const patchResidMid = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'resid-mid', { byPos: true, ...o });
export const patchResidPost = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'resid-post', { byPos: true, ...o });
export const patchAttnOut = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'attn-out', { byPos: true, ...o });
export const patchMlpOut = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'mlp-out', { byPos: true, ...o });
export const patchHeadOutByPos = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'head-out', { ...o, byPos: true });
export const patchHeadOutAllPos = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'head-out', { ...o, byPos: false });
export const patchHeadPatternAllPos = (m: HookedTransformer, o: ActivationPatchingOptions) => activationPatching(m, 'head-pattern', { ...o, byPos: false });

/**
 * TransformerLens' get_act_patch_attn_head_pattern_dest_src_pos: each head's attention pattern patched at one
 * (destination, source) entry alone, [layer, head, dest_pos, src_pos]. As there, the patched row is not
 * renormalised, and entries above the diagonal (masked, 0 in both runs) are included and change nothing.
 * One variant per entry on the patching engine: n_layers · n_heads · pos² variants.
 */
export function patchHeadPatternDestSrc(model: HookedTransformer, opts: ActivationPatchingOptions): Labelled {
  const { cfg } = model;
  const denoise = (opts.direction ?? 'denoising') === 'denoising';
  const [base, from] = denoise ? [opts.corrupted, opts.clean] : [opts.clean, opts.corrupted];
  const names = Array.from({ length: cfg.n_layers }, (_, l) => actName('pattern', l));
  const { logits: srcLogits, cache } = model.runWithCache(from, { names });
  const baseLogits = model.forward(base);
  const baseline = { [denoise ? 'clean' : 'corrupted']: metricValue(opts.metric, srcLogits), [denoise ? 'corrupted' : 'clean']: metricValue(opts.metric, baseLogits) };
  srcLogits.dispose();
  baseLogits.dispose();
  try {
    const pos = cache.get(names[0]).shape[2] as number; // [batch, head, query_pos, key_pos]
    const sites: PatchSite[] = [];
    for (let l = 0; l < cfg.n_layers; l++) {
      for (let h = 0; h < cfg.n_heads; h++) for (let q = 0; q < pos; q++) for (let k = 0; k < pos; k++) sites.push({ name: names[l], head: h, pos: q, keyPos: k });
    }
    const vals = patchSites(model, base, cache, sites, opts.metric, opts);
    const axes: Axis[] = [layerAxis(cfg.n_layers), headAxisLabels(cfg.n_heads), { ...posAxis(pos), name: 'dest_pos' }, { ...posAxis(pos), name: 'src_pos' }];
    return new Labelled(axes, vals, { component: 'head-pattern-dest-src', direction: denoise ? 'denoising' : 'noising', ...baseline });
  } finally {
    cache.dispose();
  }
}

/** resid_pre, attn_out and mlp_out by position (TransformerLens' get_act_patch_block_every). */
export function patchEveryBlock(m: HookedTransformer, o: ActivationPatchingOptions): Partial<Record<PatchComponent, Labelled>> {
  return patchComponents(m, m.cfg.attn_only ? ['resid-pre', 'attn-out'] : ['resid-pre', 'attn-out', 'mlp-out'], { ...o, byPos: true });
}

/** Each head's output, q, k, v and pattern, over all positions or by position (get_act_patch_attn_head_*_every). */
export function patchEveryHead(m: HookedTransformer, o: ActivationPatchingOptions): Partial<Record<PatchComponent, Labelled>> {
  return patchComponents(m, ['head-out', 'head-q', 'head-k', 'head-v', 'head-pattern'], { byPos: false, ...o });
}
