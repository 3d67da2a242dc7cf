/**
 * A head's QK and OV circuits from a loaded checkpoint, against numpy's singular values of the same
 * products cut out of the HF checkpoint by tests/fixtures/make_numpy_fixtures.py (its own safetensors
 * reader and per-family slicing: nothing of headlens' converters), and the full circuits against tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { fullOVCircuit, fullQKCircuit, headWeights, kvHead, ovCircuit, qkCircuit } from '../src/interp/weights/head_circuits.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

interface HeadSvd { layer: number; head: number; qk: number[]; ov: number[] }
const NUMPY = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'head_svd.json'), 'utf8')) as Record<string, { heads: HeadSvd[] }>;

const models = new Map<string, HookedTransformer>();

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of Object.keys(NUMPY)) models.set(name, await loadPretrained(path.join(FIXTURES, name)));
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

/** Worst relative error of the first d_head singular values (the rest are zero: rank ≤ d_head). */
function worstRelative(got: Float64Array, want: number[], dHead: number): number {
  expect(got.length).toBe(dHead);
  let worst = 0;
  for (let i = 0; i < dHead; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / want[i]);
  return worst;
}

describe('qkCircuit and ovCircuit', () => {
  it.each(Object.keys(NUMPY))('qkCircuit / ovCircuit on %s give numpy’s singular values of W_Q·W_Kᵀ and W_V·W_O to 1e-4 relative', (name) => {
    const model = models.get(name)!;
    const e = model.cfg.d_head;
    for (const { layer, head, qk, ov } of NUMPY[name].heads) {
      expect(worstRelative(qkCircuit(model, layer, head).singularValues(), qk, e), `${name} L${layer}H${head} qk`).toBeLessThan(1e-4);
      expect(worstRelative(ovCircuit(model, layer, head).singularValues(), ov, e), `${name} L${layer}H${head} ov`).toBeLessThan(1e-4);
      // numpy's values past d_head are rounding noise: the circuits really have rank ≤ d_head
      expect(qk[e] ?? 0).toBeLessThan(1e-12 * qk[0]);
    }
  });

  it('kvHead maps query heads to their key/value group under GQA (8 heads over 2) and MQA', () => {
    const gqa = models.get('llama-gqa')!;
    expect(Array.from({ length: 8 }, (_, h) => kvHead(gqa, h))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    const mqa = models.get('llama-mqa-tied-bias-bf16')!;
    expect(Array.from({ length: 4 }, (_, h) => kvHead(mqa, h))).toEqual([0, 0, 0, 0]);
    const w0 = headWeights(gqa, 1, 0);
    expect(headWeights(gqa, 1, 3).W_K.data).toEqual(w0.W_K.data);
    expect(headWeights(gqa, 1, 4).W_K.data).not.toEqual(w0.W_K.data);
  });

  it('fullOVCircuit and fullQKCircuit equal W_E·OV·W_U and W_E·QK·W_Eᵀ computed densely by tfjs (1e-4)', () => {
    const model = models.get('gpt2')!;
    const ov = fullOVCircuit(model, 1, 2);
    const qk = fullQKCircuit(model, 0, 1);
    expect(ov.shape).toEqual([257, 257]);
    expect(ov.inner).toBe(8);
    const [refOV, refQK] = tf.tidy(() => {
      const E = model.param('embed.W_E') as tf.Tensor2D;
      const U = model.param('unembed.W_U') as tf.Tensor2D;
      const a = E.matMul(model.param('blocks.1.attn.W_V').gather(2).matMul(model.param('blocks.1.attn.W_O').gather(2) as tf.Tensor2D)).matMul(U);
      const b = E.matMul(model.param('blocks.0.attn.W_Q').gather(1) as tf.Tensor2D)
        .matMul(E.matMul(model.param('blocks.0.attn.W_K').gather(1) as tf.Tensor2D), false, true);
      return [a.dataSync(), b.dataSync()];
    });
    const dOV = ov.dense().data;
    const dQK = qk.dense().data;
    let worst = 0;
    for (let i = 0; i < dOV.length; i++) worst = Math.max(worst, Math.abs(dOV[i] - refOV[i]), Math.abs(dQK[i] - refQK[i]));
    expect(worst).toBeLessThan(1e-4);
  });

  it('qkCircuit(model, 2, 0) on a 2-layer model is a HeadlensError naming the layers', () => {
    const model = models.get('gpt2')!;
    expect(() => qkCircuit(model, 2, 0)).toThrow(HeadlensError);
    expect(() => qkCircuit(model, 2, 0)).toThrow(/use 0\.\.1/);
    expect(() => ovCircuit(model, 0, 4)).toThrow(/head 4 is not a head/);
  });

  it('qkCircuit, ovCircuit, fullOVCircuit and fullQKCircuit, 100 times, leave numTensors unchanged', () => {
    const model = models.get('llama-gqa')!;
    const run = () => {
      qkCircuit(model, 1, 5).singularValues();
      ovCircuit(model, 0, 2).singularValues();
      fullOVCircuit(model, 1, 7).eigenvalues();
      fullQKCircuit(model, 0, 0).frobeniusNorm();
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
