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
 * subspaces (`baseline`). A layer pair's channel score is the best aligned head pair.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { checkHead, ovCircuit, qkCircuit } from './head_circuits.js';
import { headLabel } from '../head_label.js';
import { columns, matmul, transpose, type Mat } from '../../linalg/mat.js';

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
