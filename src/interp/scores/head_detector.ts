/**
 * Head detection by pattern matching, as TransformerLens' `detect_head` defines it: a head's score on a
 * sequence is how much of its attention falls where a detection pattern [query_pos, key_pos] of 0/1 says it
 * should, sum(A ⊙ D) / sum(A) ("mul" measure; A is the head's pattern, after optionally zeroing the BOS
 * column and the diagonal), averaged over sequences. With no exclusions sum(A) is the number of queries,
 * so a perfect previous-token head scores (pos − 1) / pos: query 0 can only attend to itself.
 * The "abs" measure is 1 − mean_q Σ_k |A − D| (rounded to 3 decimals in TransformerLens; not rounded here).
 *
 * Named detectors sit beside this file: previous_token.ts, duplicate_token.ts, induction.ts
 * (Olsson et al. 2022, "In-context Learning and Induction Heads"). The causal check that goes with a
 * detector score is ablating the head (ablation.ts) and measuring in-context loss on repeated tokens.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { readNested, type Reads } from '../../util/reads.js';
import { checkSequences, runScorer, runScorerAsync, type HeadScorer, type HeadScores } from './head_scores.js';

export interface DetectorOptions {
  /** Zero attention to position 0 before scoring (TransformerLens exclude_bos; default false). */
  excludeBos?: boolean;
  /** Zero attention of each query to itself before scoring (exclude_current_token; default false). */
  excludeCurrentToken?: boolean;
  /** 'mul' (default, TransformerLens' default) or 'abs'. */
  errorMeasure?: 'mul' | 'abs';
  /** How many heads `top` lists (default 10). */
  top?: number;
}

/** A detection pattern: 1 where a query at position q should attend to key k. [query_pos][key_pos] */
export type DetectionPattern = (tokens: number[]) => number[][];

/** The scorer behind every pattern detector, one sequence per item (for scan). */
export function detectorScorer(task: string, detection: DetectionPattern, sequences: number[][], opts: DetectorOptions = {}): HeadScorer<number[]> {
  checkSequences(task, sequences);
  const settings = {
    excludeBos: opts.excludeBos ?? false,
    excludeCurrentToken: opts.excludeCurrentToken ?? false,
    errorMeasure: opts.errorMeasure ?? 'mul',
    sequences: sequences.length,
    length: sequences[0].length,
  };
  if (settings.errorMeasure !== 'mul' && settings.errorMeasure !== 'abs') {
    throw new HeadlensError(`errorMeasure '${settings.errorMeasure}' is not known`, "use 'mul' or 'abs'");
  }
  return {
    task,
    settings,
    primary: 'score',
    items: sequences,
    scoreItem: function* (model, tokens) {
      return { tables: { score: yield* detectSequence(model, tokens, detection(tokens), settings) }, weight: 1 };
    },
  };
}

/** Scores every head against a detection pattern over the sequences (TransformerLens detect_head). */
export function detectHeads(model: HookedTransformer, sequences: number[][], detection: DetectionPattern, opts: DetectorOptions = {}): HeadScores {
  return runScorer(model, detectorScorer('detect', detection, sequences, opts), { top: opts.top });
}

/** detectHeads, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function detectHeadsAsync(model: HookedTransformer, sequences: number[][], detection: DetectionPattern, opts: DetectorOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, detectorScorer('detect', detection, sequences, opts), { top: opts.top });
}

function* detectSequence(
  model: HookedTransformer,
  tokens: number[],
  pattern: number[][],
  s: { excludeBos: boolean; excludeCurrentToken: boolean; errorMeasure: string },
): Reads<number[][]> {
  const pos = tokens.length;
  const names = Array.from({ length: model.cfg.n_layers }, (_, l) => actName('pattern', l));
  const { logits, cache } = model.runWithCache([tokens], { names });
  let scores: tf.Tensor;
  try {
    scores = tf.tidy(() => {
      const D = tf.tensor2d(pattern.flat(), [pos, pos]); // [query_pos, key_pos]
      const keep = tf.tensor2d(
        Array.from({ length: pos * pos }, (_, i) => {
          const [q, k] = [Math.floor(i / pos), i % pos];
          return (s.excludeBos && k === 0) || (s.excludeCurrentToken && q === k) ? 0 : 1;
        }),
        [pos, pos],
      );
      const rows = names.map((n) => {
        const A = (cache.get(n) as tf.Tensor4D).squeeze([0]); // [head, query_pos, key_pos]
        if (s.errorMeasure === 'mul') {
          const Ak = A.mul(keep); // [head, query_pos, key_pos]
          return Ak.mul(D).sum([1, 2]).div(Ak.sum([1, 2]));
        }
        // abs: 1 − (mean over all entries of |A − D|, excluded entries zeroed) × pos
        return tf.sub(1, A.sub(D).abs().mul(keep).mean([1, 2]).mul(pos));
      });
      return tf.stack(rows); // [layer, head]
    });
  } finally {
    cache.dispose();
    logits.dispose();
  }
  return yield* readNested<number[][]>(scores);
}

/** A zero [pos][pos] matrix. */
export function emptyPattern(pos: number): number[][] {
  return Array.from({ length: pos }, () => new Array<number>(pos).fill(0));
}
