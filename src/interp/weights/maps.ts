/**
 * MAPS, "Mapping Attention head ParameterS" (Elhelo & Geva 2025, "Inferring Functionality of Attention
 * Heads from their Parameters", ACL; arXiv 2412.11965): what a head does, read from its weights alone.
 *
 * The head's full OV circuit M = E·W_V·W_O·W_U [d_vocab, d_vocab] says, for each source token s the head
 * attends to, how much it raises each target token's logit (row M[s]). Two questions are asked of it:
 *
 * - given an operation as token pairs (s, t) — country → capital, name → same name, word → antonym —
 *   how strongly does the head implement it? `relationScore` is the fraction of pairs whose target t
 *   is among the k highest entries of M[s];
 * - given a head, what does it do? `salientMappings` lists the (s, t) with the largest M[s, t].
 *
 * The paper evaluates 20 operations across 6 LLMs and finds these parameter-only estimates correlate
 * with what the heads output during inference. For heads past the first layer the token representation
 * the head actually sees is no longer the raw embedding; `throughMlp0` replaces E[s] by
 * E[s] + MLP_0(norm(E[s])), the embedding after the first MLP, as is common in this line of work.
 * Rows are computed one at a time from the factored circuit, so nothing vocab × vocab is ever formed.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { FactoredMatrix } from '../../linalg/factored_matrix.js';
import { checkHead, ovCircuit, paramMatrix } from './head_circuits.js';
import { headLabel } from '../head_label.js';
import { mat, matmul, type Mat } from '../../linalg/mat.js';

export interface MapsOptions {
  /** Pass each source embedding through block 0's MLP (E + MLP_0(norm(E))) first (default false). */
  throughMlp0?: boolean;
}

export interface RelationScore {
  layer: number;
  head: number;
  label: string;
  k: number;
  /** Pairs whose target is in the top-k of the source's row. */
  hits: number;
  total: number;
  /** hits / total. */
  score: number;
}

export interface TokenMapping {
  source: number;
  target: number;
  /** M[source, target]: the logit the head adds to target per unit attention on source. */
  value: number;
}

function checkToken(model: HookedTransformer, id: number): void {
  if (!(Number.isInteger(id) && id >= 0 && id < model.cfg.d_vocab)) {
    throw new HeadlensError(`token id ${id} is not in the vocabulary [0, ${model.cfg.d_vocab})`, 'check the tokenizer matches the model');
  }
}

/**
 * Rows `ids` of the token representation the head reads: W_E[ids] [ids, d_model], or with throughMlp0
 * W_E[ids] + MLP_0(norm_2,0(W_E[ids])), computed in tfjs and freed before returning.
 */
export function sourceEmbeddings(model: HookedTransformer, ids: number[], opts: MapsOptions = {}): Mat {
  ids.forEach((id) => checkToken(model, id));
  const { cfg } = model;
  if (!opts.throughMlp0) {
    const E = paramMatrix(model, 'embed.W_E');
    const out = mat(ids.length, cfg.d_model);
    ids.forEach((id, i) => out.data.set(E.data.subarray(id * cfg.d_model, (id + 1) * cfg.d_model), i * cfg.d_model));
    return out;
  }
  if (cfg.attn_only) throw new HeadlensError('throughMlp0 needs an MLP in block 0, but this model is attention-only', 'leave throughMlp0 off');
  const data = tf.tidy(() => {
    const e = tf.gather(model.param('embed.W_E'), tf.tensor1d(ids, 'int32')).expandDims(0) as tf.Tensor3D; // [1, ids, d_model]
    const x = model.applyNorm('blocks.0.ln2', e) as tf.Tensor3D; // [1, ids, d_model]
    return e.add(model.applyMlp(0, x)).dataSync() as Float32Array; // [1, ids, d_model]
  });
  return mat(ids.length, cfg.d_model, data);
}

/** The head's OV map from the given source tokens to target logits, factored: (sources·W_V)·(W_O·W_U). */
function sourceCircuit(model: HookedTransformer, layer: number, head: number, sources: number[], opts: MapsOptions): FactoredMatrix {
  checkHead(model, layer, head);
  const ov = ovCircuit(model, layer, head);
  return new FactoredMatrix(matmul(sourceEmbeddings(model, sources, opts), ov.A), matmul(ov.B, paramMatrix(model, 'unembed.W_U')));
}

/** Whether `target` is among the k largest entries of `row` (ties counted against it). */
function inTopK(row: Float64Array, target: number, k: number): boolean {
  const v = row[target];
  let above = 0;
  for (let j = 0; j < row.length; j++) {
    if (j !== target && row[j] >= v) {
      above++;
      if (above >= k) return false;
    }
  }
  return true;
}

/** The fraction of (source, target) pairs whose target is in the top-k of the head's row for source. */
export function relationScore(
  model: HookedTransformer,
  layer: number,
  head: number,
  pairs: [number, number][],
  opts: MapsOptions & { k?: number } = {},
): RelationScore {
  const k = opts.k ?? 10;
  if (!(Number.isInteger(k) && k >= 1)) throw new HeadlensError(`k ${k} is not a positive integer`);
  if (pairs.length === 0) throw new HeadlensError('relationScore needs at least one (source, target) pair');
  pairs.forEach(([, t]) => checkToken(model, t));
  const sources = [...new Set(pairs.map(([s]) => s))];
  const rowOf = new Map(sources.map((s, i) => [s, i]));
  const M = sourceCircuit(model, layer, head, sources, opts);
  const rows = new Map<number, Float64Array>();
  let hits = 0;
  for (const [s, t] of pairs) {
    let row = rows.get(s);
    if (!row) rows.set(s, (row = M.row(rowOf.get(s)!)));
    if (inTopK(row, t, k)) hits++;
  }
  return { layer, head, label: headLabel(layer, head), k, hits, total: pairs.length, score: hits / pairs.length };
}

/** relationScore for every head, layer by layer. */
export function relationScores(model: HookedTransformer, pairs: [number, number][], opts: MapsOptions & { k?: number } = {}): RelationScore[] {
  const out: RelationScore[] = [];
  for (let l = 0; l < model.cfg.n_layers; l++) for (let h = 0; h < model.cfg.n_heads; h++) out.push(relationScore(model, l, h, pairs, opts));
  return out;
}

/**
 * The head's `n` largest mappings M[s, t] over the given sources (default: the whole vocabulary), each
 * source contributing at most `perSource` (default 3) so that one token does not fill the list.
 * Cost: sources × d_vocab × d_head.
 */
export function salientMappings(
  model: HookedTransformer,
  layer: number,
  head: number,
  opts: MapsOptions & { n?: number; perSource?: number; sources?: number[] } = {},
): TokenMapping[] {
  const n = opts.n ?? 20;
  const per = opts.perSource ?? 3;
  const sources = opts.sources ?? Array.from({ length: model.cfg.d_vocab }, (_, i) => i);
  const M = sourceCircuit(model, layer, head, sources, opts);
  const best: TokenMapping[] = [];
  sources.forEach((s, i) => {
    const row = M.row(i);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, per);
    for (const t of order) best.push({ source: s, target: t, value: row[t] });
  });
  return best.sort((a, b) => b.value - a.value).slice(0, n);
}
