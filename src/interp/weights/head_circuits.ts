/**
 * The weight-space circuits of one attention head (Elhage et al. 2021, "A Mathematical Framework for
 * Transformer Circuits"), as FactoredMatrices in float64, in TransformerLens' row-vector convention
 * (a residual vector x is a row; a head reads x·W and writes z·W_O):
 *
 *   QK(l, h) = W_Q[h]·W_K[kv(h)]ᵀ   [d_model, d_model]   score(x_q, x_k) ∝ x_q·QK·x_kᵀ (before biases, rotary)
 *   OV(l, h) = W_V[kv(h)]·W_O[h]    [d_model, d_model]   a head attending fully to x writes x·OV
 *   full QK  = W_E·QK·W_Eᵀ          [d_vocab, d_vocab]   which query token attends to which key token
 *   full OV  = W_E·OV·W_U           [d_vocab, d_vocab]   attending to token s raises the logit of t by [s, t]
 *
 * Each has rank ≤ d_head. Under GQA/MQA query head h reads key/value head ⌊h / (n_heads / n_kv)⌋, the
 * grouping transformers' repeat_kv uses. Norms, biases, positional embeddings and rotary are left out,
 * as in the paper: fold the norms first (loadPretrained(dir, {processing: {foldLayerNorm: true}})) to
 * include their weights.
 */
import type * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { FactoredMatrix } from '../../linalg/factored_matrix.js';
import { mat, transpose, type Mat } from '../../linalg/mat.js';

/** The key/value head that query head h reads. */
export function kvHead(model: HookedTransformer, head: number): number {
  return Math.floor(head / (model.cfg.n_heads / model.cfg.n_key_value_heads));
}

export function checkHead(model: HookedTransformer, layer: number, head: number): void {
  const { n_layers, n_heads } = model.cfg;
  if (!(Number.isInteger(layer) && layer >= 0 && layer < n_layers)) {
    throw new HeadlensError(`layer ${layer} is not a layer of this model`, `use 0..${n_layers - 1}`);
  }
  if (!(Number.isInteger(head) && head >= 0 && head < n_heads)) {
    throw new HeadlensError(`head ${head} is not a head of this model`, `use 0..${n_heads - 1}`);
  }
}

// values read from a parameter tensor, kept while the tensor lives: composition reads every head's
// weights of a layer, and setParams replaces the tensor (so a stale entry is never found)
const read = new WeakMap<tf.Tensor, Float32Array>();

/** A parameter's values (the model's tensor is read, not copied into a new tensor). */
function values(model: HookedTransformer, name: string): { data: Float32Array; shape: number[] } {
  const t: tf.Tensor = model.param(name);
  let data = read.get(t);
  if (!data) {
    data = t.dataSync() as Float32Array;
    read.set(t, data);
  }
  return { data, shape: t.shape };
}

/**
 * Reads, with `await data()`, the weights the weight-space analyses read (every layer's W_Q, W_K, W_V, W_O, and
 * W_E and W_U) into the values those analyses take them from, so that they then run on a backend that cannot read
 * synchronously (WebGPU in Node). Every `…Async` form of a weight analysis calls it first and then runs the
 * synchronous body; a parameter already read is not read again (setParams replaces the tensor, and with it the entry).
 */
export async function readWeightsAsync(model: HookedTransformer): Promise<void> {
  const names = ['embed.W_E', 'unembed.W_U'];
  for (let l = 0; l < model.cfg.n_layers; l++) for (const w of ['W_Q', 'W_K', 'W_V', 'W_O']) names.push(`blocks.${l}.attn.${w}`);
  for (const name of names) {
    const t: tf.Tensor = model.param(name);
    if (!read.has(t)) read.set(t, (await t.data()) as Float32Array);
  }
}

/** Slice i of a [n, r, c] parameter as a float64 matrix [r, c]. */
function slice(p: { data: Float32Array; shape: number[] }, i: number): Mat {
  const [, r, c] = p.shape;
  return mat(r, c, p.data.subarray(i * r * c, (i + 1) * r * c));
}

/** A 2-d parameter as a float64 matrix. */
export function paramMatrix(model: HookedTransformer, name: string): Mat {
  const p = values(model, name);
  if (p.shape.length !== 2) throw new HeadlensError(`${name} is [${p.shape}], not a matrix`);
  return mat(p.shape[0], p.shape[1], p.data);
}

/** Per-head weights of (layer, head): W_Q, W_K, W_V [d_model, d_head], W_O [d_head, d_model] (K, V of its kv head). */
export function headWeights(model: HookedTransformer, layer: number, head: number): { W_Q: Mat; W_K: Mat; W_V: Mat; W_O: Mat } {
  checkHead(model, layer, head);
  const a = `blocks.${layer}.attn`;
  const g = kvHead(model, head);
  return {
    W_Q: slice(values(model, `${a}.W_Q`), head),
    W_K: slice(values(model, `${a}.W_K`), g),
    W_V: slice(values(model, `${a}.W_V`), g),
    W_O: slice(values(model, `${a}.W_O`), head),
  };
}

/** QK(l, h) = W_Q[h]·W_K[kv(h)]ᵀ [d_model, d_model], factored through d_head. */
export function qkCircuit(model: HookedTransformer, layer: number, head: number): FactoredMatrix {
  const w = headWeights(model, layer, head);
  return new FactoredMatrix(w.W_Q, transpose(w.W_K));
}

/** OV(l, h) = W_V[kv(h)]·W_O[h] [d_model, d_model], factored through d_head. */
export function ovCircuit(model: HookedTransformer, layer: number, head: number): FactoredMatrix {
  const w = headWeights(model, layer, head);
  return new FactoredMatrix(w.W_V, w.W_O);
}

/** W_E [d_vocab, d_model] and W_U [d_model, d_vocab] as float64 matrices (read once, reuse across heads). */
export function embeddings(model: HookedTransformer): { W_E: Mat; W_U: Mat } {
  return { W_E: paramMatrix(model, 'embed.W_E'), W_U: paramMatrix(model, 'unembed.W_U') };
}

/** The full QK circuit W_E·QK·W_Eᵀ [d_vocab, d_vocab], factored: (W_E·W_Q)·(W_E·W_K)ᵀ. */
export function fullQKCircuit(model: HookedTransformer, layer: number, head: number, emb = embeddings(model)): FactoredMatrix {
  return qkCircuit(model, layer, head).leftMatmul(emb.W_E).matmul(transpose(emb.W_E));
}

/** The full OV circuit W_E·OV·W_U [d_vocab, d_vocab], factored: (W_E·W_V)·(W_O·W_U). */
export function fullOVCircuit(model: HookedTransformer, layer: number, head: number, emb = embeddings(model)): FactoredMatrix {
  return ovCircuit(model, layer, head).leftMatmul(emb.W_E).matmul(emb.W_U);
}

