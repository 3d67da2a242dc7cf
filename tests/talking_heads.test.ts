/**
 * Talking-heads channels on a hand-built 2-layer model: L0H0 writes into dims 8..11 and L1H1's keys read
 * exactly dims 8..11 (alignment 1 by construction); everything else is random, where the expected
 * alignment of rank-r subspaces of R^d is r/d.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setHead } from './helpers.js';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { mat } from '../src/linalg/mat.js';
import { componentComposition, componentInhibition, headChannel, layerChannel, readSubspace, receiverComponentScan, subspaceAlignment, writeSubspace } from '../src/interp/weights/talking_heads.js';
import { makeConfig } from '../src/model/config.js';

const D = 32;
const E = 4;
let model: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const cfg = makeConfig({ d_model: D, n_layers: 2, n_heads: 4, d_head: E, d_vocab: 20, n_ctx: 8, attn_only: true });
  model = HookedTransformer.random(cfg, { seed: 21, std: 0.2 });
  setHead(model, 'blocks.0.attn.W_O', 0, (j, k) => (k === 8 + j ? 1 + j : 0)); // writes dims 8..11 (unequal gains)
  setHead(model, 'blocks.1.attn.W_K', 1, (i, j) => (i === 8 + j ? 1 : 0)); // keys read dims 8..11
});

afterAll(() => model.dispose());

describe('subspaceAlignment', () => {
  it('subspaceAlignment is 1 for a subspace with itself, 0 for orthogonal ones, cos²θ for two lines (hand computation)', () => {
    const e1 = mat(3, 1, [1, 0, 0]);
    const e2 = mat(3, 1, [0, 1, 0]);
    const diag = mat(3, 1, [Math.SQRT1_2, Math.SQRT1_2, 0]);
    expect(subspaceAlignment(e1, e1)).toBe(1);
    expect(subspaceAlignment(e1, e2)).toBe(0);
    expect(subspaceAlignment(e1, diag)).toBeCloseTo(0.5, 15);
  });
});

describe('talking heads', () => {
  it('headChannel(L0H0 → L1H1) has key alignment 1 and query alignment near r/d', () => {
    const c = headChannel(model, { layer: 0, head: 0 }, { layer: 1, head: 1 });
    expect(c.key).toBeCloseTo(1, 6);
    expect(c.query).toBeLessThan(0.5);
    expect(writeSubspace(model, 0, 0).cols).toBe(E);
    expect(readSubspace(model, 1, 1, 'key', 2).cols).toBe(2);
  });

  it('layerChannel(model, 0, 1, "key") finds the planted pair as its best, far above the random baseline', () => {
    const ch = layerChannel(model, 0, 1, 'key');
    expect(ch.best).toMatchObject({ sender: 'L0H0', receiver: 'L1H1' });
    expect(ch.best.score).toBeCloseTo(1, 6);
    expect(ch.baseline).toBe(E / D);
    const others = ch.alignment.flatMap((row, a) => row.filter((_, b) => !(a === 0 && b === 1)));
    const mean = others.reduce((s, x) => s + x, 0) / others.length;
    expect(mean).toBeGreaterThan(0.5 * ch.baseline);
    expect(mean).toBeLessThan(2 * ch.baseline);
    console.log(`planted key alignment ${ch.best.score.toFixed(6)}; other pairs mean ${mean.toFixed(4)} (baseline r/d = ${ch.baseline})`);
  });

  it('layerChannel(model, 0, 1, "query") has no planted channel: best well below 1', () => {
    expect(layerChannel(model, 0, 1, 'query').best.score).toBeLessThan(0.6);
  });

  it('layerChannel with the receiver before the sender, or a bad rank, is a HeadlensError', () => {
    expect(() => layerChannel(model, 1, 0, 'key')).toThrow(/is not before/);
    expect(() => layerChannel(model, 0, 1, 'key', { rank: 5 })).toThrow(/rank 5/);
  });

  it('layerChannel and headChannel, 20 times, leave numTensors unchanged', () => {
    const run = () => {
      layerChannel(model, 0, 1, 'query', { rank: 2 });
      headChannel(model, { layer: 0, head: 3 }, { layer: 1, head: 2 });
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});

/**
 * The paper's measure on a planted 2-layer model without norms (d_model 8, d_head 2):
 *   sender L0H0:   OV = 3·e0·e4ᵀ + 1·e1·e5ᵀ         (components: σ 3 writes e4, σ 1 writes e5)
 *   receiver L1H1: QK = W_Q·W_Kᵀ = 2·e6·e4ᵀ + e7·e2ᵀ (keys read e4 with gain 2 and e2; queries read e6, e7)
 * Hand values (key side, R = QKᵀ = 2·e4·e6ᵀ + e2·e7ᵀ, ‖R‖_F = √5, ‖OV‖_F = √10):
 *   sender split:   CS(comp 0, R) = ‖e4ᵀR‖/√5 = 2/√5;   CS(comp 1, R) = ‖e5ᵀR‖/√5 = 0
 *   receiver split: CS(OV, comp 0) = ‖OV·e4‖/√10 = 3/√10; CS(OV, comp 1) = ‖OV·e2‖/√10 = 0
 *   whole matrices: ‖OV·R‖/(√10·√5) = ‖6·e0·e6ᵀ‖/√50 = 6/√50
 */
describe('componentComposition and componentInhibition (Merullo et al.)', () => {
  let p: HookedTransformer;
  beforeAll(() => {
    const cfg = makeConfig({ d_model: 8, n_layers: 2, n_heads: 2, d_head: 2, d_vocab: 12, n_ctx: 8, attn_only: true, normalization_type: null });
    p = HookedTransformer.random(cfg, { seed: 5, std: 0.8 });
    setHead(p, 'blocks.0.attn.W_V', 0, (k, j) => (k === 0 && j === 0 ? 3 : k === 1 && j === 1 ? 1 : 0));
    setHead(p, 'blocks.0.attn.W_O', 0, (j, k) => ((j === 0 && k === 4) || (j === 1 && k === 5) ? 1 : 0));
    setHead(p, 'blocks.1.attn.W_Q', 1, (k, j) => ((j === 0 && k === 6) || (j === 1 && k === 7) ? 1 : 0));
    setHead(p, 'blocks.1.attn.W_K', 1, (k, j) => (j === 0 && k === 4 ? 2 : j === 1 && k === 2 ? 1 : 0));
  });
  afterAll(() => p.dispose());

  it('componentComposition(sender split, key side) is [2/√5, 0], the whole-matrix score 6/√50 (hand values)', () => {
    const c = componentComposition(p, { layer: 0, head: 0 }, { layer: 1, head: 1 }, 'key');
    expect(c.singularValues[0]).toBeCloseTo(3, 6);
    expect(c.singularValues[1]).toBeCloseTo(1, 6);
    expect(c.scores[0]).toBeCloseTo(2 / Math.sqrt(5), 6);
    expect(c.scores[1]).toBeCloseTo(0, 6);
    expect(c.full).toBeCloseTo(6 / Math.sqrt(50), 6);
    expect(c.best.component).toBe(0);
    expect(c.baseline).toBeCloseTo(1 / Math.sqrt(8), 12);
  });

  it('componentComposition(receiver split, key side) is [3/√10, 0]; the query side reads nothing the sender writes (0)', () => {
    const r = componentComposition(p, { layer: 0, head: 0 }, { layer: 1, head: 1 }, 'key', { decompose: 'receiver' });
    expect(r.singularValues.slice(0, 2).map((s) => +s.toFixed(6))).toEqual([2, 1]);
    expect(r.scores[0]).toBeCloseTo(3 / Math.sqrt(10), 6);
    expect(r.scores[1]).toBeCloseTo(0, 6);
    const q = componentComposition(p, { layer: 0, head: 0 }, { layer: 1, head: 1 }, 'query');
    expect(Math.max(...q.scores)).toBeCloseTo(0, 6);
    expect(q.full).toBeCloseTo(0, 6);
    expect(() => componentComposition(p, { layer: 1, head: 1 }, { layer: 0, head: 0 }, 'key')).toThrow(/is not before/);
    const scan = receiverComponentScan(p, { layer: 1, head: 1 }, 'key');
    expect(scan[0].sender).toBe('L0H0');
  });

  it('componentInhibition: removing the component the keys do not read changes nothing (0); removing e4 equals zeroing W_O[0, 4] in the weights', () => {
    const tokens = [[1, 4, 7, 2, 9, 3], [5, 0, 11, 6, 8, 10], [2, 2, 3, 4, 7, 1]];
    const pos = { query: [5, 5, 5], inhibited: [2, 2, 2], other: [1, 1, 1] };
    const res = componentInhibition(p, tokens, { layer: 0, head: 0 }, { layer: 1, head: 1 }, pos);
    expect(res.perComponent[1].score).toBeCloseTo(0, 6); // e5 is not read by L1H1
    // independent route: the same edits made in the weights
    const diff = (m: HookedTransformer) => {
      const { logits, cache } = m.runWithCache(tokens, { names: ['blocks.1.attn.hook_pattern'] });
      const pat = cache.get('blocks.1.attn.hook_pattern').arraySync() as number[][][][];
      logits.dispose();
      cache.dispose();
      return tokens.reduce((s, _, b) => s + pat[b][1][5][1] - pat[b][1][5][2], 0) / tokens.length;
    };
    expect(res.clean).toBeCloseTo(diff(p), 6);
    const saved = p.param('blocks.0.attn.W_O').clone();
    setHead(p, 'blocks.0.attn.W_O', 0, (j, k) => (j === 1 && k === 5 ? 1 : 0)); // comp 0 (e4) removed
    const without0 = diff(p);
    setHead(p, 'blocks.0.attn.W_O', 0, () => 0); // the whole head removed
    const withoutAll = diff(p);
    p.setParams({ 'blocks.0.attn.W_O': saved });
    expect(res.perComponent[0].score).toBeCloseTo(res.clean - without0, 6);
    expect(Math.abs(res.perComponent[0].score)).toBeGreaterThan(1e-3); // the read component matters
    expect(res.whole).toBeCloseTo(res.clean - withoutAll, 6);
    expect(() => componentInhibition(p, tokens, { layer: 0, head: 0 }, { layer: 1, head: 1 }, { ...pos, other: [1, 1] })).toThrow(/one position per prompt/);
  });

  it('componentComposition and componentInhibition, 10 times, leave numTensors unchanged', () => {
    const run = () => {
      componentComposition(p, { layer: 0, head: 1 }, { layer: 1, head: 0 }, 'query', { decompose: 'receiver' });
      componentInhibition(p, [[1, 2, 3, 4]], { layer: 0, head: 0 }, { layer: 1, head: 1 }, { query: [3], inhibited: [1], other: [2] });
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
