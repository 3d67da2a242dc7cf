/**
 * Duplicate-token heads: at a token that occurred before, attend to its earlier occurrences. In the IOI circuit
 * (Wang et al. 2022) they mark the repeated subject name S2 as a duplicate for the S-inhibition heads.
 * Detection pattern as TransformerLens defines it: 1 at [q][k] for k < q with tokens[k] = tokens[q]
 * (the current token, always a duplicate of itself, is left out). See head_detector.ts for the score.
 */
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { detectorScorer, emptyPattern, type DetectorOptions } from './head_detector.js';
import { runScorer, runScorerAsync, type HeadScores, type HeadScorer } from './head_scores.js';

/** 1 at [q][k] where k < q and the tokens match. [query_pos][key_pos] */
export function duplicateTokenPattern(tokens: number[]): number[][] {
  const D = emptyPattern(tokens.length);
  for (let q = 0; q < tokens.length; q++) for (let k = 0; k < q; k++) if (tokens[k] === tokens[q]) D[q][k] = 1;
  return D;
}

export function duplicateTokenScorer(sequences: number[][], opts: DetectorOptions = {}): HeadScorer<number[]> {
  return detectorScorer('duplicate', duplicateTokenPattern, sequences, opts);
}

/** Duplicate-token score of every head, [n_layers][n_heads]. */
export function duplicateTokenScores(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): HeadScores {
  return runScorer(model, duplicateTokenScorer(sequences, opts), { top: opts.top });
}

/** duplicateTokenScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function duplicateTokenScoresAsync(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, duplicateTokenScorer(sequences, opts), { top: opts.top });
}
