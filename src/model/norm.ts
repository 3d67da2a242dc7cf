/**
 * LayerNorm (GPT-2, GPT-NeoX) and RMSNorm (Llama, Mistral, Qwen2), with hook points `{prefix}.hook_scale`
 * [batch, pos, 1] (the divisor) and `{prefix}.hook_normalized` [batch, pos, d_model], the norm's output
 * after its weight (and bias). That is the tensor transformers returns, so `ln_final.hook_normalized`
 * equals its last hidden state (TransformerLens' RMSNorm hooks the value before the weight instead).
 * With `kernels` (webgpu, optimisations.fusedKernels) the norm is one dispatch, or two when a hook listens at
 * hook_scale: the scale, then the norm with whatever the hook point returned (src/backend/webgpu_kernels/norm.ts);
 * one again when that listener only reads (a cache), the scale written beside the output.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from './config.js';
import { normHooks } from './hook_names.js';
import type { HookPoints } from './hook_point.js';
import { fusedNorm, fusedNormApply, fusedNormScale, fusedNormWith, multiOutputActive } from '../backend/webgpu_kernels/index.js';

export function norm(
  cfg: HookedConfig,
  x: tf.Tensor3D,
  w: tf.Tensor | undefined,
  b: tf.Tensor | undefined,
  prefix: string,
  hp: HookPoints,
  kernels = false,
): tf.Tensor3D {
  if (cfg.normalization_type === null) return x;
  const H = normHooks(prefix);
  if (kernels) {
    const type = cfg.normalization_type;
    if (hp.readsOnly(H.scale) && multiOutputActive()) {
      // a listener that only reads the scale (a cache): the norm writes it beside its output, one dispatch
      const { normalized, scale } = fusedNormWith(x, undefined, w!, b, cfg.eps, type, { scale: true });
      hp.point(H.scale, scale!);
      return hp.point(H.normalized, normalized as tf.Tensor3D);
    }
    const out = hp.wants(H.scale) ? fusedNormApply(x, hp.point(H.scale, fusedNormScale(x, cfg.eps, type)), w!, b, type) : fusedNorm(x, w!, b, cfg.eps, type);
    return hp.point(H.normalized, out as tf.Tensor3D);
  }
  const centred = cfg.normalization_type === 'LN' ? x.sub(x.mean(-1, true)) : x;
  const scale = hp.point(H.scale, centred.square().mean(-1, true).add(cfg.eps).sqrt()); // [batch, pos, 1]
  let out = centred.div(scale).mul(w!);
  if (b) out = out.add(b);
  return hp.point(H.normalized, out as tf.Tensor3D);
}
