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

/**
 * MAPS against a direct computation written here in plain arrays, as the authors' src/maps.py does it
 * in torch: E' = W_E at layer 0 and MLP_0(ln2_0(W_E)) past it (LayerNorm then ReLU MLP, by hand),
 * projection = E'·W_V·W_O·W_U dense, relation score = share of pairs with the target in topk(projection),
 * suppression = the same on −projection, salient tokens = topk of ‖E'·W_VO‖ / ‖E'‖.
 */
describe('MAPS as the authors’ code (direct computation)', () => {
  const cfg = makeConfig({ d_model: 12, n_layers: 2, n_heads: 2, d_head: 3, d_mlp: 20, d_vocab: 40, n_ctx: 8, act_fn: 'relu' });
  let m: HookedTransformer;
  const arr = (name: string) => Array.from(m.param(name).dataSync());
  const d = 12;
  const V = 40;

  /** MLP_0(ln2_0(x)) for one row, by hand (LayerNorm with biased variance, eps 1e-5; ReLU). */
  function mlp0(x: number[]): number[] {
    const w = arr('blocks.0.ln2.w');
    const b = arr('blocks.0.ln2.b');
    const mean = x.reduce((s, v) => s + v, 0) / d;
    const v = x.reduce((s, u) => s + (u - mean) ** 2, 0) / d;
    const n = x.map((u, i) => ((u - mean) / Math.sqrt(v + 1e-5)) * w[i] + b[i]);
    const Win = arr('blocks.0.mlp.W_in');
    const bin = arr('blocks.0.mlp.b_in');
    const Wout = arr('blocks.0.mlp.W_out');
    const bout = arr('blocks.0.mlp.b_out');
    const h = Array.from({ length: 20 }, (_, j) => Math.max(0, bin[j] + n.reduce((s, u, i) => s + u * Win[i * 20 + j], 0)));
    return Array.from({ length: d }, (_, k) => bout[k] + h.reduce((s, u, j) => s + u * Wout[j * d + k], 0));
  }
  /** E'[s]·W_V[h]·W_O[h] (d_model) and its projection on W_U (d_vocab). */
  function project(layer: number, head: number, x: number[]): { t: number[]; p: number[] } {
    const Wv = arr(`blocks.${layer}.attn.W_V`).slice(head * d * 3, (head + 1) * d * 3);
    const Wo = arr(`blocks.${layer}.attn.W_O`).slice(head * 3 * d, (head + 1) * 3 * d);
    const Wu = arr('unembed.W_U');
    const z = [0, 1, 2].map((e) => x.reduce((s, u, i) => s + u * Wv[i * 3 + e], 0));
    const t = Array.from({ length: d }, (_, k) => z.reduce((s, u, e) => s + u * Wo[e * d + k], 0));
    const p = Array.from({ length: V }, (_, j) => t.reduce((s, u, k) => s + u * Wu[k * V + j], 0));
    return { t, p };
  }
  const topk = (p: number[], k: number) => p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i);
  const pairs: [number, number][] = Array.from({ length: 30 }, (_, s) => [s, (s * 7 + 3) % V]);

  beforeAll(() => {
    m = HookedTransformer.random(cfg, { seed: 11, std: 0.5 });
  });
  afterAll(() => m.dispose());

  it('relationScore / suppression at k = 10 equal the direct computation for every head, MLP_0 past layer 0', () => {
    const E = arr('embed.W_E');
    const row = (s: number) => E.slice(s * d, (s + 1) * d);
    let nonzero = 0;
    for (let l = 0; l < 2; l++) {
      for (let h = 0; h < 2; h++) {
        let hits = 0;
        let supp = 0;
        for (const [s, t] of pairs) {
          const x = l === 0 ? row(s) : mlp0(row(s));
          const { p } = project(l, h, x);
          if (topk(p, 10).includes(t)) hits++;
          if (topk(p.map((v) => -v), 10).includes(t)) supp++;
        }
        const r = relationScore(m, l, h, pairs, { k: 10 });
        expect(r.hits).toBe(hits);
        expect(r.suppressionHits).toBe(supp);
        expect(r.suppression).toBeCloseTo(supp / 30, 12);
        expect(r.source).toBe(l === 0 ? 'raw' : 'mlp0');
        if (hits > 0 && supp > 0) nonzero++;
      }
    }
    expect(nonzero).toBeGreaterThan(0); // the comparison is not between empty counts
  });

  it("source 'mlp0' is MLP_0(ln2(E)) without the residual; 'embed+mlp0' adds W_E; 'raw' is W_E", () => {
    const E = arr('embed.W_E');
    const ids = [0, 5, 39];
    const mlp = sourceEmbeddings(m, ids, 'mlp0');
    const both = sourceEmbeddings(m, ids, 'embed+mlp0');
    ids.forEach((s, i) => {
      const ref = mlp0(E.slice(s * d, (s + 1) * d));
      for (let k = 0; k < d; k++) {
        expect(mlp.data[i * d + k]).toBeCloseTo(ref[k], 5);
        expect(both.data[i * d + k]).toBeCloseTo(ref[k] + E[s * d + k], 5);
      }
    });
    // the old flag keeps its meaning, and is recorded as such
    expect(relationScore(m, 1, 0, pairs, { throughMlp0: true })).toMatchObject({ source: 'embed+mlp0', sourceAtLayer0: true });
    expect(relationScore(m, 1, 0, pairs, { source: 'raw' }).source).toBe('raw');
    expect(relationScore(m, 0, 0, pairs, { sourceAtLayer0: true }).source).toBe('mlp0');
    expect(() => relationScore(m, 1, 0, pairs, { source: 'bogus' as never })).toThrow(/not one of/);
  });

  it('salientMappings selects sources by norm amplification ‖E′·W_VO‖/‖E′‖ and lists their top targets (direct computation)', () => {
    const E = arr('embed.W_E');
    for (const [l, h] of [[0, 1], [1, 0]]) {
      const amp: number[] = [];
      const rows: number[][] = [];
      for (let s = 0; s < V; s++) {
        const x = l === 0 ? E.slice(s * d, (s + 1) * d) : mlp0(E.slice(s * d, (s + 1) * d));
        const { t, p } = project(l, h, x);
        amp.push(Math.hypot(...t) / Math.hypot(...x));
        rows.push(p);
      }
      const want = topk(amp, 4).flatMap((s) => topk(rows[s], 2).map((t) => [s, t]));
      const got = salientMappings(m, l, h, { n: 4, perSource: 2 });
      expect(got.map((g) => [g.source, g.target])).toEqual(want);
      got.forEach((g) => expect(g.amplification).toBeCloseTo(amp[g.source], 6));
    }
    // the old selection (largest entries) is still there by name
    const old = salientMappings(m, 1, 0, { select: 'value', n: 3, perSource: 1 });
    expect(old.every((g) => g.amplification === undefined)).toBe(true);
    expect(old[0].value).toBeGreaterThanOrEqual(old[1].value);
  });
});
