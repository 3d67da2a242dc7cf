/**
 * The matrix multiplications one forward pass does, by shape, and their floating-point operations
 * (2·m·k·n each: a multiply and an add). The benchmark times these same products on their own to get the
 * backend's own matmul speed on the forward's shapes (forward_vs_matmul), and divides the forward's FLOPs
 * by its time for its GFLOP/s. Elementwise work (norms, softmax, GELU) is not counted: it is the overhead
 * that ratio exposes.
 */
import type { HookedConfig } from '../model/config.js';

/** One (batched) product: `count` independent [m, k]·[k, n]. */
export interface MatmulShape {
  what: string;
  count: number;
  m: number;
  k: number;
  n: number;
}

/** The products of a forward on [batch, pos] tokens, in the order the forward runs them (one layer's, times n_layers). */
export function forwardMatmuls(cfg: HookedConfig, batch: number, pos: number): MatmulShape[] {
  const t = batch * pos;
  const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const layer: MatmulShape[] = [
    { what: 'qkv', count: 1, m: t, k: d, n: (h + 2 * kv) * e },
    { what: 'scores', count: batch * h, m: pos, k: e, n: pos },
    { what: 'pattern·v', count: batch * h, m: pos, k: pos, n: e },
    { what: 'out', count: 1, m: t, k: h * e, n: d },
  ];
  if (!cfg.attn_only) {
    const m = cfg.d_mlp!;
    layer.push({ what: 'mlp_in', count: cfg.gated_mlp ? 2 : 1, m: t, k: d, n: m }, { what: 'mlp_out', count: 1, m: t, k: m, n: d });
  }
  const all: MatmulShape[] = [];
  for (let l = 0; l < cfg.n_layers; l++) all.push(...layer);
  all.push({ what: 'unembed', count: 1, m: t, k: d, n: cfg.d_vocab });
  return all;
}

export function matmulFlops(shapes: MatmulShape[]): number {
  return shapes.reduce((s, x) => s + 2 * x.count * x.m * x.k * x.n, 0);
}
