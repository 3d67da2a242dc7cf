/**
 * Induction heads (Olsson et al. 2022, "In-context Learning and Induction Heads"): on "… A B … A", attend
 * from the second A to the B that followed the first A, and copy it. They form in a phase change early in
 * training that coincides with the bump in in-context learning; on repeated random tokens a 2-layer
 * attention-only model's induction heads put most of their attention on that B. Detection pattern as
 * TransformerLens defines it: the duplicate-token pattern shifted one key to the right, 1 at [q][k + 1] for
 * k < q with tokens[k] = tokens[q]. Score as in head_detector.ts; run it on `inductionSequences`
 * (src/datasets/induction.ts): random tokens repeated.
 */
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { duplicateTokenPattern } from './duplicate_token.js';
import { detectorScorer, emptyPattern, type DetectorOptions } from './head_detector.js';
import { runScorer, runScorerAsync, type HeadScores, type HeadScorer } from './head_scores.js';

/** 1 at [q][k + 1] where k < q and tokens[k] = tokens[q]. [query_pos][key_pos] */
export function inductionPattern(tokens: number[]): number[][] {
  const dup = duplicateTokenPattern(tokens);
  const D = emptyPattern(tokens.length);
  for (let q = 0; q < tokens.length; q++) for (let k = 0; k + 1 <= q; k++) if (dup[q][k]) D[q][k + 1] = 1;
  return D;
}

export function inductionScorer(sequences: number[][], opts: DetectorOptions = {}): HeadScorer<number[]> {
  return detectorScorer('induction', inductionPattern, sequences, opts);
}

/** Induction score of every head, [n_layers][n_heads]. */
export function inductionScores(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): HeadScores {
  return runScorer(model, inductionScorer(sequences, opts), { top: opts.top });
}

/** inductionScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function inductionScoresAsync(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, inductionScorer(sequences, opts), { top: opts.top });
}
