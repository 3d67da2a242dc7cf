/**
 * Inter-layer communication channels between heads, after Merullo, Eickhoff & Pavlick (2024), "Talking
 * Heads: Understanding Inter-layer Communication in Transformer Language Models". They find that a
 * sender head writes into a low-rank subspace of the residual stream that a receiver head in a later
 * layer reads, and locate these channels with the SVD of the heads' weight matrices.
 *
 * headlens measures the overlap of subspaces directly. In the row-vector convention (head_circuits.ts)
 * the sender writes x·OV = (x·U·S)·Vᵀ, so its output lives in the span of OV's top right singular
 * vectors V; the receiver's score x_q·QK·x_kᵀ reads queries through QK's top left singular vectors and
 * keys through its top right ones. With orthonormal bases P, Q of two r-dimensional subspaces,
 *
 *     alignment = ‖Pᵀ·Q‖²_F / r = mean of cos²(principal angles)   ∈ [0, 1]
 *
 * is 1 when the receiver reads exactly what the sender writes and r / d_model on average for random
 * subspaces (`baseline`). A layer pair's channel score is the best aligned head pair. This subspace
 * overlap is headlens' own summary, not a measure of the paper.
 *
 * The paper's measure is below (`componentComposition`, `componentInhibition`): the composition score
 * of each rank-1 SVD component with the other head's whole matrix, and the drop in the receiver's
 * inhibition when one component is removed from the sender's output.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { actName } from '../../hooks/act_name.js';
import type { FactoredMatrix } from '../../linalg/factored_matrix.js';
import { compositionScore } from './composition.js';
import { checkHead, ovCircuit, qkCircuit, readWeightsAsync } from './head_circuits.js';
import { readAsync, readNested, readSync, type Reads } from '../../util/reads.js';
import { headLabel } from '../head_label.js';
import { columns, mat, matmul, norm2, transpose, type Mat } from '../../linalg/mat.js';

export type ReceiverSide = 'query' | 'key';

export interface TalkingHeadsOptions {
  /** How many top singular vectors span each subspace (default: d_head). */
  rank?: number;
}

/** Mean squared cosine of the principal angles between the column spans of P and Q (orthonormal columns). */
export function subspaceAlignment(P: Mat, Q: Mat): number {
  if (P.rows !== Q.rows) throw new HeadlensError(`subspaces live in different spaces ([${P.rows}, ·] vs [${Q.rows}, ·])`);
  const r = Math.min(P.cols, Q.cols);
  if (r === 0) return 0;
  const c = matmul(transpose(P), Q);
  let s = 0;
  for (const x of c.data) s += x * x;
  return s / r;
}

function checkRank(model: HookedTransformer, rank: number): void {
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= model.cfg.d_head)) {
    throw new HeadlensError(`rank ${rank} is not in 1..d_head (${model.cfg.d_head})`, 'a head’s circuits have rank at most d_head');
  }
}

/** Orthonormal basis [d_model, rank] of the sender's OV output subspace. */
export function writeSubspace(model: HookedTransformer, layer: number, head: number, rank = model.cfg.d_head): Mat {
  checkRank(model, rank);
  return columns(ovCircuit(model, layer, head).V, 0, rank);
}

/** Orthonormal basis [d_model, rank] of the subspace a head's queries (or keys) read. */
export function readSubspace(model: HookedTransformer, layer: number, head: number, side: ReceiverSide, rank = model.cfg.d_head): Mat {
  checkRank(model, rank);
  const qk = qkCircuit(model, layer, head);
  return columns(side === 'query' ? qk.U : qk.V, 0, rank);
}

export interface HeadChannel {
  sender: string;
  receiver: string;
  query: number;
  key: number;
}

/** Alignment of one sender's output with one later receiver's query and key inputs. */
export function headChannel(
  model: HookedTransformer,
  sender: { layer: number; head: number },
  receiver: { layer: number; head: number },
  opts: TalkingHeadsOptions = {},
): HeadChannel {
  checkHead(model, sender.layer, sender.head);
  checkHead(model, receiver.layer, receiver.head);
  const rank = opts.rank ?? model.cfg.d_head;
  const w = writeSubspace(model, sender.layer, sender.head, rank);
  return {
    sender: headLabel(sender.layer, sender.head),
    receiver: headLabel(receiver.layer, receiver.head),
    query: subspaceAlignment(w, readSubspace(model, receiver.layer, receiver.head, 'query', rank)),
    key: subspaceAlignment(w, readSubspace(model, receiver.layer, receiver.head, 'key', rank)),
  };
}

export interface LayerChannel {
  senderLayer: number;
  receiverLayer: number;
  side: ReceiverSide;
  rank: number;
  /** alignment[senderHead][receiverHead]. */
  alignment: number[][];
  /** The best aligned pair: the layer pair's channel score. */
  best: { sender: string; receiver: string; score: number };
  /** Expected alignment of random subspaces of this rank: rank / d_model. */
  baseline: number;
}

/** Alignment of every sender head in one layer with every receiver head (query or key side) in a later layer. */
export function layerChannel(model: HookedTransformer, senderLayer: number, receiverLayer: number, side: ReceiverSide, opts: TalkingHeadsOptions = {}): LayerChannel {
  checkHead(model, senderLayer, 0);
  checkHead(model, receiverLayer, 0);
  if (senderLayer >= receiverLayer) {
    throw new HeadlensError(`sender layer ${senderLayer} is not before receiver layer ${receiverLayer}`, 'a head can only read what earlier layers wrote');
  }
  if (side !== 'query' && side !== 'key') throw new HeadlensError(`side '${side as string}' is not query or key`);
  const rank = opts.rank ?? model.cfg.d_head;
  const H = model.cfg.n_heads;
  const writes = Array.from({ length: H }, (_, h) => writeSubspace(model, senderLayer, h, rank));
  const reads = Array.from({ length: H }, (_, h) => readSubspace(model, receiverLayer, h, side, rank));
  const alignment = writes.map((w) => reads.map((r) => subspaceAlignment(w, r)));
  let best = { sender: '', receiver: '', score: -1 };
  alignment.forEach((row, a) =>
    row.forEach((score, b) => {
      if (score > best.score) best = { sender: headLabel(senderLayer, a), receiver: headLabel(receiverLayer, b), score };
    }),
  );
  return { senderLayer, receiverLayer, side, rank, alignment, best, baseline: rank / model.cfg.d_model };
}

/*
 * ---- The paper's own measure: composition scores of rank-1 SVD components, and inhibition ----
 *
 * Merullo et al. find that the composition score of Elhage et al. (2021),
 *
 *     CS(W_A, W_B) = ‖W_A·W_B‖_F / (‖W_A‖_F · ‖W_B‖_F),
 *
 * computed between whole matrices hides the channel between e.g. GPT-2's inhibition heads and mover
 * head 9.9 in noise, and that it shows up once one matrix is split into its rank-1 SVD components
 * W = Σ σ_i·u_i·v_iᵀ: the composition is concentrated in one or two components (their Figure 2), and
 * removing that component from the sender's output removes most of the receiver's inhibition (the
 * data-based "inhibition score" beside it). For a rank-1 component C = σ·u·vᵀ, CS has a closed form,
 *
 *     sender split   (C of the sender's OV):   CS(C, R)  = ‖vᵀ·R‖ / ‖R‖_F
 *     receiver split (C of the receiver's R):  CS(OV, C) = ‖OV·u‖ / ‖OV‖_F
 *
 * with R = QK (query side) or QKᵀ (key side) in the row-vector convention (composition.ts): the share
 * of the receiver's reading gain along the direction a sender component writes, or of the sender's
 * writing along the direction a receiver component reads. A direction independent of the other matrix
 * scores 1/√d_model in root mean square (`baseline`).
 */

/** Which matrix is split into rank-1 components. */
export type DecomposedSide = 'sender' | 'receiver';

export interface ComponentComposition {
  sender: string;
  receiver: string;
  side: ReceiverSide;
  decomposed: DecomposedSide;
  /** Singular values of the split matrix (sender OV, or receiver QK), descending, one per component. */
  singularValues: number[];
  /** scores[i]: the composition score of component i with the other, whole matrix. */
  scores: number[];
  /** The component with the highest score, and that score. */
  best: { component: number; score: number };
  /** The composition score of the whole matrices. */
  full: number;
  /** 1/√d_model: the root-mean-square score of a direction independent of the other matrix. */
  baseline: number;
}

/** The matrix through which the receiver reads: QK for queries, QKᵀ for keys (row-vector convention). */
function receiverReader(model: HookedTransformer, layer: number, head: number, side: ReceiverSide): FactoredMatrix {
  const qk = qkCircuit(model, layer, head);
  return side === 'query' ? qk : qk.transpose();
}

function checkSide(side: string): asserts side is ReceiverSide {
  if (side !== 'query' && side !== 'key') throw new HeadlensError(`side '${side}' is not query or key`);
}

/** ‖x·F‖ for a row vector x and a factored matrix F = A·B. */
function rowTimes(x: Float64Array, F: FactoredMatrix): number {
  const a = matmul(mat(1, x.length, x), F.A);
  return norm2(matmul(a, F.B).data);
}

/**
 * Composition scores between one sender head's OV and one later receiver head's query or key input,
 * per rank-1 SVD component of the sender's OV (`decompose: 'sender'`, default: the paper's Figure 2
 * splits the inhibition heads, which send) or of the receiver's reading matrix (`decompose: 'receiver'`).
 */
export function componentComposition(
  model: HookedTransformer,
  sender: { layer: number; head: number },
  receiver: { layer: number; head: number },
  side: ReceiverSide,
  opts: { decompose?: DecomposedSide } = {},
): ComponentComposition {
  checkHead(model, sender.layer, sender.head);
  checkHead(model, receiver.layer, receiver.head);
  checkSide(side);
  if (sender.layer >= receiver.layer) {
    throw new HeadlensError(`sender layer ${sender.layer} is not before receiver layer ${receiver.layer}`, 'a head can only read what earlier layers wrote');
  }
  const decomposed = opts.decompose ?? 'sender';
  if (decomposed !== 'sender' && decomposed !== 'receiver') throw new HeadlensError(`decompose '${decomposed as string}' is not sender or receiver`);
  const ov = ovCircuit(model, sender.layer, sender.head);
  const R = receiverReader(model, receiver.layer, receiver.head, side);
  const split = decomposed === 'sender' ? ov : R;
  const other = decomposed === 'sender' ? R : ov;
  const otherNorm = other.frobeniusNorm();
  const { S, U, V } = split.svd();
  const scores: number[] = [];
  for (let i = 0; i < S.length; i++) {
    if (otherNorm === 0 || S[i] === 0) {
      scores.push(0);
      continue;
    }
    if (decomposed === 'sender') {
      // ‖v_iᵀ·R‖ / ‖R‖_F, v_i the direction component i writes
      const v = Float64Array.from({ length: V.rows }, (_, k) => V.data[k * V.cols + i]);
      scores.push(rowTimes(v, other) / otherNorm);
    } else {
      // ‖OV·u_i‖ / ‖OV‖_F = ‖u_iᵀ·OVᵀ‖ / ‖OV‖_F, u_i the direction component i reads
      const u = Float64Array.from({ length: U.rows }, (_, k) => U.data[k * U.cols + i]);
      scores.push(rowTimes(u, other.transpose()) / otherNorm);
    }
  }
  let best = { component: 0, score: -1 };
  scores.forEach((score, component) => {
    if (score > best.score) best = { component, score };
  });
  return {
    sender: headLabel(sender.layer, sender.head),
    receiver: headLabel(receiver.layer, receiver.head),
    side,
    decomposed,
    singularValues: Array.from(S),
    scores,
    best,
    full: compositionScore(ov, R),
    baseline: 1 / Math.sqrt(model.cfg.d_model),
  };
}

/** componentComposition of one receiver with every head of every earlier layer, best component first. */
export function receiverComponentScan(
  model: HookedTransformer,
  receiver: { layer: number; head: number },
  side: ReceiverSide,
  opts: { decompose?: DecomposedSide } = {},
): ComponentComposition[] {
  checkHead(model, receiver.layer, receiver.head);
  const out: ComponentComposition[] = [];
  for (let l = 0; l < receiver.layer; l++) for (let h = 0; h < model.cfg.n_heads; h++) out.push(componentComposition(model, { layer: l, head: h }, receiver, side, opts));
  return out.sort((a, b) => b.best.score - a.best.score);
}

export interface InhibitionOptions {
  /** Per prompt: the receiver's query position (IOI: END). */
  query: number[];
  /** Per prompt: the key the receiver should down-weight (IOI: S2 or S1). */
  inhibited: number[];
  /** Per prompt: the key it should attend to instead (IOI: IO). */
  other: number[];
  /** Sender components to test (default: all d_head). */
  components?: number[];
}

export interface ComponentInhibition {
  sender: string;
  receiver: string;
  /** Mean over prompts of the receiver's pattern[query, other] − pattern[query, inhibited], model intact. */
  clean: number;
  /** perComponent[i]: clean − the same with component i projected out of the sender's output. */
  perComponent: { component: number; singularValue: number; score: number }[];
  /** clean − the same with the sender's whole output removed. */
  whole: number;
  prompts: number;
}

/**
 * The data-based side of the paper's Figure 2: how much of a receiver's preference for `other` over
 * `inhibited` at `query` each rank-1 component of the sender's OV carries. Component i of OV writes
 * along its right singular vector v_i only, so removing it from OV is projecting the sender's output
 * (hook_result) off v_i: r ↦ r − (r·v_i)·v_iᵀ. The score is the drop of the receiver's pattern
 * difference (positive: the component helps the receiver inhibit). Deviation: the paper's exact
 * normalisation of its inhibition score is not reproduced; this is the raw drop in attention
 * probability, averaged over prompts.
 */
export function componentInhibition(
  model: HookedTransformer,
  tokens: number[][],
  sender: { layer: number; head: number },
  receiver: { layer: number; head: number },
  opts: InhibitionOptions,
): ComponentInhibition {
  return readSync(componentInhibitionReads(model, tokens, sender, receiver, opts));
}

/** componentInhibition, with the weights and each run's pattern read asynchronously (WebGPU in Node). */
export async function componentInhibitionAsync(
  model: HookedTransformer,
  tokens: number[][],
  sender: { layer: number; head: number },
  receiver: { layer: number; head: number },
  opts: InhibitionOptions,
): Promise<ComponentInhibition> {
  await readWeightsAsync(model);
  return readAsync(componentInhibitionReads(model, tokens, sender, receiver, opts));
}

function* componentInhibitionReads(
  model: HookedTransformer,
  tokens: number[][],
  sender: { layer: number; head: number },
  receiver: { layer: number; head: number },
  opts: InhibitionOptions,
): Reads<ComponentInhibition> {
  checkHead(model, sender.layer, sender.head);
  checkHead(model, receiver.layer, receiver.head);
  if (sender.layer >= receiver.layer) {
    throw new HeadlensError(`sender layer ${sender.layer} is not before receiver layer ${receiver.layer}`, 'a head can only read what earlier layers wrote');
  }
  const n = tokens.length;
  if (n === 0) throw new HeadlensError('componentInhibition needs at least one prompt');
  for (const key of ['query', 'inhibited', 'other'] as const) {
    const p = opts[key];
    if (!Array.isArray(p) || p.length !== n) throw new HeadlensError(`${key} has ${p?.length ?? 0} positions for ${n} prompts`, 'give one position per prompt');
    p.forEach((x, b) => {
      if (!(Number.isInteger(x) && x >= 0 && x < tokens[b].length)) throw new HeadlensError(`${key}[${b}] = ${x} is not a position of prompt ${b} (length ${tokens[b].length})`);
    });
    if (key !== 'query') p.forEach((x, b) => {
      if (x > opts.query[b]) throw new HeadlensError(`${key}[${b}] = ${x} is after the query position ${opts.query[b]}`, 'a causal head cannot attend forward');
    });
  }
  const { S, V } = ovCircuit(model, sender.layer, sender.head).svd();
  const components = opts.components ?? Array.from({ length: S.length }, (_, i) => i);
  components.forEach((c) => {
    if (!(Number.isInteger(c) && c >= 0 && c < S.length)) throw new HeadlensError(`component ${c} is not in 0..${S.length - 1}`);
  });
  const d = model.cfg.d_model;
  const patternName = actName('pattern', receiver.layer);
  const resultName = actName('result', sender.layer);
  /** Mean pattern difference with the sender's output multiplied by `keep` [d_model, d_model] (null: intact). */
  const measure = function* (keep: tf.Tensor2D | null): Reads<number> {
    const hooks: FwdHook[] = keep
      ? [[resultName, (r: tf.Tensor) => tf.tidy(() => {
          const parts = tf.unstack(r, 2); // head × [batch, pos, d_model]
          const [b, p] = parts[0].shape;
          parts[sender.head] = tf.matMul(parts[sender.head].reshape([b * p, d]), keep).reshape([b, p, d]);
          return tf.stack(parts, 2); // [batch, pos, head, d_model]
        })]]
      : [];
    const { logits, cache } = model.runWithCache(tokens, { names: [patternName], fwdHooks: hooks });
    logits.dispose();
    let patT: tf.Tensor;
    try {
      patT = cache.get(patternName).clone(); // [batch, head, query_pos, key_pos]
    } finally {
      cache.dispose();
    }
    const pat = yield* readNested<number[][][][]>(patT);
    let s = 0;
    for (let b = 0; b < n; b++) {
      const row = pat[b][receiver.head][opts.query[b]];
      s += row[opts.other[b]] - row[opts.inhibited[b]];
    }
    return s / n;
  };
  const clean = yield* measure(null);
  const perComponent: ComponentInhibition['perComponent'] = [];
  for (const c of components) {
    const v = Float64Array.from({ length: d }, (_, k) => V.data[k * V.cols + c]);
    const keep = tf.tidy(() => tf.eye(d).sub(tf.outerProduct(tf.tensor1d(Float32Array.from(v)), tf.tensor1d(Float32Array.from(v)))) as tf.Tensor2D);
    try {
      perComponent.push({ component: c, singularValue: S[c], score: clean - (yield* measure(keep)) });
    } finally {
      keep.dispose();
    }
  }
  const zero = tf.zeros([d, d]) as tf.Tensor2D;
  let whole: number;
  try {
    whole = clean - (yield* measure(zero));
  } finally {
    zero.dispose();
  }
  return { sender: headLabel(sender.layer, sender.head), receiver: headLabel(receiver.layer, receiver.head), clean, perComponent, whole, prompts: n };
}

/** layerChannel, with the weights read asynchronously first (readWeightsAsync): the form that runs on WebGPU in Node. */
export async function layerChannelAsync(model: HookedTransformer, senderLayer: number, receiverLayer: number, side: ReceiverSide, opts: TalkingHeadsOptions = {}): Promise<LayerChannel> {
  await readWeightsAsync(model);
  return layerChannel(model, senderLayer, receiverLayer, side, opts);
}

/** receiverComponentScan, with the weights read asynchronously first (readWeightsAsync): the form that runs on WebGPU in Node. */
export async function receiverComponentScanAsync(model: HookedTransformer, receiver: { layer: number; head: number }, side: ReceiverSide, opts: { decompose?: DecomposedSide } = {}): Promise<ComponentComposition[]> {
  await readWeightsAsync(model);
  return receiverComponentScan(model, receiver, side, opts);
}
