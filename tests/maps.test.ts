/**
 * MAPS on a hand-built model: token embeddings are orthonormal rows (W_U = W_Eᵀ) and head L0H0 is built
 * so that attending to token s (s < 10) raises exactly the logit of token (s + 1) mod 10 by 1.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setHead } from './helpers.js';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { relationScore, relationScores, salientMappings, sourceEmbeddings } from '../src/interp/weights/maps.js';
import { randomNormal, transpose } from '../src/linalg/mat.js';
import { svd } from '../src/linalg/svd.js';
import { makeConfig } from '../src/model/config.js';

const D = 32;
const E = 16;
const V = 20;
const next: [number, number][] = Array.from({ length: 10 }, (_, s) => [s, (s + 1) % 10]);
const skip: [number, number][] = Array.from({ length: 10 }, (_, s) => [s, (s + 2) % 10]);

let model: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const cfg = makeConfig({ d_model: D, n_layers: 1, n_heads: 2, d_head: E, d_vocab: V, n_ctx: 8, attn_only: true });
  model = HookedTransformer.random(cfg, { seed: 3, std: 0.3 });
  // orthonormal token embeddings: E·Eᵀ = I
  const emb = transpose(svd(randomNormal(D, V, 17)).U); // [vocab, d_model]
  const at = (t: number, k: number) => emb.data[t * D + k];
  model.setParams({
    'embed.W_E': tf.tensor2d(Float32Array.from(emb.data), [V, D]),
    'unembed.W_U': tf.tensor2d(Float32Array.from(transpose(emb).data), [D, V]),
  });
  setHead(model, 'blocks.0.attn.W_V', 0, (k, j) => at(j, k)); // E[s]·W_V = e_s for s < 16
  setHead(model, 'blocks.0.attn.W_O', 0, (j, k) => (j < 10 ? at((j + 1) % 10, k) : 0)); // e_j ↦ E[j + 1 mod 10]
});

afterAll(() => model.dispose());

describe('relationScore', () => {
  it('relationScore(model, 0, 0, s → s+1, {k: 1}) is 1: every target is the top entry', () => {
    const r = relationScore(model, 0, 0, next, { k: 1 });
    expect(r).toMatchObject({ label: 'L0H0', k: 1, hits: 10, total: 10, score: 1 });
  });

  it('relationScore for a relation the head does not implement (s → s+2) is 0', () => {
    expect(relationScore(model, 0, 0, skip, { k: 1 }).score).toBe(0);
    // (at larger k the target competes with 18 entries that are zero up to float32 rounding of the weights)
  });

  it('relationScores ranks the built head above the random head for s → s+1', () => {
    const [h0, h1] = relationScores(model, next, { k: 3 });
    expect(h0.score).toBe(1);
    expect(h1.score).toBeLessThan(0.7);
  });

  it('relationScore with a token outside the vocabulary is a HeadlensError', () => {
    expect(() => relationScore(model, 0, 0, [[0, 20]])).toThrow(HeadlensError);
    expect(() => relationScore(model, 0, 0, [])).toThrow(/at least one/);
  });
});

describe('salientMappings', () => {
  it('salientMappings(model, 0, 0) lists the ten built mappings s → s+1 first, each with value 1', () => {
    const top = salientMappings(model, 0, 0, { n: 10, perSource: 1 });
    expect(top.map((m) => [m.source, m.target]).sort((a, b) => a[0] - b[0])).toEqual(next);
    for (const m of top) expect(m.value).toBeCloseTo(1, 5);
  });

  it('salientMappings with sources restricts the rows', () => {
    const top = salientMappings(model, 0, 0, { n: 2, perSource: 1, sources: [4, 7] });
    expect(top.map((m) => m.target).sort()).toEqual([5, 8]);
  });
});

describe('sourceEmbeddings', () => {
  it('sourceEmbeddings(model, ids, {throughMlp0}) equals resid_post of block 0 with its attention zeroed', async () => {
    const cfg = makeConfig({
      d_model: 16, n_layers: 2, n_heads: 2, d_head: 4, d_mlp: 24, d_vocab: 30, n_ctx: 8,
      normalization_type: 'RMS', positional_embedding_type: 'rotary', gated_mlp: true, act_fn: 'silu', attn_qkv_bias: false,
    });
    const m = HookedTransformer.random(cfg, { seed: 2, std: 0.3 });
    const ids = [3, 29, 0, 11];
    const got = sourceEmbeddings(m, ids, { throughMlp0: true });
    // the model's own forward, attention of block 0 removed: resid_post = E + MLP_0(RMSNorm(E))
    const { logits, cache } = m.runWithCache([ids], {
      names: ['blocks.0.hook_resid_post'],
      fwdHooks: [['blocks.0.hook_attn_out', (a) => tf.zerosLike(a)]],
    });
    const ref = cache.get('blocks.0.hook_resid_post').dataSync();
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got.data[i] - ref[i]));
    expect(worst).toBeLessThan(1e-6);
    cache.dispose();
    logits.dispose();
    // and it changes the answer relative to the raw embedding
    const raw = sourceEmbeddings(m, ids);
    expect(Math.max(...raw.data.map((x, i) => Math.abs(x - got.data[i])))).toBeGreaterThan(1e-3);
    expect(() => sourceEmbeddings(model, [1], { throughMlp0: true })).toThrow(/attention-only/);
    m.dispose();
  });

  it('relationScore with throughMlp0 and salientMappings, 20 times, leave numTensors unchanged', () => {
    const cfg = makeConfig({ d_model: 16, n_layers: 2, n_heads: 2, d_head: 4, d_mlp: 24, d_vocab: 30, n_ctx: 8 });
    const m = HookedTransformer.random(cfg, { seed: 4 });
    const run = () => {
      relationScore(m, 1, 1, next, { throughMlp0: true });
      salientMappings(m, 0, 1, { throughMlp0: true, n: 5 });
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
