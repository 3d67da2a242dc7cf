/**
 * Rotary settings from a config.json, in both spellings transformers has used: v5's `rope_parameters`
 * ({rope_type, rope_theta, partial_rotary_factor, factor, …}) and the older top-level `rope_theta`,
 * `rope_scaling`, `rotary_pct`, `rotary_emb_base`.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedConfigInput } from '../../model/config.js';
import { field, type HFConfig } from './family.js';

export function ropeFromHF(hf: HFConfig, defaults: { theta: number; partial?: number }): {
  rotary_base: number;
  rope_scaling: HookedConfigInput['rope_scaling'];
  partial: number;
} {
  const params = field(hf, 'rope_parameters', 'object') ?? {};
  const legacy = field(hf, 'rope_scaling', 'object') ?? {};
  const scaling: Record<string, unknown> = { ...legacy, ...params };
  const num = (k: string) => (typeof scaling[k] === 'number' ? (scaling[k] as number) : undefined);
  const theta = num('rope_theta') ?? field(hf, 'rope_theta', 'number') ?? field(hf, 'rotary_emb_base', 'number') ?? defaults.theta;
  const partial = num('partial_rotary_factor') ?? field(hf, 'partial_rotary_factor', 'number') ?? field(hf, 'rotary_pct', 'number') ?? defaults.partial ?? 1;
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (typeof type !== 'string') throw new HeadlensError(`rope_type ${JSON.stringify(type)} is not a string`, 'supported: default, linear, llama3');
  let rope_scaling: HookedConfigInput['rope_scaling'] = null;
  if (type === 'linear' || type === 'llama3') {
    rope_scaling = {
      type,
      factor: num('factor') ?? NaN,
      low_freq_factor: num('low_freq_factor'),
      high_freq_factor: num('high_freq_factor'),
      original_max_position_embeddings: num('original_max_position_embeddings'),
    };
  } else if (type !== 'default') {
    throw new HeadlensError(`rope type '${type}' is not supported`, "supported: default, linear, llama3");
  }
  return { rotary_base: theta, rope_scaling, partial };
}

/** The `rope_parameters` object transformers v5 writes, from a headlens config. */
export function ropeToHF(cfg: { rotary_base: number; rope_scaling: HookedConfigInput['rope_scaling'] }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const sc = cfg.rope_scaling;
  if (!sc) return { rope_type: 'default', rope_theta: cfg.rotary_base, ...extra };
  const { type, ...rest } = sc;
  return { rope_type: type, rope_theta: cfg.rotary_base, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)), ...extra };
}
