/**
 * headlens' own layout, for models no transformers class describes (attention-only toy models): the
 * config.json holds the headlens config under `headlens_config`, and tensors keep their TransformerLens
 * names, so nothing is converted.
 */
import { paramShapes, inCheckpoint } from '../../model/params.js';
import type { HookedConfig } from '../../model/config.js';
import { field, type Family } from './family.js';
import * as tf from '@tensorflow/tfjs';

export const native: Family = {
  modelTypes: ['headlens'],
  prefixes: [],
  config(hf) {
    return (field(hf, 'headlens_config', 'object') ?? {}) as never;
  },
  hfShapes(cfg) {
    return Object.fromEntries(Object.entries(paramShapes(cfg)).filter(([n]) => inCheckpoint(cfg, n)));
  },
  toHooked(cfg, get) {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, shape] of Object.entries(paramShapes(cfg))) {
      if (inCheckpoint(cfg, name)) out[name] = get(name);
      else if (name === 'unembed.W_U') out[name] = get('embed.W_E').transpose();
      else out[name] = tf.zeros(shape);
    }
    return out;
  },
  toHF(cfg, P) {
    return Object.fromEntries(Object.keys(paramShapes(cfg)).filter((n) => inCheckpoint(cfg, n)).map((n) => [n, P(n)]));
  },
  hfConfig(cfg: HookedConfig) {
    return { model_type: 'headlens', architectures: ['HeadlensTransformer'], headlens_config: cfg };
  },
};
