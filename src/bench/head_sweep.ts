/**
 * Activation patching of every attention head, two ways, for the benchmark's sweep_speedup.
 *
 * The experiment is the one Wang et al. (2022, "Interpretability in the Wild", the IOI circuit in GPT-2
 * small) ran over all 144 heads: run a corrupted prompt, put one head's output (`attn.hook_z` of that head)
 * back from the clean prompt, and see how much of the clean logit difference returns. Done naively that is
 * one forward pass per head: n_layers·n_heads passes over the whole model.
 *
 * The batched sweep gets the same numbers with less work, in three ways:
 *  - the variants that patch a head of layer l agree up to layer l, so the corrupted run's resid_pre of
 *    layer l is computed once and each layer's sweep starts there (Transformer.runFrom): Σ(n_layers − l)
 *    blocks instead of n_layers² ;
 *  - the n_heads variants of a layer are stacked along the batch, so one pass patches all of them (on a GPU
 *    the time of a small batch is mostly kernel launches, which this divides by n_heads);
 *  - the metric needs only the last position's logits, so the unembedding (for GPT-2 small as much work as
 *    five blocks) is done for that position only.
 * `patchHeadsOneByOne` is the naive loop a user would write with runWithHooks; both return
 * [layer, head] tensors that agree to float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { HookPoints, type Interceptor } from '../model/hook_point.js';
import { linear } from '../model/mlp.js';
import { norm } from '../model/norm.js';

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

/** Mean over prompts of logit[correct] − logit[wrong]; lastLogits [batch, d_vocab]. A scalar. */
function logitDiff(lastLogits: tf.Tensor2D, correct: number[], wrong: number[]): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, v] = lastLogits.shape;
    const batch = correct.length;
    const flat = lastLogits.reshape([-1]);
    const at = (ids: number[]) => tf.gather(flat, tf.tensor1d(Array.from({ length: n }, (_, i) => i * v + ids[i % batch]), 'int32'));
    return at(correct).sub(at(wrong)).reshape([n / batch, batch]).mean(1) as tf.Tensor1D; // [variants]
  });
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

/** Every layer's hook_z of a run [batch, pos, head, d_head], owned by the caller. */
function zOf(model: HookedTransformer, tokens: number[][]): tf.Tensor4D[] {
  const { logits, cache } = model.runWithCache(tokens, { names: (n) => n.endsWith('attn.hook_z') });
  const zs = Array.from({ length: model.cfg.n_layers }, (_, l) => cache.get(`blocks.${l}.attn.hook_z`).clone() as tf.Tensor4D);
  cache.dispose();
  logits.dispose();
  return zs;
}

/** The naive sweep: one runWithHooks per head. Returns the patched logit difference [layer, head]; caller owns it. */
export function patchHeadsOneByOne(model: HookedTransformer, task: HeadPatchingTask): tf.Tensor2D {
  check(model, task);
  const { n_layers: L, n_heads: H } = model.cfg;
  const cleanZ = zOf(model, task.clean);
  const results: tf.Tensor[] = [];
  try {
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const onlyH = tf.tidy(() => tf.oneHot([h], H).reshape([1, 1, H, 1])); // [1, 1, head, 1]
        const logits = model.runWithHooks(task.corrupted, {
          fwdHooks: [[`blocks.${l}.attn.hook_z`, (z) => z.mul(tf.sub(1, onlyH)).add(cleanZ[l].mul(onlyH))]],
        });
        const [b, p, v] = logits.shape;
        results.push(tf.tidy(() => logitDiff(logits.slice([0, p - 1, 0], [b, 1, v]).reshape([b, v]) as tf.Tensor2D, task.correct, task.wrong)));
        tf.dispose([logits, onlyH]);
      }
    }
    return tf.tidy(() => tf.concat(results).reshape([L, H]) as tf.Tensor2D);
  } finally {
    tf.dispose([...cleanZ, ...results]);
  }
}

/**
 * The batched sweep: per layer, the heads' variants stacked along the batch axis in passes that start at that
 * layer. Same result as the loop; caller owns it. A pass holds as many heads' variants as keep its attention
 * scores under `maxPassBytes` (default 64 MiB): one pass of GPT-2 small at 32 × 128 would otherwise hold
 * about 300 MB of scores in one tensor.
 */
export function patchHeadsBatched(model: HookedTransformer, task: HeadPatchingTask, opts: { maxPassBytes?: number } = {}): tf.Tensor2D {
  check(model, task);
  const { cfg } = model;
  const { n_layers: L, n_heads: H } = cfg;
  const cleanZ = zOf(model, task.clean);
  const { logits, cache } = model.runWithCache(task.corrupted, { names: (n) => n.endsWith('hook_resid_pre') });
  logits.dispose();
  const [batch, pos] = [task.corrupted.length, task.corrupted[0].length];
  const scoresBytesPerVariant = batch * H * pos * pos * 4;
  const perPass = Math.max(1, Math.min(H, Math.floor((opts.maxPassBytes ?? 64 * 2 ** 20) / scoresBytesPerVariant)));
  const perLayer: tf.Tensor[] = [];
  try {
    for (let l = 0; l < L; l++) {
      const parts: tf.Tensor[] = [];
      for (let h0 = 0; h0 < H; h0 += perPass) {
        const g = Math.min(perPass, H - h0); // heads h0 … h0 + g − 1 in this pass
        parts.push(
          tf.tidy(() => {
            const resid = cache.get(`blocks.${l}.hook_resid_pre`) as tf.Tensor3D; // [batch, pos, d_model]
            const d = resid.shape[2];
            const x = resid.tile([g, 1, 1]) as tf.Tensor3D; // [g·batch, pos, d_model]: variant i is rows i·batch…
            const clean = cleanZ[l].tile([g, 1, 1, 1]); // [g·batch, pos, head, d_head]
            // variant i takes head h0 + i from the clean run: [g·batch, 1, head, 1]
            // (written out rather than tiled: WebGPU runs 5-d tiles on the CPU)
            const maskData = new Float32Array(g * batch * H);
            for (let i = 0; i < g; i++) for (let b = 0; b < batch; b++) maskData[(i * batch + b) * H + h0 + i] = 1;
            const mask = tf.tensor4d(maskData, [g * batch, 1, H, 1]);
            const zName = `blocks.${l}.attn.hook_z`;
            const patch: Interceptor = {
              wants: (n) => n === zName,
              call: (_n, z) => z.mul(tf.sub(1, mask)).add(clean.mul(mask)),
            };
            const final = model.runFrom(l, x, { interceptor: patch, stopAtLayer: L }); // [g·batch, pos, d_model]
            const last = final.slice([0, pos - 1, 0], [g * batch, 1, d]) as tf.Tensor3D; // [g·batch, 1, d_model]
            const P = (n: string) => model.param(n);
            const normed = norm(
              cfg,
              last,
              cfg.normalization_type ? P('ln_final.w') : undefined,
              cfg.normalization_type === 'LN' ? P('ln_final.b') : undefined,
              'ln_final',
              new HookPoints(),
            );
            const lastLogits = linear(normed.reshape([g * batch, d]) as tf.Tensor2D, P('unembed.W_U') as tf.Tensor2D, P('unembed.b_U'), true);
            return logitDiff(lastLogits, task.correct, task.wrong); // [g]
          }),
        );
      }
      perLayer.push(tf.concat(parts));
      tf.dispose(parts);
    }
    return tf.tidy(() => tf.stack(perLayer) as tf.Tensor2D); // [layer, head]
  } finally {
    tf.dispose([...cleanZ, ...perLayer]);
    cache.dispose();
  }
}
