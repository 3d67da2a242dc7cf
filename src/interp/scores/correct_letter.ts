/**
 * Correct-letter heads (Lieberum et al. 2023, "Does Circuit Analysis Interpretability Scale? Evidence from
 * Multiple Choice Capabilities in Chinchilla"). In Chinchilla-70B a small set of heads at the final position
 * attends to the label token (A/B/C/D) of the correct option and writes that letter into the logits; the paper
 * finds these heads by direct logit attribution and attention, and shows they work on a "correct label"
 * feature (they keep working when the labels are randomised, less so on a different label format).
 *
 * Two tables per prompt, at the final position:
 * - `dla`: each head's direct logit attribution to the correct label's token: its hook_result through the final
 *   norm as the clean run applied it (centred for LayerNorm, divided by ln_final.hook_scale, times the norm's
 *   weight; the shared bias is left out) and W_U[:, label], computed by dla.ts (`headDlaFromCache`).
 * - `dla_diff`: the same to the correct label minus the mean over the other labels (what moves the choice).
 * - `attention`: the head's attention from the final position to the correct option's label token.
 * `scores` is `dla`. The causal check: mask the top heads (ablation.ts, 'uniform' or 'mean') and measure
 * letter accuracy against as many random heads.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { LetterPrompt } from '../../datasets/mcq.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { headDlaFromCache, headDlaNames } from '../attribution/dla.js';
import { runScorer, type HeadScorer, type HeadScores } from './head_scores.js';

export interface CorrectLetterOptions {
  top?: number;
}

function checkPrompts(prompts: LetterPrompt[]): void {
  if (!Array.isArray(prompts) || prompts.length === 0) throw new HeadlensError('correct-letter: no prompts given', 'pass at least one LetterPrompt');
  prompts.forEach((p, i) => {
    const n = p.labelTokens.length;
    if (n < 2 || p.labelPositions.length !== n || !(Number.isInteger(p.correct) && p.correct >= 0 && p.correct < n)) {
      throw new HeadlensError(`correct-letter: prompt ${i} needs ≥ 2 labels, a position for each, and a correct index in range`);
    }
    if (p.labelPositions.some((q) => !(Number.isInteger(q) && q >= 0 && q < p.tokens.length))) {
      throw new HeadlensError(`correct-letter: prompt ${i} has a label position outside its ${p.tokens.length} tokens`);
    }
  });
}

/**
 * Per-head contributions to the logits of `labels` at position `pos`, through the final norm ([layer][head][label],
 * from dla.ts's headDlaFromCache), with each head's attention from `pos` ([layer][head][key_pos]), from one run;
 * `fwdHooks` apply to it (e.g. other heads ablated).
 */
export function headLogitContributions(model: HookedTransformer, tokens: number[], pos: number, labels: number[], fwdHooks: FwdHook[] = []): { dla: number[][][]; attention: number[][][] } {
  const { cfg } = model;
  const names = [...headDlaNames(model), ...Array.from({ length: cfg.n_layers }, (_, l) => actName('pattern', l))];
  const { logits, cache } = model.runWithCache([tokens], { names, fwdHooks });
  try {
    const dla = headDlaFromCache(cache, pos, labels); // [layer][head][label]
    const attention = tf.tidy(() => {
      const rows = Array.from({ length: cfg.n_layers }, (_, l) => cache.get(actName('pattern', l)).slice([0, 0, pos, 0], [1, -1, 1, -1]).reshape([cfg.n_heads, tokens.length]));
      return tf.stack(rows).arraySync() as number[][][]; // [layer][head][key_pos]
    });
    return { dla, attention };
  } finally {
    cache.dispose();
    logits.dispose();
  }
}

export function correctLetterScorer(prompts: LetterPrompt[], _opts: CorrectLetterOptions = {}): HeadScorer<LetterPrompt> {
  checkPrompts(prompts);
  return {
    task: 'correct-letter',
    settings: { prompts: prompts.length, position: 'final' },
    primary: 'dla',
    items: prompts,
    scoreItem: (model, p) => {
      const last = p.tokens.length - 1;
      const { dla, attention } = headLogitContributions(model, p.tokens, last, p.labelTokens);
      const n = p.labelTokens.length;
      return {
        tables: {
          dla: dla.map((row) => row.map((v) => v[p.correct])),
          dla_diff: dla.map((row) => row.map((v) => v[p.correct] - (v.reduce((a, b) => a + b, 0) - v[p.correct]) / (n - 1))),
          attention: attention.map((row) => row.map((a) => a[p.labelPositions[p.correct]])),
        },
        weight: 1,
      };
    },
  };
}

/** Correct-letter scores of every head: DLA to the correct label (scores), with dla_diff and attention tables. */
export function correctLetterScores(model: HookedTransformer, prompts: LetterPrompt[], opts: CorrectLetterOptions = {}): HeadScores {
  return runScorer(model, correctLetterScorer(prompts, opts), { top: opts.top });
}
