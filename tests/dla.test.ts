/**
 * DLA: the components (embeddings, every head, b_O, MLPs, the constant term) add up to the logit
 * (difference) the run computed, on every fixture family and on a model without a final norm; a head's
 * term equals a hand computation from its cached result and the final norm's scale.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { directLogitAttribution, dlaPerHead, dlaPerLayer, headDla } from '../src/interp/attribution/dla.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES, fixtureModels } from './helpers.js';

const TOKENS = [
  [3, 14, 15, 92, 65, 35],
  [2, 71, 82, 81, 82, 84],
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function rowSums(l: ReturnType<typeof directLogitAttribution>): number[] {
  const [b, n] = l.shape;
  return Array.from({ length: b }, (_, i) => l.values.slice(i * n, (i + 1) * n).reduce((s, v) => s + v, 0));
}

describe('directLogitAttribution', () => {
  for (const name of fixtureModels()) {
    it(`directLogitAttribution on ${name}: components sum to the logit difference within 1e-4`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      for (const wrong of [[9, 40], undefined]) {
        const dla = directLogitAttribution(model, TOKENS, { answer: [5, 7], wrong, pos: 4 });
        const sums = rowSums(dla);
        const logit = dla.meta.logit as number[];
        sums.forEach((s, i) => expect(Math.abs(s - logit[i]), `${name} prompt ${i}`).toBeLessThan(1e-4));
        expect(Math.max(...dla.values.map(Math.abs))).toBeGreaterThan(1e-3);
      }
      model.dispose();
    });
  }

  it('directLogitAttribution without a final norm (attention-only, normalization null) is exact and linear', () => {
    const model = HookedTransformer.random(
      makeConfig({ d_model: 16, n_layers: 2, n_heads: 2, d_head: 8, d_vocab: 100, n_ctx: 8, attn_only: true, normalization_type: null }),
      { seed: 2, std: 0.3 },
    );
    const dla = directLogitAttribution(model, TOKENS, { answer: 5, wrong: 9 });
    rowSums(dla).forEach((s, i) => expect(Math.abs(s - (dla.meta.logit as number[])[i])).toBeLessThan(1e-4));
    expect(dla.axes[1].labels).toEqual(['embed', 'pos_embed', 'L0H0', 'L0H1', 'L0.b_O', 'L1H0', 'L1H1', 'L1.b_O', 'bias']);
    model.dispose();
  });

  it("a head's DLA equals centre(result) / ln_final scale · w · (W_U[answer] − W_U[wrong]) by hand (gpt2)", async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const dla = directLogitAttribution(model, TOKENS, { answer: 5, wrong: 9, pos: 2 });
    const { logits, cache } = model.runWithCache(TOKENS, { names: [actName('result', 1), 'ln_final.hook_scale'] });
    const r = cache.get(actName('result', 1)).arraySync() as number[][][][];
    const scale = cache.get('ln_final.hook_scale').arraySync() as number[][][];
    const w = model.param('ln_final.w').arraySync() as number[];
    const WU = model.param('unembed.W_U').arraySync() as number[][];
    const x = r[1][2][3];
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const hand = x.reduce((s, v, j) => s + ((v - mean) / scale[1][2][0]) * w[j] * (WU[j][5] - WU[j][9]), 0);
    expect(dla.at('1', 'L1H3')).toBeCloseTo(hand, 5);
    cache.dispose();
    logits.dispose();
    const perHead = dlaPerHead(model, TOKENS, { answer: 5, wrong: 9, pos: 2 });
    expect(perHead.shape).toEqual([2, 4]);
    expect(perHead.get(1, 3)).toBeCloseTo((dla.at('0', 'L1H3') + dla.at('1', 'L1H3')) / 2, 6);
    const perLayer = dlaPerLayer(model, TOKENS, { answer: 5, wrong: 9, pos: 2 });
    const total = perLayer.values.reduce((s, v) => s + v, 0) + (perLayer.meta.embeddingsAndBias as number);
    expect(total).toBeCloseTo(((dla.meta.logit as number[])[0] + (dla.meta.logit as number[])[1]) / 2, 4);
    expect(() => directLogitAttribution(model, TOKENS, { answer: 999 })).toThrow(HeadlensError);
    expect(() => directLogitAttribution(model, TOKENS, { answer: 5, pos: 6 })).toThrow(HeadlensError);
    model.dispose();
  });

  for (const name of ['gpt2', 'llama-gqa']) {
    it(`headDla(model, tokens, pos, targets) on ${name} is directLogitAttribution's head column for each target`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const { n_layers, n_heads } = model.cfg;
      const per = headDla(model, TOKENS[1], 3, [5, 9]); // [layer][head][target]
      expect([per.length, per[0].length, per[0][0].length]).toEqual([n_layers, n_heads, 2]);
      [5, 9].forEach((t, k) => {
        const dla = directLogitAttribution(model, [TOKENS[1]], { answer: t, pos: 3 });
        for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) expect(per[l][h][k]).toBeCloseTo(dla.at('0', `L${l}H${h}`), 6);
      });
      model.dispose();
    });
  }

  it('directLogitAttribution / dlaPerHead / dlaPerLayer / headDla, 20 times, leave numTensors unchanged', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
    const once = () => {
      directLogitAttribution(model, TOKENS, { answer: 5, wrong: 9 });
      dlaPerHead(model, TOKENS, { answer: 5 });
      dlaPerLayer(model, TOKENS, { answer: 5, wrong: 6 });
      headDla(model, TOKENS[0], 3, [5, 9]);
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) once();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
