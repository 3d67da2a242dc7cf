/**
 * Attention rollout against a hand computation from the cached patterns: mean over heads, 0.5·A + 0.5·I,
 * rows renormalised, multiplied through the layers.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { attentionRollout, rolloutFromPatterns } from '../src/interp/attribution/attention_rollout.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

const TOKENS = [[3, 14, 15, 92, 65]];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function matmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}

describe('attentionRollout', () => {
  for (const name of ['gpt2', 'llama-gqa']) {
    it(`attentionRollout(${name}) equals the hand product of (0.5·mean_h A + 0.5·I), rows renormalised`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const { n_layers, n_heads } = model.cfg;
      const { logits, cache } = model.runWithCache(TOKENS, { names: Array.from({ length: n_layers }, (_, l) => actName('pattern', l)) });
      const n = TOKENS[0].length;
      let hand: number[][] | undefined;
      for (let l = 0; l < n_layers; l++) {
        const p = cache.get(actName('pattern', l)).arraySync() as number[][][][];
        let a = Array.from({ length: n }, (_, q) => Array.from({ length: n }, (_, k) => {
          let s = 0;
          for (let h = 0; h < n_heads; h++) s += p[0][h][q][k];
          return 0.5 * (s / n_heads) + (q === k ? 0.5 : 0);
        }));
        a = a.map((row) => row.map((v) => v / row.reduce((s, x) => s + x, 0)));
        hand = hand ? matmul(a, hand) : a;
      }
      const got = attentionRollout(model, TOKENS);
      const g = got.arraySync() as number[][][];
      let worst = 0;
      for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(g[0][q][k] - hand![q][k]));
      expect(worst).toBeLessThan(1e-6);
      for (let q = 0; q < n; q++) expect(g[0][q].reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
      expect(g[0][0][3]).toBe(0); // causal: nothing flows back from the future
      got.dispose();
      cache.dispose();
      logits.dispose();
      model.dispose();
    });
  }

  it('rolloutFromPatterns with residualWeight 0 multiplies raw patterns; bad input is a HeadlensError; no leaks', async () => {
    const a = tf.tensor4d([[[[1, 0], [0.25, 0.75]]]]);
    const b = tf.tensor4d([[[[1, 0], [0.5, 0.5]]]]);
    const r = rolloutFromPatterns([a, b], 0);
    // B·A = [[1, 0], [0.5·1 + 0.5·0.25, 0.5·0.75]]
    expect(r.arraySync()).toEqual([[[1, 0], [0.625, 0.375]]]);
    r.dispose();
    expect(() => rolloutFromPatterns([])).toThrow(HeadlensError);
    expect(() => rolloutFromPatterns([a], 2)).toThrow(HeadlensError);
    const model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    expect(() => attentionRollout(model, TOKENS, { startLayer: 2 })).toThrow(HeadlensError);
    attentionRollout(model, TOKENS).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) {
      attentionRollout(model, TOKENS, { startLayer: i % 2 }).dispose();
      rolloutFromPatterns([a, b]).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    [a, b].forEach((t) => t.dispose());
    model.dispose();
  });
});
