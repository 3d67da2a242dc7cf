/**
 * loadFromFiles: a model from its files in memory (what the explorer page does with fetch or a file picker)
 * computes exactly what loadPretrained's model computes from the same folder, leaks nothing when disposed,
 * and refuses bad files with the same messages.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { loadPretrained, ZOO_DIR } from '../src/loading/load.js';
import { loadFromFiles, type ModelFiles } from '../src/loading/load_files.js';

const DIR = path.join(ZOO_DIR, 'toy-lm');
let files: ModelFiles;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const read = (f: string) => readFileSync(path.join(DIR, f), 'utf8');
  files = { name: 'toy-lm', config: read('config.json'), weights: new Uint8Array(readFileSync(path.join(DIR, 'model.safetensors'))), tokenizer: read('tokenizer.json') };
});

describe('loadFromFiles', () => {
  it('builds the model loadPretrained builds from the same folder: same logits, same tokens', async () => {
    const a = loadFromFiles(files);
    const b = await loadPretrained(DIR);
    try {
      const text = 'When Mary and John went to the store, John gave a drink to';
      expect(a.toTokens(text)).toEqual(b.toTokens(text));
      const [la, lb] = [a, b].map((m) => m.forward(m.toTokens(text)));
      expect(Array.from(la.dataSync())).toEqual(Array.from(lb.dataSync()));
      tf.dispose([la, lb]);
      expect(a.cfg).toEqual(b.cfg);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('leaves tf.memory().numTensors where it was once the model is disposed, also when it refuses the files', () => {
    loadFromFiles(files).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) loadFromFiles(files).dispose();
    expect(() => loadFromFiles({ ...files, tokenizer: '{"model": 3' })).toThrow(/tokenizer.json is not valid JSON/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an unsupported model_type, a config that is not JSON, and weights that do not match, naming the file', () => {
    expect(() => loadFromFiles({ ...files, config: { model_type: 't5' } })).toThrow(/toy-lm\/config.json: model_type "t5" is not supported/);
    expect(() => loadFromFiles({ ...files, config: '{oops' })).toThrow(/toy-lm\/config.json is not valid JSON/);
    const cfg = JSON.parse(files.config as string);
    expect(() => loadFromFiles({ ...files, config: { ...cfg, n_layer: 5 } })).toThrow(/does not match its config.json: missing tensor h.4/);
  });
});
