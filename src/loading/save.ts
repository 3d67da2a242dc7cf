/**
 * Saves a model in the HuggingFace layout of its family (config.json, model.safetensors, tokenizer.json),
 * float32, so that loadPretrained gives back the same parameters bit for bit and transformers can read
 * GPT-2, GPT-NeoX, Llama, Mistral and Qwen2 saves.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import type { Transformer } from '../model/transformer.js';
import { familyForArchitecture } from './families/index.js';
import { encodeSafetensors } from '../util/safetensors.js';
import { HFTokenizer } from './tokenizer.js';

/** Writes the model; async because GPU tensors are read back asynchronously. */
export async function saveModel(model: Transformer & { tokenizer?: unknown }, dir: string, opts: { metadata?: Record<string, string> } = {}): Promise<void> {
  if (model.processing.length) {
    throw new HeadlensError(`this model's weights were processed (${model.processing.join(', ')}); saving them would not give the checkpoint back`, 'save before processing, or reload the checkpoint');
  }
  const family = familyForArchitecture(model.cfg.original_architecture);
  mkdirSync(dir, { recursive: true });
  const tensors: Parameters<typeof encodeSafetensors>[0] = {};
  const hf = tf.tidy(() => family.toHF(model.cfg, (n) => model.param(n)));
  try {
    for (const [name, t] of Object.entries(hf)) tensors[name] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
  } finally {
    // toHF may return parameters themselves (owned by the model): free only what it made
    const own = new Set(model.paramNames().map((n) => model.param(n)));
    for (const t of Object.values(hf)) if (!own.has(t)) t.dispose();
  }
  writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt', ...opts.metadata }));
  const config = { ...family.hfConfig(model.cfg), _name_or_path: model.cfg.model_name, dtype: 'float32' };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (model.tokenizer instanceof HFTokenizer) {
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(model.tokenizer.json));
    if (Object.keys(model.tokenizer.config).length) writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(model.tokenizer.config, null, 2));
  }
}
