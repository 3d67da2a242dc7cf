/**
 * The data that the induction, previous-token, duplicate-token, sink and streaming tasks share: random
 * token sequences repeated once, and the causal metric they share, top-1 accuracy on the repeated half
 * (which only in-context copying can predict).
 */
import * as tf from '@tensorflow/tfjs';
import { inductionSequences } from '../../../datasets/induction.js';
import { usableCtx } from '../../../model/config.js';
import type { FwdHook, HookedTransformer } from '../../../hooks/hooked_transformer.js';
import { readAsync, readSync, type Reads } from '../../../util/reads.js';
import type { TaskInputs } from './task.js';

/** The task's repeated sequences (`half` tokens, then the same again, after the prefix). */
export function repeatedSequences(model: HookedTransformer, { samples, seed, bos, prefix }: TaskInputs): { seqs: number[][]; half: number } {
  const { cfg } = model;
  // within the context the model was trained on (toy-induction-2l: 33 tokens of its 64), where its positions mean something
  const half = Math.min(50, Math.floor((usableCtx(cfg) - prefix.length) / 2));
  const seqs = inductionSequences({ n: samples, halfLength: half, low: Math.min(1, cfg.d_vocab - 2), high: cfg.d_vocab, bos, seed }).sequences;
  return { seqs, half };
}

/** Top-1 accuracy on the predictable half of repeated sequences (in-context copying). */
export function repeatAccuracy(model: HookedTransformer, seqs: number[][], half: number, fwdHooks: FwdHook[]): number {
  return readSync(repeatAccuracyReads(model, seqs, half, fwdHooks));
}

/** repeatAccuracy, read asynchronously (WebGPU in Node). */
export function repeatAccuracyAsync(model: HookedTransformer, seqs: number[][], half: number, fwdHooks: FwdHook[]): Promise<number> {
  return readAsync(repeatAccuracyReads(model, seqs, half, fwdHooks));
}

export function* repeatAccuracyReads(model: HookedTransformer, seqs: number[][], half: number, fwdHooks: FwdHook[]): Reads<number> {
  let hit = 0;
  let n = 0;
  for (const s of seqs) {
    const logits = model.runWithHooks([s], { fwdHooks });
    let argmax: tf.Tensor;
    try {
      argmax = tf.tidy(() => logits.squeeze([0]).argMax(1));
    } finally {
      logits.dispose();
    }
    const pred = yield argmax;
    for (let p = s.length - half; p < s.length - 1; p++) (hit += pred[p] === s[p + 1] ? 1 : 0), n++;
  }
  return hit / n;
}
