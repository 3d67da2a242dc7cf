import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { loadPretrained } from '../loading/load.js';
import { encodeSafetensors } from '../loading/safetensors.js';
import { required, type Command } from './main.js';

/** "1,2,3;4,5,6" → [[1,2,3],[4,5,6]]. */
export function parseTokenRows(s: string): number[][] {
  return s.split(';').map((row, i) =>
    row.split(',').map((x) => {
      const t = x.trim();
      if (!/^\d+$/.test(t)) throw new HeadlensError(`--tokens row ${i}: '${t}' is not a token id`, 'write rows of non-negative integers: --tokens "1,2,3;4,5,6"');
      return Number(t);
    }),
  );
}

export const cacheCommand: Command = {
  options: {
    model: { type: 'string' },
    tokens: { type: 'string' },
    text: { type: 'string', multiple: true },
    names: { type: 'string' },
    out: { type: 'string' },
  },
  async run(v) {
    const modelArg = required(v, 'model', 'datasets/zoo/tiny-gpt2-random');
    const out = required(v, 'out', 'acts.safetensors');
    if (!out.endsWith('.safetensors')) throw new HeadlensError(`--out ${out} should end in .safetensors`, 'e.g. --out acts.safetensors');
    if ((v.tokens === undefined) === (v.text === undefined)) {
      throw new HeadlensError('give exactly one of --tokens and --text', 'e.g. --tokens "1,2,3;4,5,6" or --text "Hello there"');
    }
    const model = await loadPretrained(modelArg, { backend: v.backend as BackendName });
    try {
      const rows = v.tokens !== undefined ? parseTokenRows(v.tokens as string) : model.toTokens(v.text as string[]);
      const namesArg = (v.names as string | undefined) ?? 'all';
      const names = namesArg === 'all' ? 'all' : namesArg.split(',').map((s) => s.trim()).filter(Boolean);
      const { logits, cache } = model.runWithCache(rows, { names });
      const tensors: Parameters<typeof encodeSafetensors>[0] = {
        logits: { dtype: 'F32', shape: logits.shape, data: (await logits.data()) as Float32Array },
      };
      for (const n of cache.keys()) {
        const t = cache.get(n);
        tensors[n] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
      }
      tensors.input_ids = { dtype: 'I32', shape: [rows.length, rows[0].length], data: Int32Array.from(rows.flat()) };
      writeFileSync(out, encodeSafetensors(tensors, { model: model.cfg.model_name, backend: tf.getBackend() }));
      console.error(`wrote logits and ${cache.size} activations (${rows.length}×${rows[0].length} tokens) to ${out}`);
      cache.dispose();
      logits.dispose();
    } finally {
      model.dispose();
    }
  },
};
