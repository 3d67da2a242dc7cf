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

export interface SaveOptions {
  metadata?: Record<string, string>;
  /**
   * Split the weights into shards of at most this many bytes each (a tensor larger than that gets a shard of its
   * own), written as transformers does: `model-00001-of-0000N.safetensors` and `model.safetensors.index.json`.
   * Default: one `model.safetensors`.
   */
  maxShardBytes?: number;
}

/** Writes the model; async because GPU tensors are read back asynchronously. */
export async function saveModel(model: Transformer & { tokenizer?: unknown }, dir: string, opts: SaveOptions = {}): Promise<void> {
  if (opts.maxShardBytes !== undefined && !(opts.maxShardBytes > 0)) {
    throw new HeadlensError(`saveModel: maxShardBytes ${opts.maxShardBytes} is not a positive number of bytes`, 'pass e.g. 5 * 2 ** 30, or leave it out for one file');
  }
  if (model.processing.length) {
    throw new HeadlensError(`this model's weights were processed (${model.processing.join(', ')}); saving them would not give the checkpoint back`, 'save before processing, or reload the checkpoint');
  }
  const family = familyForArchitecture(model.cfg.original_architecture);
  // first, so that a model its family's config cannot describe is refused before anything is written
  const config = { ...family.hfConfig(model.cfg), _name_or_path: model.cfg.model_name, dtype: 'float32' };
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
  if (opts.maxShardBytes === undefined) {
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt', ...opts.metadata }));
  } else {
    writeShards(dir, tensors, opts.maxShardBytes, opts.metadata);
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (model.tokenizer instanceof HFTokenizer) {
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(model.tokenizer.json));
    if (Object.keys(model.tokenizer.config).length) writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(model.tokenizer.config, null, 2));
  }
}

/** The tensors in shards of at most maxBytes (in the order given), and the index naming each tensor's shard. */
function writeShards(dir: string, tensors: Parameters<typeof encodeSafetensors>[0], maxBytes: number, metadata?: Record<string, string>): void {
  const shards: (typeof tensors)[] = [];
  let size = Infinity;
  let total = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data.length * 4;
    if (size + bytes > maxBytes) {
      shards.push({});
      size = 0;
    }
    shards[shards.length - 1][name] = t;
    size += bytes;
    total += bytes;
  }
  const n = shards.length;
  const weightMap: Record<string, string> = {};
  const pad = (i: number) => String(i).padStart(5, '0');
  shards.forEach((shard, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    for (const name of Object.keys(shard)) weightMap[name] = file;
    writeFileSync(path.join(dir, file), encodeSafetensors(shard, { format: 'pt', ...metadata }));
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
}
