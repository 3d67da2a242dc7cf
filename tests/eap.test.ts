/**
 * Edge attribution against independent computations: exact equality with path patching where the
 * metric is linear (no final norm, attention-only), and central finite differences of the metric when
 * one reader's input alone is shifted along Δu (a head's query; an MLP's input) on LayerNorm models.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { edgeAttribution } from '../src/interp/interventions/eap.js';
import { logitDiff, metricValue } from '../src/interp/metrics.js';
import { pathPatch } from '../src/interp/interventions/path_patching.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

const CLEAN = [
  [10, 20, 30, 40, 50],
  [11, 21, 31, 41, 51],
];
const CORRUPTED = [
  [10, 25, 30, 40, 55],
  [13, 21, 31, 41, 51],
];
const metric = logitDiff([7, 8], [9, 12]);
let noNorm: HookedTransformer;
let gpt2: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  noNorm = HookedTransformer.random(
    makeConfig({ d_model: 16, n_layers: 2, n_heads: 3, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: null }),
    { seed: 8, std: 0.4 },
  );
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
});
afterAll(() => [noNorm, gpt2].forEach((m) => m.dispose()));

function cleanMetric(model: HookedTransformer): number {
  const logits = model.forward(CLEAN);
  const v = metricValue(metric, logits);
  logits.dispose();
  return v;
}

/** LayerNorm by its formula, with tf ops: [batch, pos, d] → [batch, pos, d]. */
function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const c = x.sub(x.mean(-1, true));
  return c.div(c.square().mean(-1, true).add(eps).sqrt()).mul(w).add(b);
}

describe('edgeAttribution', () => {
  it('edgeAttribution(head → logits) equals path patching exactly when the metric is linear, for EAP and EAP-IG', () => {
    const base = cleanMetric(noNorm);
    const eap = edgeAttribution(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const ig = edgeAttribution(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric, method: 'eap-ig', steps: 3 });
    expect(eap.scores.meta.baseline as number).toBeCloseTo(base, 5);
    for (const [l, h] of [[0, 0], [0, 2], [1, 1]]) {
      const exact = pathPatch(noNorm, [{ layer: l, head: h }], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric }) - base;
      expect(Math.abs(eap.scores.at(`L${l}H${h}`, 'logits') - exact), `L${l}H${h}`).toBeLessThan(1e-4);
      expect(Math.abs(ig.scores.at(`L${l}H${h}`, 'logits') - exact), `IG L${l}H${h}`).toBeLessThan(1e-4);
    }
    expect(Math.abs(eap.scores.at('L0H2', 'logits'))).toBeGreaterThan(1e-3);
  });

  it("edgeAttribution(head → a later head's query) matches a central finite difference of that query's input alone (gpt2)", () => {
    const eap = edgeAttribution(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [actName('z', 0), actName('resid_pre', 1)] });
    logits.dispose();
    const c2 = gpt2.runWithCache(CORRUPTED, { names: [actName('z', 0)] });
    c2.logits.dispose();
    const U = 0;
    const R = 2;
    const delta = tf.tidy(() => {
      const dz = c2.cache.get(actName('z', 0)).sub(cache.get(actName('z', 0))).slice([0, 0, U, 0], [-1, -1, 1, -1]).squeeze([2]); // [batch, pos, d_head]
      return tf.matMul(dz.reshape([-1, 8]), gpt2.param('blocks.0.attn.W_O').slice([U, 0, 0], [1, -1, -1]).reshape([8, 32])).reshape([2, 5, 32]);
    });
    const shifted = (eps: number) => {
      const q = tf.tidy(() => {
        const x = layerNorm(cache.get(actName('resid_pre', 1)).add(delta.mul(eps)), gpt2.param('blocks.1.ln1.w'), gpt2.param('blocks.1.ln1.b'), gpt2.cfg.eps);
        const WQ = gpt2.param('blocks.1.attn.W_Q').slice([R, 0, 0], [1, -1, -1]).reshape([32, 8]);
        return tf.matMul(x.reshape([-1, 32]), WQ).add(gpt2.param('blocks.1.attn.b_Q').slice([R, 0], [1, -1]).reshape([8])).reshape([2, 5, 1, 8]);
      });
      const out = gpt2.runWithHooks(CLEAN, {
        fwdHooks: [[actName('q', 1), (act) => tf.where(tf.tensor4d([0, 0, 1, 0], [1, 1, 4, 1]).cast('bool'), q.tile([1, 1, 4, 1]), act)]],
      });
      const v = metricValue(metric, out);
      [q, out].forEach((t) => t.dispose());
      return v;
    };
    const eps = 1e-2;
    const fd = (shifted(eps) - shifted(-eps)) / (2 * eps);
    const score = eap.scores.at(`L0H${U}`, `L1H${R}.q`);
    expect(Math.abs(fd)).toBeGreaterThan(1e-3);
    expect(Math.abs(score - fd)).toBeLessThan(0.02 * Math.abs(fd) + 1e-4);
    [delta].forEach((t) => t.dispose());
    cache.dispose();
    c2.cache.dispose();
  });

  it("edgeAttribution(embed → an MLP's input) matches a central finite difference of ln2's output alone (gpt2)", () => {
    const eap = edgeAttribution(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const a = gpt2.runWithCache(CLEAN, { names: ['hook_embed', actName('resid_mid', 1)] });
    const b = gpt2.runWithCache(CORRUPTED, { names: ['hook_embed'] });
    [a.logits, b.logits].forEach((t) => t.dispose());
    const delta = tf.tidy(() => b.cache.get('hook_embed').sub(a.cache.get('hook_embed')));
    const shifted = (eps: number) => {
      const n = tf.tidy(() => layerNorm(a.cache.get(actName('resid_mid', 1)).add(delta.mul(eps)), gpt2.param('blocks.1.ln2.w'), gpt2.param('blocks.1.ln2.b'), gpt2.cfg.eps));
      const out = gpt2.runWithHooks(CLEAN, { fwdHooks: [['blocks.1.ln2.hook_normalized', () => n.clone()]] });
      const v = metricValue(metric, out);
      [n, out].forEach((t) => t.dispose());
      return v;
    };
    const eps = 1e-2;
    const fd = (shifted(eps) - shifted(-eps)) / (2 * eps);
    expect(Math.abs(fd)).toBeGreaterThan(1e-4);
    expect(Math.abs(eap.scores.at('embed', 'L1.mlp') - fd)).toBeLessThan(0.02 * Math.abs(fd) + 1e-4);
    delta.dispose();
    a.cache.dispose();
    b.cache.dispose();
  });

  it('edgeAttribution labels key/value heads per group under GQA and MQA, keeps only forward edges, serialises to JSON; no leaks', async () => {
    const gqa = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
    const r = edgeAttribution(gqa, { clean: CLEAN, corrupted: CORRUPTED, metric, method: 'eap-ig', steps: 2 });
    const down = r.scores.axes[1].labels;
    expect(down.filter((l) => l.endsWith('.k'))).toEqual(['L0KV0.k', 'L0KV1.k', 'L1KV0.k', 'L1KV1.k']);
    expect(down.length).toBe(2 * (8 + 2 + 2 + 1) + 1);
    expect(r.scores.axes[0].labels.length).toBe(1 + 2 * (8 + 1));
    expect(r.scores.at('L1H0', 'L0H0.q')).toBe(0);
    expect(r.scores.at('L1H0', 'L1H1.q')).toBe(0); // same layer: no edge
    expect(r.edges.some((e) => e.from === 'L0.mlp' && e.to === 'L1KV1.v')).toBe(true);
    expect(r.edges.some((e) => e.from === 'L1H0' && e.to === 'L1.mlp')).toBe(true); // sequential block
    expect(r.edges.every((e) => Number.isFinite(e.score))).toBe(true);
    expect(JSON.parse(JSON.stringify(r)).edges.length).toBe(r.edges.length);
    const mqa = await loadPretrained(path.join(FIXTURES, 'llama-mqa-tied-bias-bf16'));
    const rm = edgeAttribution(mqa, { clean: CLEAN, corrupted: CORRUPTED, metric, method: 'eap-ig', steps: 2 });
    expect(rm.scores.axes[1].labels.filter((l) => /\.(k|v)$/.test(l))).toEqual(['L0KV0.k', 'L0KV0.v', 'L1KV0.k', 'L1KV0.v']);
    expect(rm.edges.every((e) => Number.isFinite(e.score))).toBe(true);
    mqa.dispose();
    const par = await loadPretrained(path.join(FIXTURES, 'pythia-parallel'));
    const rp = edgeAttribution(par, { clean: CLEAN, corrupted: CORRUPTED, metric });
    expect(rp.edges.some((e) => e.from === 'L1H0' && e.to === 'L1.mlp')).toBe(false); // parallel block
    expect(() => edgeAttribution(gqa, { clean: CLEAN, corrupted: CORRUPTED, metric, method: 'eap-ig', steps: 0 })).toThrow(HeadlensError);
    const once = () => {
      edgeAttribution(gqa, { clean: CLEAN, corrupted: CORRUPTED, metric });
      edgeAttribution(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric, method: 'eap-ig', steps: 2 });
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) once();
    expect(tf.memory().numTensors).toBe(before);
    gqa.dispose();
    par.dispose();
  });
});
