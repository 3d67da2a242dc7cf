/**
 * LayerNorm (GPT-2, GPT-NeoX) and RMSNorm (Llama, Mistral, Qwen2), with hook points `{prefix}.hook_scale`
 * [batch, pos, 1] (the divisor) and `{prefix}.hook_normalized` [batch, pos, d_model], the norm's output
 * after its weight (and bias). That is the tensor transformers returns, so `ln_final.hook_normalized`
 * equals its last hidden state (TransformerLens' RMSNorm hooks the value before the weight instead).
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from './config.js';
import { normHooks } from './hook_names.js';
import type { HookPoints } from './hook_point.js';

export function norm(
  cfg: HookedConfig,
  x: tf.Tensor3D,
  w: tf.Tensor | undefined,
  b: tf.Tensor | undefined,
  prefix: string,
  hp: HookPoints,
): tf.Tensor3D {
  if (cfg.normalization_type === null) return x;
  const H = normHooks(prefix);
  const centred = cfg.normalization_type === 'LN' ? x.sub(x.mean(-1, true)) : x;
  const scale = hp.point(H.scale, centred.square().mean(-1, true).add(cfg.eps).sqrt()); // [batch, pos, 1]
  let out = centred.div(scale).mul(w!);
  if (b) out = out.add(b);
  return hp.point(H.normalized, out as tf.Tensor3D);
}
