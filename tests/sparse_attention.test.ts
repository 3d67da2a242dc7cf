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
    const dec = decomposeAttentionScore(planted, tokens, 1, 0, 6, 3);
    expect(dec.terms[0].singularValue).toBeCloseTo(2, 6);
    expect(dec.carrying).toEqual([dec.terms[0].component]);
    for (const t of dec.terms.slice(1)) expect(t.term).toBeCloseTo(0, 6);
    expect(dec.sum).toBeCloseTo(dec.score, 5);
    expect(Math.abs(dec.score)).toBeGreaterThan(1e-3); // not a comparison of zeros
  });

  it('the planted writer L0H0 carries the whole score through the key side, 0 through the query side; no other part writes along e5', () => {
    const dec = decomposeAttentionScore(planted, tokens, 1, 0, 6, 3);
    const l0h0 = dec.upstream.find((u) => u.label === 'L0H0')!;
    expect(l0h0.key).toBeCloseTo(dec.score, 5);
    expect(l0h0.query).toBeCloseTo(0, 6);
    for (const u of dec.upstream.filter((x) => x.label !== 'L0H0')) expect(u.key).toBeCloseTo(0, 6);
    const q = dec.upstream.reduce((s, u) => s + u.query, 0);
    expect(q).toBeCloseTo(dec.score, 5);
  });

  it('on a random LayerNorm model the terms sum to the model’s score and the parts to the carried terms, per side', () => {
    for (const [l, h, qp, kp] of [[1, 0, 6, 2], [2, 1, 5, 5], [2, 0, 4, 0]]) {
      const dec = decomposeAttentionScore(random, tokens, l, h, qp, kp, { fraction: 0.5 });
      expect(dec.sum).toBeCloseTo(dec.score, 4);
      expect(dec.terms.length).toBe(4);
      const q = dec.upstream.reduce((s, u) => s + u.query, 0);
      const k = dec.upstream.reduce((s, u) => s + u.key, 0);
      expect(q).toBeCloseTo(dec.carried, 4);
      expect(k).toBeCloseTo(dec.carried, 4);
      expect(dec.upstream.filter((u) => u.kind === 'head').length).toBe(2 * l);
    }
  });

  it('contrastKeyPos decomposes score(q, k) − score(q, k′): the sum and the parts per side add up', () => {
    const a = decomposeAttentionScore(random, tokens, 2, 1, 6, 2, { fraction: 1 });
    const b = decomposeAttentionScore(random, tokens, 2, 1, 6, 4, { fraction: 1 });
    const c = decomposeAttentionScore(random, tokens, 2, 1, 6, 2, { contrastKeyPos: 4, fraction: 1 });
    expect(c.score).toBeCloseTo(a.score - b.score, 4);
    expect(c.sum).toBeCloseTo(a.sum - b.sum, 4);
    expect(c.contrastKeyPos).toBe(4);
    expect(c.upstream.reduce((s, u) => s + u.key, 0)).toBeCloseTo(c.carried, 4);
    expect(c.upstream.reduce((s, u) => s + u.query, 0)).toBeCloseTo(c.carried, 4);
    // the constant coordinate and ln1's bias cancel between the two keys
    expect(c.upstream.find((u) => u.kind === 'ln_bias')!.key).toBeCloseTo(0, 10);
    expect(() => traceSparseCircuit(random, tokens, { layer: 2, head: 0, queryPos: 6, keyPos: 2 }, { contrastKeyPos: 1 })).toThrow(/contrast/);
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
  it('from the planted receiver, the key-side edge with share 1 comes from L0H0 at the key position', () => {
    const c = traceSparseCircuit(planted, tokens, { layer: 1, head: 0, queryPos: 6, keyPos: 3 }, { topUpstream: 1, depth: 2 });
    const key = c.edges.filter((e) => e.side === 'key');
    expect(key).toHaveLength(1);
    expect(key[0]).toMatchObject({ from: 'L0H0', fromPos: 3, to: 'L1H0' });
    expect(key[0].share).toBeCloseTo(1, 5);
    expect(c.nodes[0]).toMatchObject({ head: 'L1H0', queryPos: 6, keyPos: 3, carrying: [expect.any(Number)] });
    expect(c.nodes.length).toBeGreaterThan(1); // the upstream heads were traced in turn
    expect(c.settings).toEqual({ fraction: 0.9, topUpstream: 1, depth: 2 });
    const rank = upstreamHeadRanking(planted, [{ tokens, queryPos: 6, keyPos: 3 }], 1, 0);
    expect(rank.find((r) => r.label === 'L0H0')!.key).toBeCloseTo(c.nodes[0].score, 5);
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
