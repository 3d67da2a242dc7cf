import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { loadPretrained } from '../src/loading/load.js';
import { saveModel } from '../src/loading/save.js';
import { FIXTURES, reference } from './helpers.js';
import os from 'node:os';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function inputs(name: string): number[][] {
  const ref = reference(name);
  const [batch, pos] = ref.info('input_ids').shape;
  const ids = ref.int32('input_ids');
  return Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * pos, (b + 1) * pos)));
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

describe.each(['gpt2', 'pythia-parallel', 'neox-sequential'])('weight processing of a LayerNorm model: %s', (name) => {
  it('foldLayerNorm + centerWritingWeights leave logits unchanged; centerUnembed leaves log-probs unchanged', async () => {
    const dir = path.join(FIXTURES, name);
    const plain = await loadPretrained(dir);
    const folded = await loadPretrained(dir, { processing: { foldLayerNorm: true, centerWritingWeights: true } });
    const unembedCentred = await loadPretrained(dir, { processing: { foldLayerNorm: true, centerWritingWeights: true, centerUnembed: true } });
    const toks = inputs(name);
    const a = plain.forward(toks);
    const b = folded.forward(toks);
    const c = unembedCentred.forward(toks);
    const dLogits = maxDiff(a, b);
    const dLogProbs = tf.tidy(() => maxDiff(tf.logSoftmax(a), tf.logSoftmax(c)));
    console.log(`${name}: fold+centre max |Δlogit| ${dLogits.toExponential(2)}; +centre unembed max |Δlog p| ${dLogProbs.toExponential(2)}`);
    expect(dLogits).toBeLessThan(1e-4);
    expect(dLogProbs).toBeLessThan(1e-4);
    // centring the unembedding does move the logits themselves: the check above is not vacuous
    expect(maxDiff(a, c)).toBeGreaterThan(1e-3);
    // and folding changed the weights it claims to change
    expect(maxDiff(plain.param('blocks.0.attn.W_Q'), folded.param('blocks.0.attn.W_Q'))).toBeGreaterThan(1e-3);
    expect(Array.from(folded.param('blocks.0.ln1.w').dataSync()).every((x) => x === 1)).toBe(true);
    for (const t of [a, b, c]) t.dispose();
    for (const m of [plain, folded, unembedCentred]) m.dispose();
  });
});

describe.each(['llama-gqa', 'llama-mqa-tied-bias-bf16', 'qwen2'])('weight processing of an RMSNorm model: %s', (name) => {
  it('foldLayerNorm leaves logits unchanged and centerWritingWeights is refused', async () => {
    const dir = path.join(FIXTURES, name);
    const plain = await loadPretrained(dir);
    const folded = await loadPretrained(dir, { processing: { foldLayerNorm: true } });
    const toks = inputs(name);
    const a = plain.forward(toks);
    const b = folded.forward(toks);
    const d = maxDiff(a, b);
    console.log(`${name}: fold max |Δlogit| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
    await expect(loadPretrained(dir, { processing: { centerWritingWeights: true } })).rejects.toThrow(/needs LayerNorm/);
    a.dispose();
    b.dispose();
    plain.dispose();
    folded.dispose();
  });
});

describe('processed models', () => {
  it('saveModel refuses a processed model and folding twice is refused', async () => {
    const m = await loadPretrained(path.join(FIXTURES, 'gpt2'), { processing: { foldLayerNorm: true } });
    await expect(saveModel(m, path.join(os.tmpdir(), 'headlens-never'))).rejects.toThrow(HeadlensError);
    const { foldLayerNorm } = await import('../src/model/weight_processing.js');
    expect(() => foldLayerNorm(m)).toThrow(/already applied/);
    m.dispose();
  });
});
