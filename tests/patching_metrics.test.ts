/**
 * Metrics against hand arithmetic on small logits, and Labelled's indexing and JSON.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { Labelled } from '../src/interp/labelled.js';
import { klDivergence, logitDiff, logitOf, metricValue, normalized, probability } from '../src/interp/metrics.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

// [batch 2, pos 2, vocab 3]
const L = [
  [[0, 0, 0], [1, 2, 3]],
  [[5, 5, 5], [0.5, -1, 2]],
];

const vals = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

describe('metrics', () => {
  it('logitDiff(answer, wrong) reads the last position; per-prompt answers repeat over stacked rows', () => {
    const logits = tf.tensor3d(L);
    expect(vals(logitDiff(2, 0)(logits))).toEqual([2, 1.5]);
    expect(vals(logitDiff([2, 1], [0, 2])(logits))).toEqual([2, -3]);
    expect(vals(logitDiff(1, 0, { pos: 0 })(logits))).toEqual([0, 0]);
    expect(vals(logitOf(1)(logits))).toEqual([2, -1]);
    const stacked = tf.tensor3d([...L, ...L]);
    expect(vals(logitDiff([2, 1], [0, 2])(stacked))).toEqual([2, -3, 2, -3]);
    expect(metricValue(logitDiff(2, 0), logits)).toBeCloseTo(1.75, 6);
    [logits, stacked].forEach((t) => t.dispose());
  });

  it('probability(answer) is the softmax entry', () => {
    const logits = tf.tensor3d(L);
    const p = vals(probability(2)(logits));
    expect(p[0]).toBeCloseTo(Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3)), 6);
    expect(p[1]).toBeCloseTo(Math.exp(2) / (Math.exp(0.5) + Math.exp(-1) + Math.exp(2)), 6);
    logits.dispose();
  });

  it('klDivergence(reference) is 0 against itself and Σ p (log p − log q) otherwise', () => {
    const ref = tf.tensor3d(L);
    const other = tf.tensor3d([
      [[0, 0, 0], [0, 0, 0]],
      [[0, 0, 0], [0, 0, 0]],
    ]);
    const kl = klDivergence(ref);
    expect(vals(kl(ref)).every((v) => Math.abs(v) < 1e-6)).toBe(true);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    const p = [1, 2, 3].map((x) => Math.exp(x) / z);
    const hand = p.reduce((s, pi) => s + pi * (Math.log(pi) - Math.log(1 / 3)), 0);
    expect(vals(kl(other))[0]).toBeCloseTo(hand, 5);
    [ref, other].forEach((t) => t.dispose());
  });

  it('normalized(metric, clean, corrupted) maps corrupted to 0 and clean to 1', () => {
    const logits = tf.tensor3d(L);
    expect(vals(normalized(logitDiff(2, 0), 2, 1.5)(logits))).toEqual([1, 0]);
    expect(() => normalized(logitDiff(2, 0), 1, 1)).toThrow(HeadlensError);
    expect(() => logitDiff(7, 0)(logits)).toThrow(HeadlensError);
    logits.dispose();
  });

  it('metrics leave no tensors behind', () => {
    const logits = tf.tensor3d(L);
    const ms = [logitDiff(2, 0), probability(1), klDivergence(logits), normalized(logitOf(2), 3, 2)];
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) for (const m of ms) metricValue(m, logits);
    expect(tf.memory().numTensors).toBe(before);
    logits.dispose();
  });
});

describe('Labelled', () => {
  it('Labelled.get / at / top / toJSON round-trip', () => {
    const l = new Labelled([{ name: 'layer', labels: ['0', '1'] }, { name: 'head', labels: ['H0', 'H1', 'H2'] }], Float64Array.from([1, 2, 3, 4, -9, 6]), { component: 'x' });
    expect(l.get(1, 1)).toBe(-9);
    expect(l.at('0', 'H2')).toBe(3);
    expect(l.top(2)).toEqual([{ labels: ['1', 'H1'], value: -9 }, { labels: ['1', 'H2'], value: 6 }]);
    expect(l.toArray()).toEqual([[1, 2, 3], [4, -9, 6]]);
    const back = Labelled.fromJSON(JSON.parse(JSON.stringify(l)));
    expect(back.get(0, 1)).toBe(2);
    expect(back.meta).toEqual({ component: 'x' });
    const t = l.toTensor();
    expect(t.shape).toEqual([2, 3]);
    t.dispose();
    expect(() => l.get(2, 0)).toThrow(HeadlensError);
  });
});
