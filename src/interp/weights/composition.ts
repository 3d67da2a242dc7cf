/**
 * Composition scores (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits").
 *
 * A head in a later layer can read what an earlier head wrote in three ways: through its queries
 * (Q-composition), its keys (K-composition, the mechanism of induction heads) or its values
 * (V-composition). With the earlier head's OV circuit W_A = OV and the later head's reading matrix W_B
 * (QK for Q, QKᵀ for K, OV for V, in the row-vector convention of head_circuits.ts), the paper scores
 *
 *     ‖W_A·W_B‖_F / (‖W_A‖_F · ‖W_B‖_F)
 *
 * which is 1 when W_B reads exactly the rank-1 direction W_A writes, and small when they use unrelated
 * subspaces. Because even unrelated matrices score above 0, the paper compares against random matrices
 * of the same shapes; `baseline` is the mean (and spread) of the score for Gaussian W_Q, W_K, W_V, W_O
 * of this model's shapes (seeded). In the paper's 2-layer attention-only model, the induction heads'
 * K-composition with the previous-token head stands out well above that baseline.
 *
 * Norms between layers are left out, as in the paper (fold them first to include their weights).
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { FactoredMatrix } from '../../linalg/factored_matrix.js';
import { ovCircuit, qkCircuit, readWeightsAsync } from './head_circuits.js';
import { headLabel } from '../head_label.js';
import { matmul, randomNormal, transpose, type Mat } from '../../linalg/mat.js';

export type CompositionKind = 'q' | 'k' | 'v';
export const COMPOSITION_KINDS: readonly CompositionKind[] = ['q', 'k', 'v'];

export interface HeadPairScore {
  /** The earlier head, whose OV output is read. */
  from: { layer: number; head: number; label: string };
  /** The later head that reads it. */
  to: { layer: number; head: number; label: string };
  score: number;
}

export interface CompositionScores {
  kind: CompositionKind;
  /** Every pair of heads in different layers (from.layer < to.layer), highest score first. */
  pairs: HeadPairScore[];
  /** The score of random Gaussian weights of the same shapes: mean and standard deviation over `samples`. */
  baseline: { mean: number; std: number; samples: number };
}

export interface CompositionOptions {
  /** Random weight sets for the baseline (default 20). */
  baselineSamples?: number;
  /** Seed of the baseline's random weights (default 0). */
  seed?: number;
}

/** ‖left·right‖_F / (‖left‖_F ‖right‖_F), computed without forming either product densely. */
export function compositionScore(left: FactoredMatrix, right: FactoredMatrix): number {
  const denom = left.frobeniusNorm() * right.frobeniusNorm();
  if (denom === 0) return 0;
  return left.matmul(right).frobeniusNorm() / denom;
}

/** A factored matrix L·R with its Gram matrices LᵀL and R·Rᵀ ([inner, inner]) and norm, computed once per head. */
interface Prepared {
  fm: FactoredMatrix;
  gl: Mat;
  gr: Mat;
  norm: number;
}

function prepare(fm: FactoredMatrix): Prepared {
  const gl = matmul(transpose(fm.A), fm.A);
  const gr = matmul(fm.B, transpose(fm.B));
  let s = 0;
  for (let i = 0; i < gl.data.length; i++) s += gl.data[i] * gr.data[i];
  return { fm, gl, gr, norm: Math.sqrt(Math.max(0, s)) };
}

/**
 * compositionScore from prepared factors: ‖L1·M·R2‖²_F = tr(Mᵀ·(L1ᵀL1)·M·(R2R2ᵀ)) with M = R1·L2
 * [inner, inner], so a head pair costs d_model·d_head² instead of forming anything d_model-sized.
 */
function preparedScore(left: Prepared, right: Prepared): number {
  if (left.norm === 0 || right.norm === 0) return 0;
  const M = matmul(left.fm.B, right.fm.A);
  const X = matmul(left.gl, M);
  const Y = matmul(M, right.gr);
  let s = 0;
  for (let i = 0; i < X.data.length; i++) s += X.data[i] * Y.data[i];
  return Math.sqrt(Math.max(0, s)) / (left.norm * right.norm);
}

/** The matrix through which a later head reads the residual stream, for one kind of composition. */
function reader(kind: CompositionKind, qk: FactoredMatrix, ov: FactoredMatrix): FactoredMatrix {
  if (kind === 'q') return qk;
  if (kind === 'k') return qk.transpose();
  return ov;
}

function checkKind(kind: string): asserts kind is CompositionKind {
  if (!COMPOSITION_KINDS.includes(kind as CompositionKind)) {
    throw new HeadlensError(`'${kind}' is not a kind of composition`, 'use q, k or v');
  }
}

/** Composition scores of one kind between every pair of heads in different layers, with the random baseline. */
export function compositionScores(model: HookedTransformer, kind: CompositionKind, opts: CompositionOptions = {}): CompositionScores {
  checkKind(kind);
  const { n_layers, n_heads } = model.cfg;
  const ov: Prepared[][] = [];
  const readers: Prepared[][] = [];
  for (let l = 0; l < n_layers; l++) {
    ov.push([]);
    readers.push([]);
    for (let h = 0; h < n_heads; h++) {
      const o = ovCircuit(model, l, h);
      ov[l].push(prepare(o));
      readers[l].push(kind === 'v' ? ov[l][h] : prepare(reader(kind, qkCircuit(model, l, h), o)));
    }
  }
  const pairs: HeadPairScore[] = [];
  for (let la = 0; la < n_layers; la++) {
    for (let ha = 0; ha < n_heads; ha++) {
      for (let lb = la + 1; lb < n_layers; lb++) {
        for (let hb = 0; hb < n_heads; hb++) {
          pairs.push({
            from: { layer: la, head: ha, label: headLabel(la, ha) },
            to: { layer: lb, head: hb, label: headLabel(lb, hb) },
            score: preparedScore(ov[la][ha], readers[lb][hb]),
          });
        }
      }
    }
  }
  pairs.sort((a, b) => b.score - a.score);
  return { kind, pairs, baseline: randomBaseline(model, kind, opts) };
}

/** The composition score of random Gaussian head weights with this model's d_model and d_head. */
export function randomBaseline(model: HookedTransformer, kind: CompositionKind, opts: CompositionOptions = {}): CompositionScores['baseline'] {
  checkKind(kind);
  const samples = opts.baselineSamples ?? 20;
  if (!(Number.isInteger(samples) && samples >= 1)) throw new HeadlensError(`baselineSamples ${samples} is not a positive integer`);
  const { d_model: d, d_head: e } = model.cfg;
  let seed = (opts.seed ?? 0) * 1000;
  const scores: number[] = [];
  for (let i = 0; i < samples; i++) {
    const ovA = new FactoredMatrix(randomNormal(d, e, seed++), randomNormal(e, d, seed++));
    const qkB = new FactoredMatrix(randomNormal(d, e, seed++), randomNormal(e, d, seed++));
    const ovB = new FactoredMatrix(randomNormal(d, e, seed++), randomNormal(e, d, seed++));
    scores.push(compositionScore(ovA, reader(kind, qkB, ovB)));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / samples;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / samples);
  return { mean, std, samples };
}

export const qComposition = (model: HookedTransformer, opts?: CompositionOptions) => compositionScores(model, 'q', opts);
export const kComposition = (model: HookedTransformer, opts?: CompositionOptions) => compositionScores(model, 'k', opts);
export const vComposition = (model: HookedTransformer, opts?: CompositionOptions) => compositionScores(model, 'v', opts);

/** compositionScores, with the weights read asynchronously first (readWeightsAsync): the form that runs on WebGPU in Node. */
export async function compositionScoresAsync(model: HookedTransformer, kind: CompositionKind, opts: CompositionOptions = {}): Promise<CompositionScores> {
  await readWeightsAsync(model);
  return compositionScores(model, kind, opts);
}
