/**
 * How well a model does each scan task, as one number: the metrics the causal checks (mask_heads.ts) compare
 * with heads masked and without. Each takes forward hooks, so the same call measures the intact model and an
 * ablated one. Prompts are run one at a time (they differ in length); only the last position is read.
 * - IOI: mean logit(IO) − logit(S) at the end (Wang et al. 2022 report 3.56 for GPT-2 small).
 * - Multiple choice: accuracy as argmax over the option labels, and how often the argmax over the whole
 *   vocabulary is a label at all (format kept; Lieberum et al. 2023 separate the two the same way).
 * - Facts (temporal and controls): top-1 accuracy of the answer's first token.
 * Each is one computation (util/reads.ts) with a synchronous form and an `…Async` form (WebGPU in Node).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { IoiTokens } from '../../datasets/ioi.js';
import type { LetterPrompt } from '../../datasets/mcq.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';

/** Log-probabilities at the last position of `tokens`, with `fwdHooks` applied. */
export function lastLogProbs(model: HookedTransformer, tokens: number[], fwdHooks: FwdHook[] = []): Float32Array {
  return readSync(lastLogProbsReads(model, tokens, fwdHooks));
}

/** lastLogProbs, read asynchronously (WebGPU in Node). */
export function lastLogProbsAsync(model: HookedTransformer, tokens: number[], fwdHooks: FwdHook[] = []): Promise<Float32Array> {
  return readAsync(lastLogProbsReads(model, tokens, fwdHooks));
}

export function* lastLogProbsReads(model: HookedTransformer, tokens: number[], fwdHooks: FwdHook[] = []): Reads<Float32Array> {
  const logits = model.runWithHooks([tokens], { fwdHooks });
  let lp: tf.Tensor;
  try {
    lp = tf.tidy(() => tf.logSoftmax(logits.slice([0, tokens.length - 1, 0], [1, 1, -1]).reshape([-1])));
  } finally {
    logits.dispose();
  }
  return (yield lp) as Float32Array;
}

/** Index of the largest value (the first, on ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

function nonEmpty<T>(task: string, xs: T[]): void {
  if (!Array.isArray(xs) || xs.length === 0) throw new HeadlensError(`${task}: no prompts given`, 'pass at least one prompt');
}

/** Mean logit difference IO − S at the last position of the clean prompts. */
export function ioiLogitDiff(model: HookedTransformer, prompts: IoiTokens[], fwdHooks: FwdHook[] = []): number {
  return readSync(ioiLogitDiffReads(model, prompts, fwdHooks));
}

export function ioiLogitDiffAsync(model: HookedTransformer, prompts: IoiTokens[], fwdHooks: FwdHook[] = []): Promise<number> {
  return readAsync(ioiLogitDiffReads(model, prompts, fwdHooks));
}

function* ioiLogitDiffReads(model: HookedTransformer, prompts: IoiTokens[], fwdHooks: FwdHook[]): Reads<number> {
  nonEmpty('ioiLogitDiff', prompts);
  let sum = 0;
  for (const p of prompts) {
    const lp = yield* lastLogProbsReads(model, p.clean, fwdHooks);
    sum += lp[p.io] - lp[p.s]; // a difference of log-probs is the difference of logits
  }
  return sum / prompts.length;
}

/** Multiple-choice accuracy (argmax over the labels) and the share of prompts whose top token is a label. */
export function letterAccuracy(model: HookedTransformer, prompts: LetterPrompt[], fwdHooks: FwdHook[] = []): { accuracy: number; letterRate: number } {
  return readSync(letterAccuracyReads(model, prompts, fwdHooks));
}

export function letterAccuracyAsync(model: HookedTransformer, prompts: LetterPrompt[], fwdHooks: FwdHook[] = []): Promise<{ accuracy: number; letterRate: number }> {
  return readAsync(letterAccuracyReads(model, prompts, fwdHooks));
}

function* letterAccuracyReads(model: HookedTransformer, prompts: LetterPrompt[], fwdHooks: FwdHook[]): Reads<{ accuracy: number; letterRate: number }> {
  nonEmpty('letterAccuracy', prompts);
  let hit = 0;
  let letter = 0;
  for (const p of prompts) {
    const lp = yield* lastLogProbsReads(model, p.tokens, fwdHooks);
    hit += argmax(p.labelTokens.map((t) => lp[t])) === p.correct ? 1 : 0;
    letter += p.labelTokens.includes(argmax(lp)) ? 1 : 0;
  }
  return { accuracy: hit / prompts.length, letterRate: letter / prompts.length };
}

/** Top-1 accuracy of `answer` (a token id) after each prompt. */
export function factAccuracy(model: HookedTransformer, prompts: { clean: number[]; answer: number }[], fwdHooks: FwdHook[] = []): number {
  return readSync(factAccuracyReads(model, prompts, fwdHooks));
}

export function factAccuracyAsync(model: HookedTransformer, prompts: { clean: number[]; answer: number }[], fwdHooks: FwdHook[] = []): Promise<number> {
  return readAsync(factAccuracyReads(model, prompts, fwdHooks));
}

function* factAccuracyReads(model: HookedTransformer, prompts: { clean: number[]; answer: number }[], fwdHooks: FwdHook[]): Reads<number> {
  nonEmpty('factAccuracy', prompts);
  let hit = 0;
  for (const p of prompts) hit += argmax(yield* lastLogProbsReads(model, p.clean, fwdHooks)) === p.answer ? 1 : 0;
  return hit / prompts.length;
}
