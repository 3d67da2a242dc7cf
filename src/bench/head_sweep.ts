/**
 * Activation patching of every attention head, two ways, for the benchmark's sweep_speedup.
 *
 * The experiment is the one Wang et al. (2022, "Interpretability in the Wild", the IOI circuit in GPT-2
 * small) ran over all 144 heads: run a corrupted prompt, put one head's output (`attn.hook_z` of that head)
 * back from the clean prompt, and see how much of the clean logit difference returns.
 *  - `patchHeadsOneByOne` is the loop a user would write with runWithHooks: one whole forward per head,
 *    n_layers·n_heads of them.
 *  - `patchHeadsSweep` is the public `activationPatching(model, 'head-out', …)` with the same metric: the
 *    patching engine (src/interp/interventions/stacked_runs.ts) stacks each layer's heads along the batch,
 *    starts their passes at that layer and unembeds only the last position.
 * Both return [layer, head] tensors of the mean logit difference that agree to float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { actName } from '../hooks/act_name.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { activationPatching, activationPatchingAsync } from '../interp/interventions/patching.js';
import { readAsync, readSync, type Reads } from '../util/reads.js';
import { logitDiff, metricMean } from '../interp/metrics.js';

export interface HeadPatchingTask {
  /** Token ids [batch, pos] of the clean prompts. */
  clean: number[][];
  /** Token ids [batch, pos] of the corrupted prompts (same shape). */
  corrupted: number[][];
  /** Per prompt, the token whose logit counts positively at the last position… */
  correct: number[];
  /** …and the one that counts negatively (IOI: the indirect object vs the subject). */
  wrong: number[];
}

function check(model: HookedTransformer, task: HeadPatchingTask): void {
  const { clean, corrupted, correct, wrong } = task;
  if (clean.length !== corrupted.length || clean[0]?.length !== corrupted[0]?.length) {
    throw new HeadlensError('clean and corrupted prompts must have the same shape [batch, pos]');
  }
  if (correct.length !== clean.length || wrong.length !== clean.length) {
    throw new HeadlensError(`one correct and one wrong token per prompt are needed (${clean.length} prompts)`);
  }
  for (const id of [...correct, ...wrong]) {
    if (!Number.isInteger(id) || id < 0 || id >= model.cfg.d_vocab) throw new HeadlensError(`answer token ${id} is not in the vocabulary`);
  }
}

/** The naive sweep: one runWithHooks per head. Returns the patched logit difference [layer, head]; caller owns it. */
export function patchHeadsOneByOne(model: HookedTransformer, task: HeadPatchingTask): tf.Tensor2D {
  return readSync(oneByOneReads(model, task));
}

/** patchHeadsOneByOne with asynchronous reads (WebGPU in Node: util/reads.ts). */
export function patchHeadsOneByOneAsync(model: HookedTransformer, task: HeadPatchingTask): Promise<tf.Tensor2D> {
  return readAsync(oneByOneReads(model, task));
}

function* oneByOneReads(model: HookedTransformer, task: HeadPatchingTask): Reads<tf.Tensor2D> {
  check(model, task);
  const { n_layers: L, n_heads: H } = model.cfg;
  const metric = logitDiff(task.correct, task.wrong);
  const { logits: cleanLogits, cache } = model.runWithCache(task.clean, { names: (n) => n.endsWith('attn.hook_z') });
  cleanLogits.dispose();
  const values: number[] = [];
  try {
    for (let l = 0; l < L; l++) {
      const cleanZ = cache.get(actName('z', l)); // [batch, pos, head, d_head]
      for (let h = 0; h < H; h++) {
        const onlyH = tf.tidy(() => tf.oneHot([h], H).reshape([1, 1, H, 1])); // [1, 1, head, 1]
        const logits = model.runWithHooks(task.corrupted, {
          fwdHooks: [[actName('z', l), (z) => z.mul(tf.sub(1, onlyH)).add(cleanZ.mul(onlyH))]],
        });
        let mean: tf.Scalar;
        try {
          mean = metricMean(metric, logits);
        } finally {
          tf.dispose([logits, onlyH]);
        }
        values.push((yield mean)[0]);
      }
    }
    return tf.tensor2d(values, [L, H]);
  } finally {
    cache.dispose();
  }
}

/** The public engine on the same task: activationPatching('head-out') with the same metric. [layer, head]; caller owns it. */
export function patchHeadsSweep(model: HookedTransformer, task: HeadPatchingTask, opts: { maxPassBytes?: number } = {}): tf.Tensor2D {
  check(model, task);
  const r = activationPatching(model, 'head-out', sweepOptions(task, opts));
  return tf.tensor2d(Array.from(r.values), [model.cfg.n_layers, model.cfg.n_heads]);
}

/** patchHeadsSweep through activationPatchingAsync (WebGPU in Node: util/reads.ts). */
export async function patchHeadsSweepAsync(model: HookedTransformer, task: HeadPatchingTask, opts: { maxPassBytes?: number } = {}): Promise<tf.Tensor2D> {
  check(model, task);
  const r = await activationPatchingAsync(model, 'head-out', sweepOptions(task, opts));
  return tf.tensor2d(Array.from(r.values), [model.cfg.n_layers, model.cfg.n_heads]);
}

function sweepOptions(task: HeadPatchingTask, opts: { maxPassBytes?: number }) {
  return { clean: task.clean, corrupted: task.corrupted, metric: logitDiff(task.correct, task.wrong), byPos: false, maxPassBytes: opts.maxPassBytes };
}
