/**
 * OV copying scores from the eigenvalues of a head's full OV circuit W_E·OV·W_U (Elhage et al. 2021,
 * "A Mathematical Framework for Transformer Circuits").
 *
 * A copying head raises the logit of the token it attends to: its full OV circuit maps tokens to
 * themselves, so the matrix has large positive eigenvalues (an eigenvector v with λ > 0 is a set of
 * tokens that, attended to, raise their own logits). A suppression head (such as GPT-2's negative name
 * movers) has negative ones. The paper summarises the spectrum as
 *
 *     score = Σ λ_i / Σ |λ_i|   ∈ [−1, 1]
 *
 * (complex eigenvalues come in conjugate pairs, so the sum is real), and reports that 10 of the 12
 * heads of its one-layer attention-only model have clearly positive sums: they copy. headlens uses
 * that definition for `score`; `positiveFraction`, the share of
 * eigenvalues with a positive real part, is given beside it, because it ignores magnitudes and so is a
 * different (cruder) question.
 *
 * The eigenvalues are those of the [d_head, d_head] matrix (W_O·W_U)·(W_E·W_V), which has the same
 * nonzero eigenvalues as the [d_vocab, d_vocab] circuit (factored_matrix.ts).
 */
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { embeddings, fullOVCircuit, readWeightsAsync } from './head_circuits.js';
import { headLabel } from '../head_label.js';
import type { Complex } from '../../linalg/eig.js';

export interface CopyingScore {
  layer: number;
  head: number;
  label: string;
  /** Σλ / Σ|λ| of the full OV circuit's eigenvalues: +1 pure copying, −1 pure suppression. */
  score: number;
  /** Share of the (d_head) eigenvalues with a positive real part. */
  positiveFraction: number;
  /** The d_head eigenvalues that can be nonzero, by descending real part. */
  eigenvalues: Complex[];
}

/** Σλ / Σ|λ| of a list of eigenvalues (0 when all vanish). */
export function eigenvalueScore(ev: Complex[]): number {
  let sum = 0;
  let abs = 0;
  for (const e of ev) {
    sum += e.re;
    abs += Math.hypot(e.re, e.im);
  }
  return abs === 0 ? 0 : sum / abs;
}

/** The copying score of one head's full OV circuit. */
export function copyingScore(model: HookedTransformer, layer: number, head: number, emb = embeddings(model)): CopyingScore {
  const ev = fullOVCircuit(model, layer, head, emb).eigenvalues();
  return {
    layer,
    head,
    label: headLabel(layer, head),
    score: eigenvalueScore(ev),
    positiveFraction: ev.length ? ev.filter((e) => e.re > 0).length / ev.length : 0,
    eigenvalues: ev,
  };
}

/** Copying scores of every head, layer by layer. */
export function copyingScores(model: HookedTransformer): CopyingScore[] {
  const emb = embeddings(model);
  const out: CopyingScore[] = [];
  for (let l = 0; l < model.cfg.n_layers; l++) for (let h = 0; h < model.cfg.n_heads; h++) out.push(copyingScore(model, l, h, emb));
  return out;
}

/** copyingScores, with the weights read asynchronously first (readWeightsAsync): the form that runs on WebGPU in Node. */
export async function copyingScoresAsync(model: HookedTransformer): Promise<CopyingScore[]> {
  await readWeightsAsync(model);
  return copyingScores(model);
}
