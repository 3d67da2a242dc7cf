/**
 * Logit lens: the last entry is the model's own logits; the first is the embedding decoded by hand,
 * through the final LayerNorm or RMSNorm (default) or straight through W_U.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { logitLens, logitLensSummary } from '../src/interp/attribution/logit_lens.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

const TOKENS = [
  [3, 14, 15, 92, 65],
  [2, 71, 82, 81, 82],
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('logitLens', () => {
  for (const name of ['gpt2', 'llama-gqa']) {
    it(`logitLens(${name}) ends with the model's logits and starts with the embedding decoded by hand`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const { cfg } = model;
      const lens = logitLens(model, TOKENS, { pos: 3 });
      expect(lens.shape).toEqual([cfg.n_layers + 1, 2, cfg.d_vocab]);
      const logits = model.forward(TOKENS);
      const last = tf.tidy(() => logits.slice([0, 3, 0], [-1, 1, -1]).reshape([2, cfg.d_vocab]));
      const final = tf.tidy(() => lens.slice([cfg.n_layers, 0, 0], [1, -1, -1]).reshape([2, cfg.d_vocab]));
      expect(tf.tidy(() => last.sub(final).abs().max().dataSync()[0])).toBeLessThan(1e-5);

      // entry 0 by hand: x = W_E[token] (+ W_pos[3]); norm with x's own statistics; · W_U + b_U
      const WE = model.param('embed.W_E').arraySync() as number[][];
      const Wpos = cfg.positional_embedding_type === 'standard' ? (model.param('pos_embed.W_pos').arraySync() as number[][]) : undefined;
      const w = model.param('ln_final.w').arraySync() as number[];
      const b = cfg.normalization_type === 'LN' ? (model.param('ln_final.b').arraySync() as number[]) : undefined;
      const WU = model.param('unembed.W_U').arraySync() as number[][];
      const bU = model.param('unembed.b_U').arraySync() as number[];
      const raw = logitLens(model, TOKENS, { pos: 3, applyFinalNorm: false });
      const got = lens.arraySync() as number[][][];
      const gotRaw = raw.arraySync() as number[][][];
      let worst = 0;
      for (let bi = 0; bi < 2; bi++) {
        const x = WE[TOKENS[bi][3]].map((v, j) => v + (Wpos ? Wpos[3][j] : 0));
        const d = x.length;
        const mean = b ? x.reduce((s, v) => s + v, 0) / d : 0;
        const c = x.map((v) => v - mean);
        const sd = Math.sqrt(c.reduce((s, v) => s + v * v, 0) / d + cfg.eps);
        const n = c.map((v, j) => (v / sd) * w[j] + (b ? b[j] : 0));
        for (let t = 0; t < cfg.d_vocab; t += 7) {
          const dec = (y: number[]) => y.reduce((s, v, j) => s + v * WU[j][t], 0) + bU[t];
          worst = Math.max(worst, Math.abs(dec(n) - got[0][bi][t]), Math.abs(dec(x) - gotRaw[0][bi][t]));
        }
      }
      expect(worst).toBeLessThan(1e-4);
      [lens, raw, logits, last, final].forEach((t) => t.dispose());
      model.dispose();
    });
  }

  it('logitLensSummary gives top tokens and the answer rank per layer; final rank 0 for the argmax', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const lens = logitLens(model, [TOKENS[0]]);
    const best = tf.tidy(() => lens.slice([model.cfg.n_layers, 0, 0], [1, 1, -1]).reshape([-1]).argMax().dataSync()[0]);
    lens.dispose();
    const rows = logitLensSummary(model, [TOKENS[0]], { answer: best, topK: 3 });
    expect(rows.map((r) => r.layer)).toEqual(['resid_pre 0', 'resid_pre 1', 'final']);
    expect(rows[2].top[0].id).toBe(best);
    expect(rows[2].answerRank).toBe(0);
    expect(rows[0].top.length).toBe(3);
    expect(JSON.parse(JSON.stringify(rows))).toEqual(rows);
    expect(() => logitLens(model, TOKENS, { pos: 5 })).toThrow(HeadlensError);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      logitLens(model, TOKENS, { applyFinalNorm: i % 2 === 0 }).dispose();
      logitLensSummary(model, TOKENS, { answer: [1, 2] });
    }
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
