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
 *   weight; the shared bias is left out) and W_U[:, label].
 * - `dla_diff`: the same to the correct label minus the mean over the other labels (what moves the choice).
 * - `attention`: the head's attention from the final position to the correct option's label token.
 * `scores` is `dla`. The causal check: mask the top heads (ablation.ts, 'uniform' or 'mean') and measure
 * letter accuracy against as many random heads.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { runScorer, type HeadScorer, type HeadScores } from './head_scores.js';

/** One multiple-choice prompt in tokens. */
export interface LetterPrompt {
  tokens: number[];
  /** The token id of each option's label, in option order. */
  labelTokens: number[];
  /** Where each option's label token sits in `tokens`. */
  labelPositions: number[];
  /** The index of the correct option. */
  correct: number;
}

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

/** Per-head contributions to the logits of `labels` at position `pos`, through the final norm: [layer][head][label]; `fwdHooks` apply to the run (e.g. other heads ablated). */
export function headLogitContributions(model: HookedTransformer, tokens: number[], pos: number, labels: number[], fwdHooks: FwdHook[] = []): { dla: number[][][]; attention: number[][][] } {
  const { cfg } = model;
  const names = [
    ...Array.from({ length: cfg.n_layers }, (_, l) => `blocks.${l}.attn.hook_result`),
    ...Array.from({ length: cfg.n_layers }, (_, l) => `blocks.${l}.attn.hook_pattern`),
    ...(cfg.normalization_type ? ['ln_final.hook_scale'] : []),
  ];
  const { logits, cache } = model.runWithCache([tokens], { names, fwdHooks });
  try {
    return tf.tidy(() => {
      const W = tf.gather(model.param('unembed.W_U'), tf.tensor1d(labels, 'int32'), 1); // [d_model, label]
      const perLayer = Array.from({ length: cfg.n_layers }, (_, l) => {
        let r = cache.get(`blocks.${l}.attn.hook_result`).slice([0, pos, 0, 0], [1, 1, -1, -1]).reshape([cfg.n_heads, cfg.d_model]); // [head, d_model]
        if (cfg.normalization_type === 'LN') r = r.sub(r.mean(1, true));
        if (cfg.normalization_type) {
          const scale = cache.get('ln_final.hook_scale').slice([0, pos, 0], [1, 1, 1]).reshape([1, 1]);
          r = r.div(scale).mul(model.param('ln_final.w').reshape([1, cfg.d_model]));
        }
        return r.matMul(W); // [head, label]
      });
      const dla = tf.stack(perLayer).arraySync() as number[][][];
      const attention = Array.from({ length: cfg.n_layers }, (_, l) =>
        cache.get(`blocks.${l}.attn.hook_pattern`).slice([0, 0, pos, 0], [1, -1, 1, -1]).reshape([cfg.n_heads, tokens.length]),
      );
      return { dla, attention: tf.stack(attention).arraySync() as number[][][] }; // attention: [layer][head][key_pos]
    });
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
