/**
 * Sparse attention decomposition (Franco & Crovella 2024) on planted models:
 * - a receiver L1H0 with QK = 2·e3·e5ᵀ (rank 1, zero biases): one term σ = 2 carries the whole score;
 * - an upstream L0H0 that is the only part of the residual with a coordinate along e5 (the key direction
 *   of that one component): its key-side contribution is the whole score, everything else's is 0, and its
 *   query-side contribution is 0 (it writes nothing along e3);
 * - on a random GPT-2-style model (LayerNorm, biases) the terms sum to the model's own score, and the
 *   upstream parts' contributions sum to the carried terms on each side.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setHead } from './helpers.js';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { decomposeAttentionScore, traceSparseCircuit, upstreamHeadRanking } from '../src/interp/attribution/sparse_attention.js';
import { makeConfig } from '../src/model/config.js';

const D = 8;
let planted: HookedTransformer;
let random: HookedTransformer;
const tokens = [3, 7, 1, 9, 4, 2, 8];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const cfg = makeConfig({ d_model: D, n_layers: 2, n_heads: 2, d_head: 2, d_vocab: 12, n_ctx: 8, attn_only: true, normalization_type: null });
  planted = HookedTransformer.random(cfg, { seed: 9, std: 0.7 });
  const zeroCol5 = (name: string, shape: number[]) => {
    const a = planted.param(name).arraySync() as number[][];
    return tf.tensor2d(a.map((row) => row.map((x, k) => (k === 5 ? 0 : x))), shape as [number, number]);
  };
  planted.setParams({
    'embed.W_E': zeroCol5('embed.W_E', [12, D]),
    'pos_embed.W_pos': zeroCol5('pos_embed.W_pos', [8, D]),
    'blocks.0.attn.b_O': tf.tensor1d(Array.from(planted.param('blocks.0.attn.b_O').dataSync(), (x, k) => (k === 5 ? 0 : x))),
    'blocks.1.attn.b_Q': tf.zeros([2, 2]),
    'blocks.1.attn.b_K': tf.zeros([2, 2]),
  });
  setHead(planted, 'blocks.0.attn.W_O', 0, (j, k) => (k === 5 ? 1 + j : 0)); // L0H0 writes only along e5
  const woL0H1 = planted.param('blocks.0.attn.W_O').arraySync() as number[][][];
  setHead(planted, 'blocks.0.attn.W_O', 1, (j, k) => (k === 5 ? 0 : woL0H1[1][j][k])); // L0H1 writes nothing along e5
  setHead(planted, 'blocks.1.attn.W_Q', 0, (k, j) => (j === 0 && k === 3 ? 1 : 0));
  setHead(planted, 'blocks.1.attn.W_K', 0, (k, j) => (j === 0 && k === 5 ? 2 : 0));
  random = HookedTransformer.random(makeConfig({ d_model: 16, n_layers: 3, n_heads: 2, d_head: 4, d_mlp: 32, d_vocab: 12, n_ctx: 8 }), { seed: 4, std: 0.5 });
});

afterAll(() => {
  planted.dispose();
  random.dispose();
});

describe('decomposeAttentionScore', () => {
  it('a rank-1 QK (2·e3·e5ᵀ): one component, σ = 2, carries the score; the others are 0', () => {
    const dec = decomposeAttentionScore(planted, tokens, 1, 0, 6, 3, { fraction: 0.9 });
    expect(dec.terms[0].singularValue).toBeCloseTo(2, 6);
    expect(dec.carrying).toEqual([dec.terms[0].component]);
    for (const t of dec.terms.slice(1)) expect(t.term).toBeCloseTo(0, 6);
    expect(dec.sum).toBeCloseTo(dec.score, 5);
    expect(Math.abs(dec.score)).toBeGreaterThan(1e-3); // not a comparison of zeros
  });

  it('the planted writer L0H0 is the only key-side part: exact share = the score; their projection = √2·sign(x_q[3])·x_k[5] (hand value)', () => {
    const exact = decomposeAttentionScore(planted, tokens, 1, 0, 6, 3, { fraction: 0.9, measure: 'exact' });
    const l0h0 = exact.upstream.find((u) => u.label === 'L0H0')!;
    expect(l0h0.key).toBeCloseTo(exact.score, 5);
    expect(l0h0.query).toBeCloseTo(0, 6);
    for (const u of exact.upstream.filter((x) => x.label !== 'L0H0')) expect(u.key).toBeCloseTo(0, 6);
    expect(exact.upstream.reduce((s, u) => s + u.query, 0)).toBeCloseTo(exact.score, 5);
    // their measure: sign(x̂_q·u)·√σ·(ȳ·v); here u = ±e3, v = ±e5, σ = 2, no norm
    const { logits, cache } = planted.runWithCache([tokens], { names: ['blocks.1.hook_resid_pre'] });
    const resid = cache.get('blocks.1.hook_resid_pre').dataSync();
    const xq3 = resid[6 * D + 3];
    const xk5 = resid[3 * D + 5];
    logits.dispose();
    cache.dispose();
    const proj = decomposeAttentionScore(planted, tokens, 1, 0, 6, 3, { fraction: 0.9 });
    expect(proj.measure).toBe('projection');
    expect(proj.upstream.find((u) => u.label === 'L0H0')!.key).toBeCloseTo(Math.SQRT2 * Math.sign(xq3) * xk5, 5);
    expect(exact.score).toBeCloseTo(2 * xq3 * xk5, 4);
    for (const u of proj.upstream.filter((x) => x.label !== 'L0H0')) expect(u.key).toBeCloseTo(0, 6);
  });

  it('on a random LayerNorm model the terms sum to the model’s score and the parts to the carried terms, per side', () => {
    for (const [l, h, qp, kp] of [[1, 0, 6, 2], [2, 1, 5, 5], [2, 0, 4, 0]]) {
      const dec = decomposeAttentionScore(random, tokens, l, h, qp, kp, { fraction: 0.5, measure: 'exact' });
      expect(dec.sum).toBeCloseTo(dec.score, 4);
      expect(dec.terms.length).toBe(4);
      const q = dec.upstream.reduce((s, u) => s + u.query, 0);
      const k = dec.upstream.reduce((s, u) => s + u.key, 0);
      expect(q).toBeCloseTo(dec.carried, 4);
      expect(k).toBeCloseTo(dec.carried, 4);
      expect(dec.upstream.filter((u) => u.kind === 'head').length).toBe(2 * l);
      // their carrying rule (utils.get_components_used): terms sorted along the sum's sign, first running share > fraction
      const sign = dec.sum >= 0 ? 1 : -1;
      const sorted = [...dec.terms].sort((a, b) => sign * (b.term - a.term));
      let run = 0;
      let n = 0;
      while (n < sorted.length && !(run / dec.sum > 0.5)) run += sorted[n++].term;
      expect(dec.carrying).toEqual(sorted.slice(0, n).map((t) => t.component));
    }
  });

  it('contrastKeyPos decomposes score(q, k) − score(q, k′): the sum and the parts per side add up', () => {
    const a = decomposeAttentionScore(random, tokens, 2, 1, 6, 2, { fraction: 1 });
    const b = decomposeAttentionScore(random, tokens, 2, 1, 6, 4, { fraction: 1 });
    const c = decomposeAttentionScore(random, tokens, 2, 1, 6, 2, { contrastKeyPos: 4, fraction: 1, measure: 'exact' });
    expect(c.score).toBeCloseTo(a.score - b.score, 4);
    expect(c.sum).toBeCloseTo(a.sum - b.sum, 4);
    expect(c.contrastKeyPos).toBe(4);
    expect(c.upstream.reduce((s, u) => s + u.key, 0)).toBeCloseTo(c.carried, 4);
    expect(c.upstream.reduce((s, u) => s + u.query, 0)).toBeCloseTo(c.carried, 4);
    // the constant coordinate (which holds ln1's folded bias) cancels between the two keys
    expect(c.upstream.find((u) => u.kind === 'constant')!.key).toBeCloseTo(0, 10);
    expect(() => traceSparseCircuit(random, tokens, { layer: 2, head: 0, queryPos: 6, keyPos: 2 }, { contrastKeyPos: 1 } as never)).toThrow(/contrast/);
  });

  it('bad positions, a bad fraction and rotary models are HeadlensErrors', () => {
    expect(() => decomposeAttentionScore(planted, tokens, 1, 0, 3, 5)).toThrow(/not in 0..3/);
    expect(() => decomposeAttentionScore(planted, tokens, 1, 0, 9, 0)).toThrow(/not in the prompt/);
    expect(() => decomposeAttentionScore(planted, tokens, 1, 0, 6, 0, { fraction: 0 })).toThrow(/fraction/);
    const rot = HookedTransformer.random(makeConfig({ d_model: 8, n_layers: 1, n_heads: 2, d_head: 4, d_vocab: 12, n_ctx: 8, attn_only: true, positional_embedding_type: 'rotary' }), { seed: 1 });
    expect(() => decomposeAttentionScore(rot, tokens, 0, 0, 2, 1)).toThrow(/rotary/);
    rot.dispose();
  });
});

describe('traceSparseCircuit', () => {
  it('from the planted receiver, the only key-side edge comes from L0H0 at the key position; the settings are recorded', () => {
    const { logits, cache } = planted.runWithCache([tokens], { names: ['blocks.1.attn.hook_pattern'] });
    const pat = cache.get('blocks.1.attn.hook_pattern').arraySync() as number[][][][];
    logits.dispose();
    cache.dispose();
    const row = pat[0][0][6];
    const key = row.indexOf(Math.max(...row.slice(1))); // where L1H0 attends most from position 6 (not 0)
    const c = traceSparseCircuit(planted, tokens, { layer: 1, head: 0, queryPos: 6, keyPos: key }, { attnThreshold: Math.min(0.5, row[key]) });
    expect(c.skipped).toBeUndefined();
    const keyEdges = c.edges.filter((e) => e.side === 'key');
    expect(keyEdges).toHaveLength(1);
    expect(keyEdges[0]).toMatchObject({ from: 'L0H0', fromPos: key, to: 'L1H0' });
    expect(c.nodes[0]).toMatchObject({ head: 'L1H0', queryPos: 6, keyPos: key });
    expect(c.settings).toMatchObject({ fraction: 1, measure: "projection", edgeFraction: 0.7, depth: null, positiveScoresOnly: true });
    const rank = upstreamHeadRanking(planted, [{ tokens, queryPos: 6, keyPos: key }], 1, 0, { measure: 'exact' });
    expect(rank.find((r) => r.label === 'L0H0')!.key).toBeCloseTo(c.nodes[0].score, 4);
    // a pair where the head does not fire is not traced, and says why
    const weak = row.indexOf(Math.min(...row.slice(1)));
    const none = traceSparseCircuit(planted, tokens, { layer: 1, head: 0, queryPos: 6, keyPos: weak }, { attnThreshold: 0.99 });
    expect(none.skipped).toMatch(/does not fire/);
    expect(none.edges).toHaveLength(0);
  });

  it('decomposeAttentionScore and traceSparseCircuit, 10 times, leave numTensors unchanged', () => {
    const run = () => {
      decomposeAttentionScore(random, tokens, 2, 1, 6, 1);
      traceSparseCircuit(random, tokens, { layer: 2, head: 0, queryPos: 6, keyPos: 2 });
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
