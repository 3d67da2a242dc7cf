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
import { headChannel, layerChannel, readSubspace, subspaceAlignment, writeSubspace } from '../src/interp/weights/talking_heads.js';
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
