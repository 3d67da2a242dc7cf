/**
 * Previous-token heads: query q attends to key q − 1. They are half of the induction circuit (Elhage et al.
 * 2021; Olsson et al. 2022): a previous-token head writes "the token before me was A" at each position, which an
 * induction head's keys read through K-composition. Detection pattern as TransformerLens defines it: ones on the
 * first sub-diagonal. See head_detector.ts for the score.
 */
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { detectorScorer, emptyPattern, type DetectorOptions } from './head_detector.js';
import { runScorer, runScorerAsync, type HeadScores, type HeadScorer } from './head_scores.js';

/** 1 at [q][q − 1]. [query_pos][key_pos] */
export function previousTokenPattern(tokens: number[]): number[][] {
  const D = emptyPattern(tokens.length);
  for (let q = 1; q < tokens.length; q++) D[q][q - 1] = 1;
  return D;
}

export function previousTokenScorer(sequences: number[][], opts: DetectorOptions = {}): HeadScorer<number[]> {
  return detectorScorer('prev-token', previousTokenPattern, sequences, opts);
}

/** Previous-token score of every head, [n_layers][n_heads]. */
export function previousTokenScores(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): HeadScores {
  return runScorer(model, previousTokenScorer(sequences, opts), { top: opts.top });
}

/** previousTokenScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function previousTokenScoresAsync(model: HookedTransformer, sequences: number[][], opts: DetectorOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, previousTokenScorer(sequences, opts), { top: opts.top });
}
