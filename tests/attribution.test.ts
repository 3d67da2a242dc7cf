/**
 * Attribution patching against real patching: exact where the metric is linear in the patched
 * activation (last-layer heads of a model without a final norm), and correlated ≥ 0.9 over all heads and
 * over all residual positions on fixtures when the corruption is small.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer, type FwdHook } from '../src/hooks/hooked_transformer.js';
import { attributionPatching } from '../src/interp/interventions/attribution_patching.js';
import { logitDiff, metricValue } from '../src/interp/metrics.js';
import { activationPatching, patchSites, type PatchSite } from '../src/interp/interventions/patching.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

const CLEAN = [
  [10, 20, 30, 40, 50, 60],
  [11, 21, 31, 41, 51, 61],
];
const metric = logitDiff([7, 8], [9, 12]);

let noNorm: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  noNorm = HookedTransformer.random(
    makeConfig({ d_model: 16, n_layers: 2, n_heads: 4, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: null }),
    { seed: 4, std: 0.4 },
  );
});
afterAll(() => noNorm.dispose());

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  const ma = Array.from(a).reduce((s, v) => s + v, 0) / n;
  const mb = Array.from(b).reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

describe('attributionPatching', () => {
  it("attributionPatching('head-out') of last-layer heads equals real patching exactly when the metric is linear (no final norm)", () => {
    const corrupted = [
      [10, 20, 33, 40, 50, 60],
      [11, 22, 31, 41, 51, 61],
    ];
    for (const direction of ['noising', 'denoising'] as const) {
      const real = activationPatching(noNorm, 'head-out', { clean: CLEAN, corrupted, metric, direction, byPos: false });
      const attr = attributionPatching(noNorm, 'head-out', { clean: CLEAN, corrupted, metric, direction });
      const base = (direction === 'noising' ? real.meta.clean : real.meta.corrupted) as number;
      expect(attr.meta.baseline as number).toBeCloseTo(base, 5);
      for (let h = 0; h < 4; h++) expect(Math.abs(attr.get(1, h) - (real.get(1, h) - base)), `${direction} H${h}`).toBeLessThan(1e-4);
      expect(Math.max(...[0, 1, 2, 3].map((h) => Math.abs(attr.get(1, h))))).toBeGreaterThan(1e-2);
    }
  });

  for (const name of ['gpt2', 'llama-gqa']) {
    it(`attributionPatching correlates ≥ 0.9 with real noising patching on ${name} for a small corruption (heads and resid_pre by position)`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const noise = tf.randomNormal([2, 6, model.cfg.d_model], 0, 0.02, 'float32', 7);
      const corruptHooks: FwdHook[] = [['hook_embed', (x) => x.add(noise)]];
      const names = Array.from({ length: model.cfg.n_layers }, (_, l) => [actName('z', l), actName('resid_pre', l)]).flat();
      const { logits, cache } = model.runWithCache(CLEAN, { names, fwdHooks: corruptHooks });
      logits.dispose();
      const cleanLogits = model.forward(CLEAN);
      const clean = metricValue(metric, cleanLogits);
      cleanLogits.dispose();
      const headSites: PatchSite[] = [];
      const residSites: PatchSite[] = [];
      for (let l = 0; l < model.cfg.n_layers; l++) {
        for (let h = 0; h < model.cfg.n_heads; h++) headSites.push({ name: actName('z', l), head: h });
        for (let p = 0; p < 6; p++) residSites.push({ name: actName('resid_pre', l), pos: p });
      }
      const realHeads = patchSites(model, CLEAN, cache, headSites, metric).map((v) => v - clean);
      const realResid = patchSites(model, CLEAN, cache, residSites, metric).map((v) => v - clean);
      cache.dispose();
      const corrupted = { tokens: CLEAN, fwdHooks: corruptHooks };
      const heads = attributionPatching(model, 'head-out', { clean: CLEAN, corrupted, metric });
      const resid = attributionPatching(model, 'resid-pre', { clean: CLEAN, corrupted, metric });
      expect(heads.shape).toEqual([model.cfg.n_layers, model.cfg.n_heads]);
      expect(pearson(heads.values, realHeads)).toBeGreaterThanOrEqual(0.9);
      expect(pearson(resid.values, realResid)).toBeGreaterThanOrEqual(0.9);
      noise.dispose();
      model.dispose();
    });
  }

  it('attributionPatching covers every component under GQA and MQA; bad components are HeadlensErrors; no leaks', async () => {
    const corrupted = [
      [10, 20, 33, 40, 50, 60],
      [11, 22, 31, 41, 51, 61],
    ];
    for (const name of ['llama-gqa', 'llama-mqa-tied-bias-bf16']) {
      const model = await loadPretrained(path.join(FIXTURES, name));
      for (const c of ['resid-pre', 'resid-mid', 'resid-post', 'attn-out', 'mlp-out', 'head-out', 'head-q', 'head-k', 'head-v', 'head-pattern'] as const) {
        const r = attributionPatching(model, c, { clean: CLEAN, corrupted, metric, byPos: true });
        const nH = c === 'head-k' || c === 'head-v' ? model.cfg.n_key_value_heads : model.cfg.n_heads;
        expect(r.shape, c).toEqual(c.startsWith('head-') ? [2, 6, nH] : [2, 6]);
        expect(r.values.every(Number.isFinite), c).toBe(true);
      }
      model.dispose();
    }
    expect(() => attributionPatching(noNorm, 'mlp-out', { clean: CLEAN, corrupted, metric })).toThrow(HeadlensError);
    expect(() => attributionPatching(noNorm, 'x' as never, { clean: CLEAN, corrupted, metric })).toThrow(HeadlensError);
    const once = () => {
      attributionPatching(noNorm, 'head-out', { clean: CLEAN, corrupted, metric });
      attributionPatching(noNorm, 'head-pattern', { clean: CLEAN, corrupted, metric, direction: 'denoising', byPos: true });
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) once();
    expect(tf.memory().numTensors).toBe(before);
  });
});
