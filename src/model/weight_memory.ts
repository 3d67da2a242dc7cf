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
   * At most this many bytes while loading, which converts the global tensors (embeddings, final norm, unembedding)
   * and then one layer at a time (src/loading/load_files.ts): the parameters as stored, plus the larger of the
   * global checkpoint tensors and one layer's, each with room for the conversion's intermediates; with 16-bit
   * weights also the float32 globals (the unembedding is packed last) and one layer's float32 parameters and fused
   * QKV before they are packed.
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

/**
 * `hf`: the checkpoint's tensors that are not in a layer, and those of one layer (Family.hfShapes of the config with
 * no layers and with one), for the load peak; without them the converted parameters stand in for both.
 */
export function weightMemory(cfg: HookedConfig, opts: { weights16?: boolean; hf?: { globals: Record<string, number[]>; layer: Record<string, number[]> } } = {}): WeightMemory {
  const shapes = paramShapes(cfg);
  const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const qkvCols = (h + 2 * kv) * e;
  let largest = { name: 'blocks.0.attn (fused QKV)', bytes: d * qkvCols * 4 };
  const consider = (name: string, shape: number[]) => {
    const bytes = count(shape) * 4;
    if (bytes > largest.bytes) largest = { name, bytes };
  };
  let globalParams = 0;
  let layerParams = 0;
  let paramBytes = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    if (!name.startsWith('blocks.')) globalParams += count(shape) * 4;
    else if (name.startsWith('blocks.0.')) layerParams += count(shape) * 4;
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
  let hfGlobal = globalParams;
  let hfLayer = layerParams;
  if (opts.hf) {
    const sum = (s: Record<string, number[]>) => Object.entries(s).reduce((n, [name, shape]) => (consider(name, shape), n + count(shape) * 4), 0);
    hfGlobal = sum(opts.hf.globals);
    hfLayer = sum(opts.hf.layer); // one layer's tensors only
  }
  // a conversion's intermediates (a fused QKV split, then transposed) may hold about its output once more; packing a
  // layer (16-bit) holds its float32 parameters and makes its fused QKV in float32 first
  const loadPeakBytes = opts.weights16
    ? paramBytes + globalParams + Math.max(hfGlobal + globalParams, hfLayer + 2 * layerParams + d * qkvCols * 4)
    : paramBytes + Math.max(hfGlobal + globalParams, hfLayer + layerParams);
  return { paramBytes, qkvBytes, loadPeakBytes, largest };
}
