/**
 * What each supported checkpoint family provides: its config.json → HookedConfig mapping, the tensors
 * its checkpoint must hold (names and shapes, checked before anything is copied), and the conversion
 * both ways between its layout and headlens' per-head TransformerLens layout. Fused or transposed
 * tensors are split and transposed here and nowhere else.
 */
import type * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedConfig, HookedConfigInput } from '../../model/config.js';

export type HFConfig = Record<string, unknown>;

export interface Family {
  /** HF model_type values this family reads. */
  modelTypes: string[];
  /** The config.json key(s) each headlens field comes from, where named differently, for error messages. */
  hfKeys?: Record<string, string>;
  /** config.json → headlens config fields. Throws HeadlensError for what it cannot represent. */
  config(hf: HFConfig, modelType: string): HookedConfigInput;
  /** The checkpoint tensors (HF names, without any optional prefix) and their shapes. */
  hfShapes(cfg: HookedConfig): Record<string, number[]>;
  /** Prefixes some checkpoints put before every name (e.g. 'transformer.' in GPT2LMHeadModel saves). */
  prefixes: string[];
  /** Other names a tensor is stored under in some saves (BERT's TensorFlow-era LayerNorm.gamma / .beta), tried after the name itself. */
  aliases?: (hfName: string) => string[];
  /** Extra checkpoint tensors that carry nothing (masks and rotary buffers older versions saved). */
  ignore?: RegExp;
  /** HF tensors → headlens parameters. `get` returns a float32 tensor of an HF name; results are new tensors. */
  toHooked(cfg: HookedConfig, get: (hfName: string) => tf.Tensor): Record<string, tf.Tensor>;
  /** headlens parameters → HF tensors (names with the prefix transformers writes). */
  toHF(cfg: HookedConfig, P: (name: string) => tf.Tensor): Record<string, tf.Tensor>;
  /** headlens config → config.json. */
  hfConfig(cfg: HookedConfig): HFConfig;
}

/** Reads a config.json field of the expected type; undefined when absent or null. */
export function field<T extends 'number' | 'boolean' | 'string' | 'object'>(
  hf: HFConfig,
  key: string,
  type: T,
): (T extends 'number' ? number : T extends 'boolean' ? boolean : T extends 'string' ? string : Record<string, unknown>) | undefined {
  const v = hf[key];
  if (v === undefined || v === null) return undefined;
  return typeof v === type ? (v as never) : (NaN as never); // a wrong type reaches the zod check, which names the field
}

/**
 * A save is read by transformers as its architecture computes, whatever headlens computed; hfConfig calls this before
 * anything is written, with each setting the architecture's config cannot say: [holds, 'setting value (what the
 * architecture has)']. Throws a HeadlensError naming every one that does not hold.
 */
export function assertExpressible(arch: string, checks: [boolean, string][]): void {
  const off = checks.filter(([ok]) => !ok).map(([, what]) => what);
  if (off.length) {
    throw new HeadlensError(
      `this model cannot be saved as ${arch}: ${off.join('; ')}`,
      `transformers would read the save as another model; give the model those settings, or give it an original_architecture of its own (any name transformers does not have), which headlens saves with model_type 'headlens'`,
    );
  }
}

/** What every decoder-only family here has and its config cannot change: norms before the blocks, an MLP, no unembedding bias. */
export function commonChecks(cfg: HookedConfig): [boolean, string][] {
  return [
    [cfg.norm_placement === 'pre', `norm_placement ${cfg.norm_placement} (pre)`],
    [!cfg.attn_only, 'attn_only true (an MLP in every block)'],
    [!cfg.unembed_bias, 'an unembedding bias (none)'],
  ];
}
