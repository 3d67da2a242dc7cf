/**
 * The bytes a model's weights take on the backend, computed from its config alone (nothing is allocated), so
 * that a model too large for the device is refused before loading starts (src/loading/fit_check.ts).
 */
import type { HookedConfig } from './config.js';
import { paramShapes } from './params.js';

export interface WeightMemory {
  /** Bytes of the parameters once loaded (16-bit linear weights at 2 bytes a value, the rest float32). */
  paramBytes: number;
  /**
   * Bytes the forward adds at its first run: the fused float32 W_Q·W_K·W_V copy per layer (Transformer.qkvWeights)
   * and its bias. With 16-bit weights the fused matrix is how the weights are stored, so only its bias is extra.
   */
  qkvBytes: number;
  /**
   * At most this many bytes while loading: loading converts the whole checkpoint inside one scope, so the
   * checkpoint's tensors (float32 once read) and the converted float32 parameters coexist until it ends; with
   * 16-bit weights they are then packed one at a time.
   */
  loadPeakBytes: number;
  /** The largest single float32 tensor loading or the forward makes (a WebGPU buffer must hold it whole). */
  largest: { name: string; bytes: number };
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Whether a parameter is one of the linear weights Transformer.useWeights16 packs. */
export function isWeight16(cfg: HookedConfig, name: string): boolean {
  return name === 'unembed.W_U' || /^blocks\.\d+\.attn\.W_[QKVO]$/.test(name) || (!cfg.attn_only && /^blocks\.\d+\.mlp\.W_(in|gate|out)$/.test(name));
}

/** `hfShapes`: the checkpoint's own tensors (Family.hfShapes), for the load peak; without them it counts the parameters twice. */
export function weightMemory(cfg: HookedConfig, opts: { weights16?: boolean; hfShapes?: Record<string, number[]> } = {}): WeightMemory {
  const shapes = paramShapes(cfg);
  const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const qkvCols = (h + 2 * kv) * e;
  let largest = { name: 'blocks.0.attn (fused QKV)', bytes: d * qkvCols * 4 };
  const consider = (name: string, shape: number[]) => {
    const bytes = count(shape) * 4;
    if (bytes > largest.bytes) largest = { name, bytes };
  };
  let f32Params = 0;
  let paramBytes = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    f32Params += count(shape) * 4;
    consider(name, shape);
    if (!opts.weights16 || !isWeight16(cfg, name)) paramBytes += count(shape) * 4;
    else if (/\.attn\.W_[QKV]$/.test(name)) continue; // counted below, once per layer, fused
    else {
      // packed pairs along the output axis: [rows, ⌈cols/2⌉] int32
      const rows = name.endsWith('.W_O') ? h * e : shape[0];
      const cols = name.endsWith('.W_O') ? d : shape[shape.length - 1];
      paramBytes += rows * Math.ceil(cols / 2) * 4;
    }
  }
  if (opts.weights16) paramBytes += cfg.n_layers * d * Math.ceil(qkvCols / 2) * 4;
  const qkvBytes = cfg.n_layers * ((opts.weights16 ? 0 : d * qkvCols * 4) + qkvCols * 4);
  let hfBytes = f32Params;
  if (opts.hfShapes) {
    hfBytes = 0;
    for (const [name, shape] of Object.entries(opts.hfShapes)) {
      hfBytes += count(shape) * 4;
      consider(name, shape);
    }
  }
  return { paramBytes, qkvBytes, loadPeakBytes: hfBytes + f32Params, largest };
}
