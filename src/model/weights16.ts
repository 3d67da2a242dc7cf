/**
 * A linear layer's weight kept 16-bit (f16 or bf16) on the GPU, computed in float32: `Transformer.useWeights16`
 * packs W_Q/W_K/W_V (fused, as the forward uses them), W_O, the MLP matrices and the unembedding; the forward's
 * `linear` reads them through here. The packing and the kernels are src/backend/webgpu_kernels/matmul16.ts.
 *
 * A product with few rows (decoding: batch × 1 new token) runs the packed kernel, which reads each weight as 2
 * bytes instead of 4; a product with more rows (a prompt's prefill) unpacks the weight to a float32 temporary and
 * runs tfjs' tiled matmul on it, which re-reads the weights per tile and would gain less from the halved bytes
 * than it loses to a simple kernel. `weights16Options.kernelMaxRows` sets the boundary (default 8). Under a gradient
 * tape every product takes the unpacked path, since the packed kernel has no gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { FusedActivation } from '../backend/webgpu_kernels/activation.js';
import { matMul16, pack16, unpack16, vectorKernelTakes, type Format16, type MatMul16Epilogue } from '../backend/webgpu_kernels/matmul16.js';
import type { HookedConfig } from './config.js';

export type { Format16 } from '../backend/webgpu_kernels/matmul16.js';

/** Products of at most this many rows use the packed kernel; larger ones unpack the weight first. */
export const weights16Options = { kernelMaxRows: 8 };

/** W [rows, cols] held as pairs of 16-bit values in an int32 tensor [rows, ⌈cols/2⌉] (owned by this object). */
export class PackedLinear {
  constructor(
    readonly packed: tf.Tensor2D,
    readonly rows: number,
    readonly cols: number,
    readonly format: Format16,
  ) {}

  /** float32 [rows, cols] → packed; rounds to the format (exact for values that already are 16-bit). The caller keeps W. */
  static pack(W: tf.Tensor2D, format: Format16): PackedLinear {
    return new PackedLinear(tf.keep(pack16(W, format)), W.shape[0], W.shape[1], format);
  }

  /** The weight as float32 [rows, cols]; the caller owns it. */
  unpack(): tf.Tensor2D {
    return unpack16(this.packed, this.cols, this.format);
  }

  /** Bytes held on the device (4 per packed pair). */
  get bytes(): number {
    return this.packed.size * 4;
  }

  dispose(): void {
    this.packed.dispose();
  }
}

/** x [rows, in] · W + b for a packed W [in, out] → [rows, out]. `fused`: the bias inside tfjs' matmul on the unpacked path. */
export function linear16(x: tf.Tensor2D, W: PackedLinear, b: tf.Tensor, fused: boolean): tf.Tensor2D {
  // the packed kernel has no gradient: under a gradient tape (attribution patching, EAP, training) the product goes
  // through tfjs' matmul on the unpacked weight, whose gradient tfjs knows
  if (x.shape[0] <= weights16Options.kernelMaxRows && !tf.engine().isTapeOn()) return matMul16(x, W.packed, b, W.cols, W.format);
  return tf.tidy(() => {
    const Wf = W.unpack(); // a float32 temporary of this one weight, freed when the product is made
    return (fused ? tf.fused.matMul({ a: x, b: Wf, bias: b }) : x.matMul(Wf).add(b)) as tf.Tensor2D;
  });
}

/**
 * Whether a product of `rows` rows with W may run the packed kernel with an epilogue (gatedLinear16, linear16Add):
 * decode-sized rows, no gradient tape, and a shape the vector kernel takes.
 */
export function packedEpilogueTakes(rows: number, W: PackedLinear, epilogue: MatMul16Epilogue = {}): boolean {
  return rows <= weights16Options.kernelMaxRows && !tf.engine().isTapeOn() && vectorKernelTakes(W.rows, W.cols, epilogue);
}

/**
 * A gated MLP's hidden activation act(x·gate + bGate) ⊙ (x·up + bUp) in one dispatch (x read once, both weights
 * once), rounded as the two products and fusedGatedActivation would round them. Only where packedEpilogueTakes.
 */
export function gatedLinear16(x: tf.Tensor2D, gate: PackedLinear, bGate: tf.Tensor, up: PackedLinear, bUp: tf.Tensor, act: FusedActivation, norm?: MatMul16Epilogue['norm']): tf.Tensor2D {
  if (up.format !== gate.format || up.rows !== gate.rows || up.cols !== gate.cols) {
    throw new Error(`gatedLinear16: the gate is ${gate.format} [${gate.rows}, ${gate.cols}] but the linear half ${up.format} [${up.rows}, ${up.cols}]`);
  }
  return matMul16(x, gate.packed, bGate, gate.cols, gate.format, { gated: { act, up: up.packed, upBias: bUp }, norm });
}

/** norm(x)·W + b in one dispatch: the packed kernel's norm prologue. Only where packedEpilogueTakes(rows, W, { norm }). */
export function normLinear16(x: tf.Tensor2D, W: PackedLinear, b: tf.Tensor, norm: NonNullable<MatMul16Epilogue['norm']>): tf.Tensor2D {
  return matMul16(x, W.packed, b, W.cols, W.format, { norm });
}

/** (a + c) + (x·W + b) in one dispatch, rounded as fusedAdd3 of the product would be: the residual stream's sum. */
export function linear16Add(x: tf.Tensor2D, W: PackedLinear, b: tf.Tensor, a: tf.Tensor, c: tf.Tensor): tf.Tensor2D {
  return matMul16(x, W.packed, b, W.cols, W.format, { add: [a, c] });
}

/** A model's 16-bit weights, by the keys Transformer keeps them under (see packLayer), and the fused QKV biases. */
export interface Weights16 {
  format: Format16;
  weights: Map<string, PackedLinear>;
  qkvBias: Map<number, tf.Tensor1D>;
}

/** The float32 parameters of layer l that packLayer replaces. */
export function packedParamNames(cfg: HookedConfig, l: number): string[] {
  const names = ['Q', 'K', 'V', 'O'].map((x) => `blocks.${l}.attn.W_${x}`);
  if (!cfg.attn_only) names.push(...(cfg.gated_mlp ? ['W_gate', 'W_in', 'W_out'] : ['W_in', 'W_out']).map((w) => `blocks.${l}.mlp.${w}`));
  return names;
}

/**
 * Packs layer l's linear weights into `into`: `blocks.{l}.attn.qkv` (W_Q, W_K, W_V fused and pre-transposed as
 * Transformer.qkvWeights makes them, [d_model, (head + 2·kv_head)·d_head]) with its fused bias, `blocks.{l}.attn.W_O`
 * ([head·d_head, d_model]) and the MLP matrices. P gives the float32 parameters; they are left to the caller.
 */
export function packLayer(cfg: HookedConfig, l: number, P: (name: string) => tf.Tensor, into: Weights16): void {
  const { d_model: d, n_heads: h, d_head: e } = cfg;
  const a = `blocks.${l}.attn`;
  const fused = tf.tidy(() => tf.concat(['Q', 'K', 'V'].map((x) => P(`${a}.W_${x}`).transpose([1, 0, 2]).reshape([d, -1])), 1) as tf.Tensor2D);
  into.weights.set(`${a}.qkv`, PackedLinear.pack(fused, into.format));
  fused.dispose();
  into.qkvBias.set(l, tf.keep(tf.tidy(() => tf.concat(['Q', 'K', 'V'].map((x) => P(`${a}.b_${x}`).reshape([-1])), 0) as tf.Tensor1D)));
  const WO = P(`${a}.W_O`).reshape([h * e, d]) as tf.Tensor2D;
  into.weights.set(`${a}.W_O`, PackedLinear.pack(WO, into.format));
  WO.dispose();
  if (!cfg.attn_only) {
    for (const w of cfg.gated_mlp ? ['W_gate', 'W_in', 'W_out'] : ['W_in', 'W_out']) {
      into.weights.set(`blocks.${l}.mlp.${w}`, PackedLinear.pack(P(`blocks.${l}.mlp.${w}`) as tf.Tensor2D, into.format));
    }
  }
}
