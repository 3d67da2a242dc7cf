/**
 * Direct logit attribution: how much each component writes, directly, toward an answer.
 *
 * The residual stream before the final norm is a sum: the embeddings, every head's output z_h·W_O[h],
 * each layer's attention bias b_O, and each MLP's output (Elhage et al. 2021, "A Mathematical Framework
 * for Transformer Circuits"). The logits are unembed(norm(sum)). The norm is not linear, but given its
 * scale it is: LayerNorm is (x − mean(x)) / scale · w + b and RMSNorm is x / scale · w, with one scale
 * per (prompt, position). Taking that scale from the run itself (ln_final.hook_scale, as TransformerLens'
 * apply_ln does), each component c contributes
 *     centre(c) / scale · w · (W_U[:, answer] − W_U[:, wrong])
 * where centre subtracts c's mean over d_model for LayerNorm (the norm centres the sum, and centring is
 * linear) and is the identity for RMSNorm. What is exact: these terms plus the constant term
 * (b_ln · dir + b_U[answer] − b_U[wrong]) add up to the run's logit (difference) to float rounding; the
 * tests check 1e-4 on every family. What is not: the attribution says nothing about indirect effects
 * (a head that changes what later heads do), and it freezes the scale, which in fact every component
 * moves. Wang et al. 2022 used it to find IOI's name mover heads (9.9, 10.0, 9.6 in GPT-2 small).
 *
 * This file owns DLA through the final norm: the terms come from the cache's logitAttrs (ActivationCache,
 * TransformerLens' logit_attrs), and the correct-letter and IOI scorers call `headDla` / `headDlaFromCache`
 * here rather than computing it again.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { ActivationCache } from '../../hooks/activation_cache.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import { Labelled, layerAxis } from '../labelled.js';
import type { Answer } from '../metrics.js';
import { readAsync, readNested, readSync, type Reads, readNestedPair } from '../../util/reads.js';

export interface DlaOptions {
  answer: Answer;
  /** Attribute answer − wrong (a logit difference) instead of the answer's logit. */
  wrong?: Answer;
  /** The position read (default -1: the last). */
  pos?: number;
}

/**
 * Every component's direct contribution, per prompt: axes [batch, component] with components 'embed',
 * 'pos_embed' (learned positions only), for each layer 'L{l}H{h}' (each head), 'L{l}.b_O' and 'L{l}.mlp'
 * (models with MLPs), and last 'bias' (the final norm's bias and b_U along the direction). The row sums
 * are the logit (difference); meta.logit holds what the run computed, per prompt.
 */
export function directLogitAttribution(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Labelled {
  return readSync(directLogitAttributionReads(model, tokens, opts));
}

/** directLogitAttribution, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function directLogitAttributionAsync(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Promise<Labelled> {
  return readAsync(directLogitAttributionReads(model, tokens, opts));
}

function* directLogitAttributionReads(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Reads<Labelled> {
  const { cfg } = model;
  const names = ['hook_embed', ...(cfg.positional_embedding_type === 'standard' ? ['hook_pos_embed'] : [])];
  for (let l = 0; l < cfg.n_layers; l++) {
    names.push(actName('result', l));
    if (!cfg.attn_only) names.push(actName('mlp_out', l));
  }
  if (cfg.normalization_type) names.push('ln_final.hook_scale');
  const { logits, cache } = model.runWithCache(tokens, { names });
  const [batch, nPos] = logits.shape;
  const p = (opts.pos ?? -1) < 0 ? nPos + (opts.pos ?? -1) : opts.pos!;
  const labels: string[] = [];
  let actualT: tf.Tensor | undefined;
  let colsT: tf.Tensor;
  let ans: number[];
  let wrong: number[] | undefined;
  try {
    if (!Number.isInteger(p) || p < 0 || p >= nPos) throw new HeadlensError(`position ${opts.pos} is outside the sequence (${nPos} tokens)`);
    ans = answerIds(opts.answer, batch, cfg.d_vocab, 'answer');
    wrong = opts.wrong === undefined ? undefined : answerIds(opts.wrong, batch, cfg.d_vocab, 'wrong');
    actualT = tf.tidy(() => {
      const l2 = logits.slice([0, p, 0], [-1, 1, -1]).reshape([batch, cfg.d_vocab]) as tf.Tensor2D;
      const g = (ids: number[]) => tf.gather(l2, tf.tensor1d(ids, 'int32'), 1).mul(tf.eye(batch)).sum(1);
      return wrong ? g(ans).sub(g(wrong)) : g(ans); // [batch]
    });
    // the components at the read position, each [1, batch, d_model], in the order of the labels; through
    // the final norm and onto the answer direction by the cache's logitAttrs, the one path for DLA
    colsT = tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      const atPos = (n: string) => cache.get(n).slice([0, p, 0], [-1, 1, -1]).reshape([1, batch, cfg.d_model]);
      labels.push('embed');
      parts.push(atPos('hook_embed'));
      if (cfg.positional_embedding_type === 'standard') (labels.push('pos_embed'), parts.push(atPos('hook_pos_embed')));
      const heads = cache.stackHeadResults(undefined, { posSlice: p }); // [layer·head, batch, d_model]
      for (let l = 0; l < cfg.n_layers; l++) {
        labels.push(...heads.labels.slice(l * cfg.n_heads, (l + 1) * cfg.n_heads), `L${l}.b_O`);
        parts.push(heads.stack.slice([l * cfg.n_heads, 0, 0], [cfg.n_heads, -1, -1]));
        parts.push(model.param(`blocks.${l}.attn.b_O`).reshape([1, 1, -1]).tile([1, batch, 1]));
        if (!cfg.attn_only) (labels.push(`L${l}.mlp`), parts.push(atPos(actName('mlp_out', l))));
      }
      return cache.logitAttrs(tf.concat(parts, 0), ans, wrong, { posSlice: p }); // [component, batch]
    });
  } catch (e) {
    actualT?.dispose();
    throw e;
  } finally {
    cache.dispose();
    logits.dispose();
  }
  const [cols, actual] = yield* readNestedPair<number[][], number[]>(colsT, actualT);
  labels.push('bias');
  cols.push(Array.from(yield* directBiasReads(model, ans, wrong)));
  const values = new Float64Array(batch * labels.length);
  for (let b = 0; b < batch; b++) for (let c = 0; c < labels.length; c++) values[b * labels.length + c] = cols[c][b];
  return new Labelled(
    [{ name: 'batch', labels: Array.from({ length: batch }, (_, i) => String(i)) }, { name: 'component', labels }],
    values,
    { logit: Array.from(actual), pos: p, direction: wrong ? 'answer − wrong' : 'answer' },
  );
}

/**
 * The constant term of the logit (difference): what the final norm's bias and b_U add whatever the
 * components wrote, unembed(ln_final.b) at the answer minus at wrong ([batch]; read through the model's
 * own pieces, the norm with scale 1 on a zero residual giving its bias).
 */
export function directBias(model: HookedTransformer, answer: number[], wrong?: number[]): Float32Array {
  return readSync(directBiasReads(model, answer, wrong));
}

function* directBiasReads(model: HookedTransformer, answer: number[], wrong?: number[]): Reads<Float32Array> {
  const { cfg } = model;
  const bias = tf.tidy(() => {
    const zero = tf.zeros([1, cfg.d_model]);
    const logits = model.unembed(model.applyNorm('ln_final', zero, { scale: tf.ones([1, 1]) })).reshape([-1]); // [d_vocab]
    const at = (ids: number[]) => tf.gather(logits, tf.tensor1d(ids, 'int32'));
    return wrong ? at(answer).sub(at(wrong)) : at(answer); // [batch]
  });
  return (yield bias) as Float32Array;
}

/**
 * Each head's direct logit attribution, at position `pos` of prompt `b` (default 0) of a run's cache, to
 * each of `targets`: [layer][head][target]. The same terms as `directLogitAttribution` (the head's output
 * through the final norm with the run's scale, times W_U[:, target]), read from a cache that holds the heads'
 * results (or hook_z) and ln_final.hook_scale, so callers that need more of the same run (attention, say)
 * run once.
 */
export function headDlaFromCache(cache: ActivationCache, pos: number, targets: number[], b = 0): number[][][] {
  return readSync(readNested<number[][][]>(headDlaTensor(cache, pos, targets, b)));
}

/** headDlaFromCache's values as a tensor [layer, head, target] that the caller owns (and reads, util/reads.ts). */
export function headDlaTensor(cache: ActivationCache, pos: number, targets: number[], b = 0): tf.Tensor3D {
  const { n_layers, n_heads } = cache.cfg;
  return tf.tidy(() => {
    const heads = cache.stackHeadResults(undefined, { posSlice: pos }).stack; // [layer·head, batch, d_model]
    const per = targets.map((t) => cache.logitAttrs(heads, t, undefined, { posSlice: pos }).slice([0, b], [-1, 1])); // [layer·head, 1] each
    return tf.concat(per, 1).reshape([n_layers, n_heads, targets.length]) as tf.Tensor3D;
  });
}

/** The names a cache needs for `headDlaFromCache`. */
export function headDlaNames(model: HookedTransformer): string[] {
  const { cfg } = model;
  return [...Array.from({ length: cfg.n_layers }, (_, l) => actName('result', l)), ...(cfg.normalization_type ? [actName('scale')] : [])];
}

/** Each head's direct logit attribution to each of `targets` at `pos` of one prompt: [layer][head][target]; `fwdHooks` apply to the run (e.g. other heads ablated). */
export function headDla(model: HookedTransformer, tokens: number[], pos: number, targets: number[], fwdHooks: FwdHook[] = []): number[][][] {
  return readSync(headDlaReads(model, tokens, pos, targets, fwdHooks));
}

/** headDla, read asynchronously (WebGPU in Node). */
export function headDlaAsync(model: HookedTransformer, tokens: number[], pos: number, targets: number[], fwdHooks: FwdHook[] = []): Promise<number[][][]> {
  return readAsync(headDlaReads(model, tokens, pos, targets, fwdHooks));
}

export function* headDlaReads(model: HookedTransformer, tokens: number[], pos: number, targets: number[], fwdHooks: FwdHook[] = []): Reads<number[][][]> {
  const { logits, cache } = model.runWithCache([tokens], { names: headDlaNames(model), fwdHooks });
  let dla: tf.Tensor;
  try {
    dla = headDlaTensor(cache, pos, targets);
  } finally {
    cache.dispose();
    logits.dispose();
  }
  return yield* readNested<number[][][]>(dla);
}

/** DLA of every head, averaged over prompts: axes [layer, head]. */
export function dlaPerHead(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Labelled {
  return perHead(model, directLogitAttribution(model, tokens, opts));
}

/** dlaPerHead, read asynchronously (WebGPU in Node). */
export async function dlaPerHeadAsync(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Promise<Labelled> {
  return perHead(model, await directLogitAttributionAsync(model, tokens, opts));
}

function perHead(model: HookedTransformer, full: Labelled): Labelled {
  const { n_layers, n_heads } = model.cfg;
  const mean = meanOverBatch(full);
  const v = new Float64Array(n_layers * n_heads);
  for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) v[l * n_heads + h] = mean.get(`L${l}H${h}`)!;
  return new Labelled([layerAxis(n_layers), { name: 'head', labels: Array.from({ length: n_heads }, (_, i) => `H${i}`) }], v, full.meta);
}

/** DLA per layer and kind, averaged over prompts: axes [layer, component] with 'attn' (heads + b_O) and 'mlp'. */
export function dlaPerLayer(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Labelled {
  return perLayer(model, directLogitAttribution(model, tokens, opts));
}

/** dlaPerLayer, read asynchronously (WebGPU in Node). */
export async function dlaPerLayerAsync(model: HookedTransformer, tokens: TokenInput, opts: DlaOptions): Promise<Labelled> {
  return perLayer(model, await directLogitAttributionAsync(model, tokens, opts));
}

function perLayer(model: HookedTransformer, full: Labelled): Labelled {
  const { n_layers, n_heads, attn_only } = model.cfg;
  const mean = meanOverBatch(full);
  const kinds = attn_only ? ['attn'] : ['attn', 'mlp'];
  const v = new Float64Array(n_layers * kinds.length);
  for (let l = 0; l < n_layers; l++) {
    let a = mean.get(`L${l}.b_O`)!;
    for (let h = 0; h < n_heads; h++) a += mean.get(`L${l}H${h}`)!;
    v[l * kinds.length] = a;
    if (!attn_only) v[l * kinds.length + 1] = mean.get(`L${l}.mlp`)!;
  }
  const rest = ['embed', 'pos_embed', 'bias'].filter((k) => mean.has(k)).reduce((s, k) => s + mean.get(k)!, 0);
  return new Labelled([layerAxis(n_layers), { name: 'component', labels: kinds }], v, { ...full.meta, embeddingsAndBias: rest });
}

function meanOverBatch(full: Labelled): Map<string, number> {
  const [batch, n] = full.shape;
  const out = new Map<string, number>();
  full.axes[1].labels.forEach((label, c) => {
    let s = 0;
    for (let b = 0; b < batch; b++) s += full.values[b * n + c];
    out.set(label, s / batch);
  });
  return out;
}

function answerIds(a: Answer, batch: number, dVocab: number, what: string): number[] {
  const list = typeof a === 'number' ? Array.from({ length: batch }, () => a) : a;
  if (list.length !== batch) throw new HeadlensError(`${list.length} ${what} tokens for ${batch} prompts`, 'give one token, or one per prompt');
  for (const id of list) if (!Number.isInteger(id) || id < 0 || id >= dVocab) throw new HeadlensError(`${what} token ${id} is not in the vocabulary [0, ${dVocab})`);
  return list;
}
