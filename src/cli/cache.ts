/** `headlens cache`: run a model on tokens or text and write the logits and activations as safetensors. */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { encodeSafetensors } from '../util/safetensors.js';
import type { HookedConfig } from '../model/config.js';
import { SHORT_NAMES, hookNames, namesForShort } from '../model/hook_names.js';
import { bosOptions, defineCommand, modelOption, option } from './options.js';
import { parseTokenRows, prependBosFlag } from './token_args.js';
import { withModel } from './with_model.js';

export const cacheCommand = defineCommand({
  summary: 'write the logits and the activations at the named hook points to a safetensors file',
  options: {
    model: modelOption(),
    tokens: option(z.string().optional(), { description: 'token ids, rows separated by ";" (give this or --text)', value: '"1,2,3;4,5,6"' }),
    text: option(z.array(z.string()).optional(), { description: "text for the model's tokenizer, one row per --text (give this or --tokens)", value: '"…"' }),
    names: option(z.string().default('all'), { description: "the hook points to keep: all, or a comma-separated list of hook names (blocks.0.attn.hook_pattern) or TransformerLens short names (pattern, z, resid_pre: every layer's); headlens hooks --model M lists them", value: 'all|NAME,NAME' }),
    out: option(
      z.string().regex(/\.safetensors$/, { error: (iss) => `--out ${String(iss.input)} should end in .safetensors` }),
      { description: 'the file to write', value: 'FILE.safetensors', example: 'acts.safetensors' },
    ),
    ...bosOptions(),
  },
  async run(v) {
    if ((v.tokens === undefined) === (v.text === undefined)) {
      throw new HeadlensError('give exactly one of --tokens and --text', 'e.g. --tokens "1,2,3;4,5,6" or --text "Hello there"');
    }
    await withModel(v, async (model) => {
      const rows = v.tokens !== undefined ? parseTokenRows(v.tokens) : model.toTokens(v.text!, { prependBos: prependBosFlag(v) });
      const names = v.names === 'all' ? 'all' : resolveNames(model.cfg, v.names);
      const { logits, cache } = model.runWithCache(rows, { names });
      const tensors: Parameters<typeof encodeSafetensors>[0] = {
        logits: { dtype: 'F32', shape: logits.shape, data: (await logits.data()) as Float32Array },
      };
      for (const n of cache.keys()) {
        const t = cache.get(n);
        tensors[n] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
      }
      tensors.input_ids = { dtype: 'I32', shape: [rows.length, rows[0].length], data: Int32Array.from(rows.flat()) };
      writeFileSync(v.out, encodeSafetensors(tensors, { model: model.cfg.model_name, backend: tf.getBackend() }));
      console.error(`wrote logits and ${cache.size} activations (${rows.length}×${rows[0].length} tokens) to ${v.out}`);
      cache.dispose();
      logits.dispose();
    });
  },
});

/** `--names`: full hook names as they are, a short name ('pattern') as every layer's hook of that kind. */
function resolveNames(cfg: HookedConfig, arg: string): string[] {
  const all = new Set(hookNames(cfg, { withResult: true }));
  const out: string[] = [];
  for (const item of arg.split(',').map((s) => s.trim()).filter(Boolean)) {
    // a full name (even a misspelt one) goes to runWithCache, whose error suggests the nearest hook point
    if (all.has(item) || item.includes('hook_')) out.push(item);
    else if (namesForShort(cfg, item).length) out.push(...namesForShort(cfg, item));
    else {
      const known = SHORT_NAMES.filter((s) => namesForShort(cfg, s).length);
      throw new HeadlensError(`--names: '${item}' is neither a hook name of ${cfg.model_name} nor a short name (${known.join(', ')})`, `headlens hooks --model ${cfg.model_name} lists them`);
    }
  }
  return [...new Set(out)];
}
