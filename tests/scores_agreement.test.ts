/**
 * How far the teacher-forced retrieval score (one forward pass on the reference answer) agrees with the exact
 * one (greedy decoding, Wu et al.): on planted models whose weights are perturbed with seeded noise, so that
 * copying is imperfect, some trials fail the gate and other heads pick up scores. The numbers are printed
 * (they go in the report); the test asserts what the variant is for: the same retrieval heads (> 0.1).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { retrievalHeads, retrievalScores, retrievalScoresTeacherForced } from '../src/interp/scores/retrieval.js';
import { plantedNeedleTrials as needleTrials, plantedModel } from '../src/zoo/planted.js';

let models: HookedTransformer[] = [];
const NOISE = [0.1, 0.12, 0.13, 0.14];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  models = NOISE.map((std, i) => {
    const m = plantedModel();
    const upd: Record<string, tf.Tensor> = {};
    let seed = 100 + 10 * i;
    for (const n of m.paramNames()) if (/attn\.W_[KV]$/.test(n)) upd[n] = tf.tidy(() => m.param(n).add(tf.randomNormal(m.param(n).shape, 0, std, 'float32', seed++)));
    m.setParams(upd);
    return m;
  });
});
afterAll(() => models.forEach((m) => m.dispose()));

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const [ma, mb] = [a.reduce((x, y) => x + y, 0) / n, b.reduce((x, y) => x + y, 0) / n];
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < n; i++) (sab += (a[i] - ma) * (b[i] - mb)), (saa += (a[i] - ma) ** 2), (sbb += (b[i] - mb) ** 2);
  return sab / Math.sqrt(saa * sbb);
}

describe('retrieval: teacher-forced against decoding', () => {
  it.each(NOISE.map((std, i) => ({ std, i })))('on the planted model with noise std $std the two variants name the same retrieval heads', ({ i }) => {
    const trials = needleTrials();
    const exact = retrievalScores(models[i], trials, { maxNewTokens: 4 });
    const forced = retrievalScoresTeacherForced(models[i], trials);
    const [a, b] = [exact.scores.flat(), forced.scores.flat()];
    const maxDiff = Math.max(...a.map((x, j) => Math.abs(x - b[j])));
    console.log(`noise ${NOISE[i]}: counted exact ${JSON.stringify(exact.counted)} forced ${JSON.stringify(forced.counted)}; pearson ${pearson(a, b).toFixed(4)}; max |diff| ${maxDiff.toFixed(4)}; exact ${JSON.stringify(exact.scores)} forced ${JSON.stringify(forced.scores)}`);
    expect(retrievalHeads(forced.scores).map((h) => [h.layer, h.head])).toEqual(retrievalHeads(exact.scores).map((h) => [h.layer, h.head]));
  });
});
