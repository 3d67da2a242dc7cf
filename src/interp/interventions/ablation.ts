/**
 * Ablation: remove what a component contributes and see what the model loses.
 *
 * Knocking a component out is the oldest causal test in interpretability, and what "out" means matters.
 * Zero-ablation sets a head's output z to 0, a value the head may never produce, so the residual stream
 * downstream sees something off-distribution. Mean-ablation replaces it with its average over a
 * reference batch (per position, or over positions too), which keeps the typical "bias" of the head and
 * removes only what depends on this input; Wang et al. 2022 (IOI) mean-ablate over a reference
 * distribution for exactly this reason. Resample-ablation (Chan et al. 2022, causal scrubbing) draws the
 * head's activation from another prompt, so the replacement is always one the head really produced.
 * Wu et al. 2024 (retrieval heads) mask a head differently: they leave its values alone and make its
 * attention uniform over the keys it may see. Retrieval heads are under 5% of all heads, yet masking the
 * top ones made LLaMA-2-7B-80K fail Needle-in-a-Haystack and hallucinate, while masking as many random
 * heads left it intact (their Figure 1). Here 'uniform' sets the head's pre-softmax scores to one value over its allowed keys (masked
 * keys stay -Infinity), so its pattern is 1/(number of allowed keys) on each of them.
 * 'window' is DuoAttention's streaming attention (Xiao et al. 2024): the head keeps only the first
 * `sinkTokens` keys and the `recent` keys up to the query (q − recent < k ≤ q), everything else masked before
 * the softmax. A streaming head loses nothing by it; a retrieval head loses what it reads from the middle.
 *
 * Under grouped-query attention a key/value head is shared: ablating kv head g of layer l (its hook_k and
 * hook_v) takes it away from every query head h with floor(h / (n_heads / n_key_value_heads)) = g.
 * `kvHeadAblationHooks` does that; `headAblationHooks` ablates query heads one by one (their z or scores),
 * which is what "ablate head L.H" means in TransformerLens and in papers on GQA models.
 *
 * Every hook here builds its replacement inside the forward pass's tidy, reading reference caches
 * lazily, so nothing is allocated outside a run and nothing outlives it.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { ActivationCache } from '../../hooks/activation_cache.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import { Random } from '../../util/random.js';

export type HeadRef = { layer: number; head: number };
export type AblationKind = 'zero' | 'mean' | 'resample' | 'uniform' | 'window';
export interface AblationOptions {
  kind: AblationKind;
  /** mean: activations to average over (a cache from runWithCache on reference prompts, holding attn.hook_z of the layers needed); resample: the same, rows drawn with `seed` */
  reference?: ActivationCache;
  perPosition?: boolean; // mean per position (default true) or over positions
  seed?: number; // resample
  positions?: number[]; // only these query positions (default all)
  sinkTokens?: number; // window: leading keys kept (default 4)
  recent?: number; // window: recent keys kept, the query's own included (default 16)
}

/** A key/value head: under GQA one serves n_heads / n_key_value_heads query heads. */
export type KvHeadRef = { layer: number; kvHead: number };

/** Hooks for runWithHooks/runWithCache that ablate these query heads. 'uniform' sets the head's pre-softmax scores to one value over the keys it may attend to (Wu et al. 2024's masking), via attn.hook_attn_scores; the others act on attn.hook_z. */
export function headAblationHooks(model: HookedTransformer, heads: HeadRef[], opts: AblationOptions): FwdHook[] {
  const { cfg } = model;
  checkKind(opts);
  const byLayer = groupByLayer(heads.map((h) => ({ layer: h.layer, index: h.head })), cfg.n_layers, cfg.n_heads, 'head');
  const hooks: FwdHook[] = [];
  for (const [layer, idx] of byLayer) {
    if (opts.kind === 'uniform') {
      hooks.push([actName('attn_scores', layer), (scores) => uniformScores(scores as tf.Tensor4D, idx, opts.positions)]);
    } else if (opts.kind === 'window') {
      hooks.push([actName('attn_scores', layer), (scores) => windowScores(scores as tf.Tensor4D, idx, opts.sinkTokens ?? 4, opts.recent ?? 16)]);
    } else {
      const name = actName('z', layer);
      hooks.push([name, (z) => replaceSlots(z, 2, idx, opts, name, layer)]);
    }
  }
  return hooks;
}

/** One call: logits [batch, pos, d_vocab] with the heads ablated (caller owns). */
export function runWithAblatedHeads(model: HookedTransformer, tokens: TokenInput, heads: HeadRef[], opts: AblationOptions): tf.Tensor3D {
  return model.runWithHooks(tokens, { fwdHooks: headAblationHooks(model, heads, opts) });
}

/**
 * Hooks that ablate key/value heads (attn.hook_k and attn.hook_v of that kv head; `which` picks one of
 * them). Every query head of the group loses it. 'uniform' is not a kv-head ablation: with k zeroed
 * the group's scores are constant in the key only up to the query bias, so use headAblationHooks on
 * the group's query heads for uniform attention.
 */
export function kvHeadAblationHooks(
  model: HookedTransformer,
  kvHeads: KvHeadRef[],
  opts: AblationOptions & { which?: 'kv' | 'k' | 'v' },
): FwdHook[] {
  const { cfg } = model;
  checkKind(opts);
  if (opts.kind === 'uniform' || opts.kind === 'window') {
    throw new HeadlensError(`'${opts.kind}' ablation acts on query heads' scores, not on key/value heads`, 'use headAblationHooks with the query heads of the group (queryHeadsOf)');
  }
  const which = opts.which ?? 'kv';
  const byLayer = groupByLayer(kvHeads.map((h) => ({ layer: h.layer, index: h.kvHead })), cfg.n_layers, cfg.n_key_value_heads, 'kv head');
  const hooks: FwdHook[] = [];
  for (const [layer, idx] of byLayer) {
    for (const short of which === 'kv' ? (['k', 'v'] as const) : [which]) {
      const name = actName(short, layer);
      hooks.push([name, (act) => replaceSlots(act, 2, idx, opts, name, layer)]);
    }
  }
  return hooks;
}

/** The query heads that read kv head `kvHead` (transformers' repeat_kv grouping). */
export function queryHeadsOf(model: HookedTransformer, kvHead: number): number[] {
  const { n_heads, n_key_value_heads } = model.cfg;
  const group = n_heads / n_key_value_heads;
  return Array.from({ length: group }, (_, i) => kvHead * group + i);
}

/** Hooks that ablate whole MLP layers at blocks.{l}.hook_mlp_out ('zero', 'mean' or 'resample'; reference holds hook_mlp_out). */
export function mlpAblationHooks(model: HookedTransformer, layers: number[], opts: AblationOptions): FwdHook[] {
  const { cfg } = model;
  checkKind(opts);
  if (cfg.attn_only) throw new HeadlensError(`model ${cfg.model_name} is attention-only and has no MLPs`);
  if (opts.kind === 'uniform' || opts.kind === 'window') throw new HeadlensError(`'${opts.kind}' ablation is for attention heads`, "use 'zero', 'mean' or 'resample' for MLPs");
  const seen = new Set<number>();
  const hooks: FwdHook[] = [];
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= cfg.n_layers) throw new HeadlensError(`MLP layer ${l} is out of range`, `use 0..${cfg.n_layers - 1}`);
    if (seen.has(l)) continue;
    seen.add(l);
    const name = actName('mlp_out', l);
    hooks.push([name, (act) => replaceSlots(act, undefined, [], opts, name, l)]);
  }
  return hooks;
}

// ---------------------------------------------------------------------------------------------------

function checkKind(opts: AblationOptions): void {
  const kinds: AblationKind[] = ['zero', 'mean', 'resample', 'uniform', 'window'];
  if (!opts || !kinds.includes(opts.kind)) throw new HeadlensError(`unknown ablation kind '${opts?.kind}'`, `use one of ${kinds.join(', ')}`);
  if ((opts.kind === 'mean' || opts.kind === 'resample') && !opts.reference) {
    throw new HeadlensError(`'${opts.kind}' ablation needs a reference cache`, "pass reference: model.runWithCache(referenceTokens, { names: [...] }).cache");
  }
  if (opts.kind === 'window') {
    const [sink, recent] = [opts.sinkTokens ?? 4, opts.recent ?? 16];
    if (!(Number.isInteger(sink) && sink >= 0 && Number.isInteger(recent) && recent >= 1)) {
      throw new HeadlensError(`window ablation: sinkTokens ${sink} and recent ${recent} must be integers, sinkTokens ≥ 0 and recent ≥ 1`);
    }
  }
  if (opts.positions) {
    for (const p of opts.positions) if (!Number.isInteger(p) || p < 0) throw new HeadlensError(`position ${p} is not a position index`);
  }
}

function groupByLayer(refs: { layer: number; index: number }[], nLayers: number, nHeads: number, what: string): Map<number, number[]> {
  if (refs.length === 0) throw new HeadlensError(`no ${what}s to ablate`, `pass at least one { layer, ${what === 'head' ? 'head' : 'kvHead'} }`);
  const out = new Map<number, number[]>();
  for (const { layer, index } of refs) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) throw new HeadlensError(`layer ${layer} is out of range`, `use 0..${nLayers - 1}`);
    if (!Number.isInteger(index) || index < 0 || index >= nHeads) throw new HeadlensError(`${what} ${index} of layer ${layer} is out of range`, `use 0..${nHeads - 1}`);
    const list = out.get(layer) ?? [];
    if (!list.includes(index)) list.push(index);
    out.set(layer, list);
  }
  return out;
}

/** A 0/1 mask over [1, pos, head?, 1] selecting the ablated (position, head) slots. */
function slotMask(pos: number, nHeads: number | undefined, heads: number[], positions: number[] | undefined): tf.Tensor {
  for (const p of positions ?? []) if (p >= pos) throw new HeadlensError(`position ${p} is beyond the sequence (${pos} tokens)`);
  const posSel = positions ? new Set(positions) : undefined;
  if (nHeads === undefined) {
    const m = new Float32Array(pos);
    for (let p = 0; p < pos; p++) m[p] = !posSel || posSel.has(p) ? 1 : 0;
    return tf.tensor3d(m, [1, pos, 1]); // [1, pos, 1]
  }
  const m = new Float32Array(pos * nHeads);
  for (let p = 0; p < pos; p++) for (const h of heads) if (!posSel || posSel.has(p)) m[p * nHeads + h] = 1;
  return tf.tensor4d(m, [1, pos, nHeads, 1]); // [1, pos, head, 1]
}

/**
 * Replaces the chosen heads (along headAxis; undefined: the whole activation) at the chosen positions
 * with zero, the reference mean, or resampled reference rows. act is [batch, pos, (head,) …].
 */
function replaceSlots(act: tf.Tensor, headAxis: 2 | undefined, heads: number[], opts: AblationOptions, name: string, layer: number): tf.Tensor {
  const [batch, pos] = act.shape;
  const mask = slotMask(pos, headAxis === undefined ? undefined : act.shape[2], heads, opts.positions);
  const keep = tf.sub(1, mask);
  if (opts.kind === 'zero') return act.mul(keep);
  const ref = referenceAct(opts.reference!, name, act, !(opts.kind === 'mean' && opts.perPosition === false));
  let repl: tf.Tensor;
  if (opts.kind === 'mean') {
    repl = opts.perPosition === false ? ref.mean([0, 1], true) : ref.mean(0, true).slice(0, [1, pos]); // [1, pos|1, …]
  } else {
    const rows = drawRows(batch, ref.shape[0], (opts.seed ?? 0) * 7919 + layer);
    repl = tf.gather(ref, tf.tensor1d(rows, 'int32'), 0).slice(0, [batch, pos]); // [batch, pos, …]
  }
  return act.mul(keep).add(repl.mul(mask));
}

function referenceAct(reference: ActivationCache, name: string, act: tf.Tensor, needsPositions: boolean): tf.Tensor {
  if (!reference.has(name)) {
    throw new HeadlensError(`the reference cache holds no '${name}'`, `run the reference prompts with runWithCache(refTokens, { names: ['${name}', …] })`);
  }
  const ref = reference.get(name);
  if (ref.shape.slice(2).join() !== act.shape.slice(2).join()) {
    throw new HeadlensError(`reference '${name}' is [${ref.shape}] but the run's is [${act.shape}]`, 'make the reference cache with the same model');
  }
  if (needsPositions && ref.shape[1]! < act.shape[1]!) {
    throw new HeadlensError(`reference prompts have ${ref.shape[1]} positions, the run has ${act.shape[1]}`, 'use reference prompts at least as long as the run, or perPosition: false (mean only)');
  }
  return ref;
}

/** Seeded draws of reference rows, one per batch row: the same seed gives the same rows. */
export function drawRows(n: number, nRef: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => rng.int(0, nRef));
}

/** The selected heads' scores outside sink ∪ recent window set to −Infinity. [batch, head, query_pos, key_pos]. */
function windowScores(scores: tf.Tensor4D, heads: number[], sink: number, recent: number): tf.Tensor {
  const [, nHeads, qPos, kPos] = scores.shape;
  const m = new Uint8Array(nHeads * qPos * kPos); // 1 where a selected head loses the key
  for (const h of heads) for (let q = 0; q < qPos; q++) for (let k = 0; k < kPos; k++) if (k >= sink && k <= q - recent) m[(h * qPos + q) * kPos + k] = 1;
  const drop = tf.tensor4d(m, [1, nHeads, qPos, kPos], 'bool'); // [1, head, query_pos, key_pos]
  return tf.where(drop, tf.fill(scores.shape, -Infinity), scores);
}

/** Scores [batch, head, query_pos, key_pos] with the chosen heads' allowed scores set to 0 (masked keys stay -Infinity). */
function uniformScores(scores: tf.Tensor4D, heads: number[], positions: number[] | undefined): tf.Tensor {
  const [, nHeads, qPos] = scores.shape;
  for (const p of positions ?? []) if (p >= qPos) throw new HeadlensError(`position ${p} is beyond the sequence (${qPos} tokens)`);
  const posSel = positions ? new Set(positions) : undefined;
  const m = new Float32Array(nHeads * qPos);
  for (const h of heads) for (let q = 0; q < qPos; q++) if (!posSel || posSel.has(q)) m[h * qPos + q] = 1;
  const sel = tf.tensor4d(m, [1, nHeads, qPos, 1]).cast('bool'); // [1, head, query_pos, 1]
  const allowed = tf.isFinite(scores);
  return tf.where(tf.logicalAnd(sel, allowed), tf.zerosLike(scores), scores);
}
