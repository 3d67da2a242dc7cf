/**
 * Head labels as TransformerLens writes them, `L{layer}H{head}`, and back. Every picture, table and CLI flag
 * that names a head goes through these two.
 */
import { HeadlensError } from '../errors.js';

/** `L{l}H{h}`, TransformerLens' head label. */
export function headLabel(layer: number, head: number): string {
  return `L${layer}H${head}`;
}

/** The head a label names (headLabel's inverse): 'L3H0' → { layer: 3, head: 0 }; checked against the model's shape. */
export function parseHeadLabel(label: string, cfg: { n_layers: number; n_heads: number }): { layer: number; head: number } {
  const m = /^L(\d+)H(\d+)$/i.exec(label.trim());
  if (!m) throw new HeadlensError(`'${label}' is not a head label`, 'write a head as L{layer}H{head}, e.g. L3H0');
  const [layer, head] = [Number(m[1]), Number(m[2])];
  if (layer >= cfg.n_layers || head >= cfg.n_heads) {
    throw new HeadlensError(`no head ${label}: the model has ${cfg.n_layers} layers of ${cfg.n_heads} heads`, `use L0H0 … L${cfg.n_layers - 1}H${cfg.n_heads - 1}`);
  }
  return { layer, head };
}
