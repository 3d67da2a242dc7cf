/**
 * The model's own pieces, as analysis asks for them: model.applyNorm, model.unembed and model.applyMlp give
 * what the forward pass computed at the matching hook points, on LayerNorm (gpt2, neox-sequential,
 * pythia-parallel) and RMSNorm (llama-gqa) fixtures; misuse is a HeadlensError; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { headlensError } from './expect_error.js';
import { FIXTURES } from './helpers.js';

const TOKENS = [
  [3, 14, 15, 92, 65, 35],
  [2, 71, 82, 81, 82, 84],
];
const FAMILIES = ['gpt2', 'neox-sequential', 'pythia-parallel', 'llama-gqa'];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** Largest absolute difference of two same-shape tensors (shapes checked). */
function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

describe('model.applyNorm, model.unembed, model.applyMlp', () => {
  for (const name of FAMILIES) {
    it(`on ${name}: applyNorm, unembed and applyMlp reproduce the run's ln_final, ln1, logits and mlp_out within 1e-5`, async () => {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const { cfg } = model;
      expect(cfg.normalization_type).toBe(name === 'llama-gqa' ? 'RMS' : 'LN');
      const { logits, cache } = model.runWithCache(TOKENS);
      const last = cache.get(actName('resid_post', cfg.n_layers - 1));
      const normed = cache.get(actName('normalized'));
      const check = (what: string, got: tf.Tensor, want: tf.Tensor, tol = 1e-5) => {
        expect(maxDiff(got, want), `${name}: ${what}`).toBeLessThan(tol);
        got.dispose();
      };
      check("applyNorm('ln_final', resid_post) = ln_final.hook_normalized", model.applyNorm('ln_final', last), normed);
      check('applyNorm with the cached ln_final.hook_scale = ln_final.hook_normalized', model.applyNorm('ln_final', last, { scale: cache.get(actName('scale')) }), normed);
      check('unembed(ln_final.hook_normalized) = logits', model.unembed(normed), logits, 1e-4);
      for (let l = 0; l < cfg.n_layers; l++) {
        check(`applyNorm('blocks.${l}.ln1', resid_pre) = ln1.hook_normalized`, model.applyNorm(`blocks.${l}.ln1`, cache.get(actName('resid_pre', l))), cache.get(actName('normalized', l, 'ln1')));
        // parallel blocks feed the MLP ln2(resid_pre), sequential ones ln2(resid_mid): either way its output is hook_mlp_out
        check(`applyMlp(${l}, ln2.hook_normalized) = hook_mlp_out`, model.applyMlp(l, cache.get(actName('normalized', l, 'ln2')) as tf.Tensor3D), cache.get(actName('mlp_out', l)));
      }
      // a norm applies to any leading axes: one position of one prompt [d_model] gives the same row
      const row = last.slice([1, 4, 0], [1, 1, -1]).reshape([cfg.d_model]);
      check('applyNorm on a [d_model] vector = its row of ln_final.hook_normalized', model.applyNorm('ln_final', row), normed.slice([1, 4, 0], [1, 1, -1]).reshape([cfg.d_model]));
      row.dispose();
      cache.dispose();
      logits.dispose();
      model.dispose();
    });
  }

  it('applyNorm on a model without norms returns a copy of its input', () => {
    const model = HookedTransformer.random(makeConfig({ d_model: 16, n_layers: 1, n_heads: 2, d_head: 8, d_vocab: 50, n_ctx: 8, attn_only: true, normalization_type: null }), { seed: 1 });
    const x = tf.randomNormal([2, 3, 16], 0, 1, 'float32', 4);
    const y = model.applyNorm('ln_final', x);
    expect(y).not.toBe(x);
    expect(maxDiff(x, y)).toBe(0);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('bad input to applyNorm, unembed and applyMlp is a HeadlensError that names the problem and the fix', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const x = tf.zeros([1, 2, model.cfg.d_model]);
    const wide = tf.zeros([1, 2, model.cfg.d_model + 1]);
    expect(headlensError(() => model.applyNorm('ln3', x)).message).toMatch(/'ln3' is not a norm.*ln_final/);
    expect(headlensError(() => model.applyNorm('blocks.7.ln1', x)).message).toMatch(/layer 7 is out of range \(2 layers\)/);
    expect(headlensError(() => model.applyNorm('ln_final', wide)).message).toMatch(/last axis must be d_model \(32\)/);
    expect(headlensError(() => model.unembed(wide)).message).toMatch(/unembed: x is \[1,2,33\].*d_model \(32\)/);
    expect(headlensError(() => model.applyMlp(2, x as tf.Tensor3D)).message).toMatch(/applyMlp: layer 2 is out of range/);
    expect(headlensError(() => model.applyMlp(0.5, x as tf.Tensor3D)).message).toMatch(/layer 0.5 is out of range/);
    const attnOnly = HookedTransformer.random(makeConfig({ d_model: 32, n_layers: 1, n_heads: 2, d_head: 16, d_vocab: 50, n_ctx: 8, attn_only: true }), { seed: 1 });
    expect(headlensError(() => attnOnly.applyMlp(0, x as tf.Tensor3D)).message).toMatch(/attention-only and has no MLPs/);
    tf.dispose([x, wide]);
    attnOnly.dispose();
    model.dispose();
  });

  it('applyNorm (with and without scale), unembed and applyMlp, called a second time, leave tf.memory().numTensors unchanged', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const x = tf.randomNormal([2, 3, model.cfg.d_model], 0, 1, 'float32', 7) as tf.Tensor3D;
    const scale = tf.ones([2, 3, 1]).mul(2);
    const once = () => {
      tf.dispose([model.applyNorm('ln_final', x), model.applyNorm('blocks.1.ln2', x, { scale }), model.unembed(x), model.applyMlp(1, x)]);
    };
    once(); // warm-up: the first call may allocate what lives for the process
    const before = tf.memory().numTensors;
    once();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, scale]);
    model.dispose();
  });
});
