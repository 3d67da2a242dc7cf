/**
 * The MLP: act(x·W_in + b_in)·W_out + b_out, or gated (SwiGLU in Llama, Mistral, Qwen2):
 * (act(x·W_gate + b_gate) ⊙ (x·W_in + b_in))·W_out + b_out.
 * Hook points under blocks.{l}.mlp.: hook_pre [batch, pos, d_mlp] (the activation's input: x·W_gate when
 * gated), hook_pre_linear (gated only: x·W_in), hook_post [batch, pos, d_mlp].
 */
import * as tf from '@tensorflow/tfjs';
import { activation } from './activation.js';
import type { HookedConfig } from './config.js';
import type { HookPoints } from './hook_point.js';

export function mlp(cfg: HookedConfig, layer: number, x: tf.Tensor3D, P: (name: string) => tf.Tensor, hp: HookPoints): tf.Tensor3D {
  const n = `blocks.${layer}.mlp`;
  const [batch, pos, d] = x.shape;
  const m = cfg.d_mlp!;
  const x2d = x.reshape([batch * pos, d]) as tf.Tensor2D;
  const linear = (W: string, b?: string) => {
    const y = x2d.matMul(P(W) as tf.Tensor2D);
    return (b ? y.add(P(b)) : y).reshape([batch, pos, m]) as tf.Tensor3D;
  };
  let post: tf.Tensor3D;
  if (cfg.gated_mlp) {
    const gate = hp.point(`${n}.hook_pre`, linear(`${n}.W_gate`, `${n}.b_gate`));
    const lin = hp.point(`${n}.hook_pre_linear`, linear(`${n}.W_in`, `${n}.b_in`));
    post = hp.point(`${n}.hook_post`, activation(cfg.act_fn, gate).mul(lin) as tf.Tensor3D);
  } else {
    const pre = hp.point(`${n}.hook_pre`, linear(`${n}.W_in`, `${n}.b_in`));
    post = hp.point(`${n}.hook_post`, activation(cfg.act_fn, pre) as tf.Tensor3D);
  }
  const out = post.reshape([batch * pos, m]).matMul(P(`${n}.W_out`) as tf.Tensor2D).add(P(`${n}.b_out`));
  return out.reshape([batch, pos, d]) as tf.Tensor3D;
}
