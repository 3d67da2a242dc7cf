/**
 * Rotary position embeddings as transformers applies them (Llama, Mistral, Qwen2, GPT-NeoX): the first
 * `rotary_dim` dimensions of each head are split in two halves (x1, x2) and rotated as
 * (x1·cos − x2·sin, x2·cos + x1·sin); the rest pass through (partial rotary, Pythia's rotary_pct).
 * This is the "rotate_half" layout, not GPT-J's interleaved pairs; with weights drawn large enough,
 * the parity tests tell the two apart.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from './config.js';

/**
 * Inverse frequencies, in float64, with the checkpoint's rope scaling applied. [rotary_dim / 2]
 * θ_i = base^(−2i / r) with r = rotary_freq_dim (= rotary_dim except for an odd GPT-NeoX r, see config.ts).
 */
export function inverseFrequencies(cfg: HookedConfig): Float64Array {
  const dim = cfg.rotary_dim!;
  const r = cfg.rotary_freq_dim ?? dim;
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = 1 / Math.pow(cfg.rotary_base, (2 * i) / r);
  const sc = cfg.rope_scaling;
  if (!sc) return inv;
  if (sc.type === 'linear') return inv.map((f) => f / sc.factor);
  // llama3 (Llama 3.1): long wavelengths are slowed by `factor`, short ones kept, the band between blended
  const oldCtx = sc.original_max_position_embeddings ?? 8192;
  const lowF = sc.low_freq_factor ?? 1;
  const highF = sc.high_freq_factor ?? 4;
  const lowWavelen = oldCtx / lowF;
  const highWavelen = oldCtx / highF;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / sc.factor;
    const smooth = (oldCtx / wavelen - lowF) / (highF - lowF);
    return (1 - smooth) * (f / sc.factor) + smooth * f;
  });
}

/**
 * cos and sin tables for positions offset..offset+nPos-1 (absolute positions: a decoding step with a KV cache
 * rotates its new positions by where they sit in the whole sequence). Each [pos, rotary_dim], the half-table
 * repeated twice.
 */
export function rotaryTables(cfg: HookedConfig, nPos: number, offset = 0): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const { cos, sin } = angleTables(cfg, Array.from({ length: nPos }, (_, p) => offset + p));
  const dim = cfg.rotary_dim!;
  return { cos: tf.tensor2d(cos, [nPos, dim]), sin: tf.tensor2d(sin, [nPos, dim]) };
}

/**
 * cos and sin tables for given position ids per row (a padded batch, padding.ts: each row's real tokens
 * counted from 0). Each [batch, pos, rotary_dim].
 */
export function rotaryTablesAt(cfg: HookedConfig, positions: number[][]): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  const { cos, sin } = angleTables(cfg, positions.flat());
  const shape: [number, number, number] = [positions.length, positions[0].length, cfg.rotary_dim!];
  return { cos: tf.tensor3d(cos, shape), sin: tf.tensor3d(sin, shape) };
}

/** cos and sin of position·frequency for each position given, [positions.length · rotary_dim], in float64 before rounding. */
function angleTables(cfg: HookedConfig, positions: number[]): { cos: Float32Array; sin: Float32Array } {
  const dim = cfg.rotary_dim!;
  const inv = inverseFrequencies(cfg);
  const cos = new Float32Array(positions.length * dim);
  const sin = new Float32Array(positions.length * dim);
  positions.forEach((position, p) => {
    for (let i = 0; i < dim / 2; i++) {
      const a = position * inv[i];
      cos[p * dim + i] = cos[p * dim + i + dim / 2] = Math.cos(a);
      sin[p * dim + i] = sin[p * dim + i + dim / 2] = Math.sin(a);
    }
  });
  return { cos, sin };
}

/** Rotates x [batch, pos, head, d_head] by the tables (each [pos, rotary_dim], or [batch, pos, rotary_dim] per row). */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor2D | tf.Tensor3D, sin: tf.Tensor2D | tf.Tensor3D, rotaryDim: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, p, h, e] = x.shape;
    const half = rotaryDim / 2;
    const rows = cos.rank === 3 ? b : 1;
    const c = cos.reshape([rows, p, 1, rotaryDim]);
    const s = sin.reshape([rows, p, 1, rotaryDim]);
    const rot = rotaryDim === e ? x : x.slice([0, 0, 0, 0], [b, p, h, rotaryDim]);
    const x1 = rot.slice([0, 0, 0, 0], [b, p, h, half]);
    const x2 = rot.slice([0, 0, 0, half], [b, p, h, half]);
    const rotatedHalf = tf.concat([x2.neg(), x1], 3); // [batch, pos, head, rotary_dim]
    const out = rot.mul(c).add(rotatedHalf.mul(s)) as tf.Tensor4D;
    if (rotaryDim === e) return out;
    return tf.concat([out, x.slice([0, 0, 0, rotaryDim], [b, p, h, e - rotaryDim])], 3) as tf.Tensor4D;
  });
}
