/**
 * The MLP: act(x·W_in + b_in)·W_out + b_out, or gated (SwiGLU in Llama, Mistral, Qwen2):
 * (act(x·W_gate + b_gate) ⊙ (x·W_in + b_in))·W_out + b_out.
 * Hook points under blocks.{l}.mlp.: hook_pre [batch, pos, d_mlp] (the activation's input: x·W_gate when
 * gated), hook_pre_linear (gated only: x·W_in), hook_post [batch, pos, d_mlp].
 */
import * as tf from '@tensorflow/tfjs';
import { fusedActivation, fusedAdd3, fusedGatedActivation, fusedNormOfSum, type NormType } from '../backend/webgpu_kernels/index.js';
import { activation } from './activation.js';
import type { HookedConfig } from './config.js';
import { blockHooks } from './hook_names.js';
import type { HookPoints } from './hook_point.js';
import { gatedLinear16, linear16, linear16Add, packedEpilogueTakes, PackedLinear } from './weights16.js';

/**
 * x·W + b [rows, out] for x [rows, in], W [in, out]; with `fused`, the bias is added inside the matmul kernel.
 * W may be 16-bit (weights16.ts), computed in float32.
 */
export function linear(x: tf.Tensor2D, W: tf.Tensor2D | PackedLinear, b: tf.Tensor, fused: boolean): tf.Tensor2D {
  if (W instanceof PackedLinear) return linear16(x, W, b, fused);
  return (fused ? tf.fused.matMul({ a: x, b: W, bias: b }) : tf.tidy(() => x.matMul(W).add(b))) as tf.Tensor2D; // the product before the bias freed at once
}

/**
 * `fused`: biases inside the matmul kernels; `scoped`: the activation function's temporaries freed at once;
 * `W`: where the weight matrices come from, when some are 16-bit (Transformer.linearWeight); default P;
 * `kernels`: the activation (or SwiGLU's act(gate)·up) in one WebGPU dispatch (src/backend/webgpu_kernels).
 * `residual`: two tensors of x's shape; given, the result is (residual[0] + residual[1]) + the MLP's output, the
 * block's hook_resid_post (the caller passes them only where nothing hooks hook_mlp_out).
 * With 16-bit weights at decode-sized rows (weights16.ts' packedEpilogueTakes) and the kernels on, a gated MLP's
 * two products and activation are one dispatch where nothing hooks hook_pre / hook_pre_linear, and the residual
 * sum is the last product's epilogue.
 * `prenorm`: x is the residual stream before the block's second norm, and the MLP's input is that norm of x +
 * addend (the caller passes it only where nothing hooks the norm); the gated product above then computes the norm
 * itself, and any other path runs fusedNormOfSum first.
 */
export function mlp(
  cfg: HookedConfig,
  layer: number,
  x: tf.Tensor3D,
  P: (name: string) => tf.Tensor,
  hp: HookPoints,
  fused = false,
  scoped = false,
  W: (name: string) => tf.Tensor2D | PackedLinear = (n) => P(n) as tf.Tensor2D,
  kernels = false,
  residual?: [tf.Tensor3D, tf.Tensor3D],
  prenorm?: { addend: tf.Tensor3D; w: tf.Tensor; b?: tf.Tensor; eps: number; type: NormType },
): tf.Tensor3D {
  const n = `blocks.${layer}.mlp`; // parameter prefix
  const H = blockHooks(layer);
  const [batch, pos, d] = x.shape;
  const m = cfg.d_mlp!;
  const rows = batch * pos;
  const Wg = cfg.gated_mlp ? W(`${n}.W_gate`) : undefined;
  const Wi = cfg.gated_mlp ? W(`${n}.W_in`) : undefined;
  const gatedInOne =
    kernels && Wg instanceof PackedLinear && Wi instanceof PackedLinear && !hp.wants(H['mlp.hook_pre']) && !hp.wants(H['mlp.hook_pre_linear']) &&
    packedEpilogueTakes(rows, Wg, { gated: { act: cfg.act_fn, up: Wi.packed, upBias: P(`${n}.b_in`) }, norm: prenorm });
  // the norm the caller left to this function, unless the gated product computes it
  if (prenorm && !gatedInOne) x = fusedNormOfSum(x, prenorm.addend, prenorm.w, prenorm.b, prenorm.eps, prenorm.type) as tf.Tensor3D;
  const x2d = x.reshape([rows, d]) as tf.Tensor2D;
  const project = (w: string, b: string) => linear(x2d, W(w), P(b), fused).reshape([batch, pos, m]) as tf.Tensor3D;
  const act = (f: () => tf.Tensor3D) => (scoped ? tf.tidy(f) : f());
  let post: tf.Tensor3D;
  if (gatedInOne) {
    post = hp.point(H['mlp.hook_post'], gatedLinear16(x2d, Wg as PackedLinear, P(`${n}.b_gate`), Wi as PackedLinear, P(`${n}.b_in`), cfg.act_fn, prenorm).reshape([batch, pos, m]) as tf.Tensor3D);
  } else if (cfg.gated_mlp) {
    const gate = hp.point(H['mlp.hook_pre'], project(`${n}.W_gate`, `${n}.b_gate`));
    const lin = hp.point(H['mlp.hook_pre_linear'], project(`${n}.W_in`, `${n}.b_in`));
    post = hp.point(H['mlp.hook_post'], kernels ? (fusedGatedActivation(cfg.act_fn, gate, lin) as tf.Tensor3D) : act(() => activation(cfg.act_fn, gate).mul(lin) as tf.Tensor3D));
  } else {
    const pre = hp.point(H['mlp.hook_pre'], project(`${n}.W_in`, `${n}.b_in`));
    post = hp.point(H['mlp.hook_post'], kernels ? (fusedActivation(cfg.act_fn, pre) as tf.Tensor3D) : act(() => activation(cfg.act_fn, pre) as tf.Tensor3D));
  }
  const Wo = W(`${n}.W_out`);
  const post2d = post.reshape([rows, m]) as tf.Tensor2D;
  if (residual && kernels && Wo instanceof PackedLinear && packedEpilogueTakes(rows, Wo, { add: residual })) {
    return linear16Add(post2d, Wo, P(`${n}.b_out`), residual[0], residual[1]).reshape([batch, pos, d]) as tf.Tensor3D;
  }
  const out = linear(post2d, Wo, P(`${n}.b_out`), fused).reshape([batch, pos, d]) as tf.Tensor3D;
  if (!residual) return out;
  return (kernels ? fusedAdd3(residual[0], residual[1], out) : residual[0].add(residual[1]).add(out)) as tf.Tensor3D;
}
