/**
 * Composition scores and copying scores on hand-built models whose answers are known in closed form:
 * a layer-0 head that moves dims 0..3 into dims 8..11 and a layer-1 head whose keys read dims 8..11
 * (K-composition, exactly 1/2 by hand), and heads built to copy (OV = W_V·W_Vᵀ) or to suppress.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { compositionScore, compositionScores, kComposition, qComposition, randomBaseline, vComposition } from '../src/interp/weights/composition.js';
import { copyingScore, copyingScores } from '../src/interp/weights/copying.js';
import { FactoredMatrix } from '../src/linalg/factored_matrix.js';
import { mat, matmul, randomNormal, transpose } from '../src/linalg/mat.js';
import { svd } from '../src/linalg/svd.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

/** numpy's dense scores from the HF checkpoints (tests/fixtures/make_numpy_fixtures.py, its own slicing). */
const NUMPY = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'circuits.json'), 'utf8')) as Record<
  string,
  { composition: Record<'q' | 'k' | 'v', [number, number, number, number, number][]>; copying: [number, number, number][] }
>;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const D = 32;
const E = 4;

/** Replaces head `h` of a per-head parameter [head, r, c] with fill(i, j). */
function setHead(model: HookedTransformer, name: string, h: number, fill: (i: number, j: number) => number): void {
  const old = model.param(name);
  const [n, r, c] = old.shape;
  const data = Float32Array.from(old.dataSync());
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[h * r * c + i * c + j] = fill(i, j);
  model.setParams({ [name]: tf.tensor3d(data, [n, r, c]) });
}

/** 2 layers × 2 heads, attention only, random N(0, 0.02) weights, with L0H0 → L1H1 planted to K-compose. */
function kComposingModel(): HookedTransformer {
  const cfg = makeConfig({ d_model: D, n_layers: 2, n_heads: 2, d_head: E, d_vocab: 20, n_ctx: 8, attn_only: true });
  const model = HookedTransformer.random(cfg, { seed: 11 });
  setHead(model, 'blocks.0.attn.W_V', 0, (i, j) => (i === j ? 1 : 0)); // reads dims 0..3
  setHead(model, 'blocks.0.attn.W_O', 0, (j, k) => (k === 8 + j ? 1 : 0)); // writes dims 8..11
  setHead(model, 'blocks.1.attn.W_K', 1, (i, j) => (i === 8 + j ? 1 : 0)); // keys read dims 8..11
  return model;
}

describe('compositionScore', () => {
  it('compositionScore(A, A) of a rank-1 matrix is 1 and of orthogonal subspaces is 0 (hand computation)', () => {
    const u = mat(3, 1, [1, 2, 2]);
    const rank1 = new FactoredMatrix(u, transpose(u)); // u·uᵀ, ‖u‖² = 9
    expect(compositionScore(rank1, rank1)).toBeCloseTo(1, 14);
    const a = new FactoredMatrix(mat(3, 1, [1, 0, 0]), mat(1, 3, [0, 1, 0])); // writes e1
    const b = new FactoredMatrix(mat(3, 1, [0, 0, 1]), mat(1, 3, [1, 0, 0])); // reads e2 only
    expect(compositionScore(a, b)).toBe(0);
  });
});

describe('compositionScores', () => {
  let model: HookedTransformer;
  beforeAll(() => {
    model = kComposingModel();
  });
  afterAll(() => model.dispose());

  it('kComposition(model) puts the planted pair L0H0 → L1H1 first, at exactly 1/2, far above the random baseline', () => {
    const k = kComposition(model);
    expect(k.kind).toBe('k');
    expect(k.pairs).toHaveLength(4); // 2 heads in layer 0 × 2 heads in layer 1
    expect(k.pairs[0].from.label).toBe('L0H0');
    expect(k.pairs[0].to.label).toBe('L1H1');
    // OV·QKᵀ = W_V·W_O·W_K·W_Qᵀ = W_V·W_Qᵀ, so the score is ‖W_Q‖ / (‖W_V·W_O‖·‖W_Q‖) = 1/‖W_V·W_O‖ = 1/2
    expect(k.pairs[0].score).toBeCloseTo(0.5, 6);
    expect(k.pairs[0].score).toBeGreaterThan(k.baseline.mean + 5 * k.baseline.std);
    expect(k.pairs[1].score).toBeLessThan(k.baseline.mean + 4 * k.baseline.std);
    console.log(`planted K-composition ${k.pairs[0].score.toFixed(6)}, next ${k.pairs[1].score.toFixed(4)}, baseline ${k.baseline.mean.toFixed(4)} ± ${k.baseline.std.toFixed(4)}`);
  });

  it('qComposition and vComposition of the same model find nothing planted: all pairs near the baseline', () => {
    for (const r of [qComposition(model), vComposition(model)]) {
      expect(r.pairs).toHaveLength(4);
      for (const p of r.pairs) expect(p.score).toBeLessThan(0.5 * 0.8);
      expect(r.baseline.mean).toBeGreaterThan(0);
    }
  });

  it('randomBaseline(model, kind) is seeded: the same seed gives the same numbers, another seed others', () => {
    const a = randomBaseline(model, 'k', { baselineSamples: 5, seed: 3 });
    const b = randomBaseline(model, 'k', { baselineSamples: 5, seed: 3 });
    const c = randomBaseline(model, 'k', { baselineSamples: 5, seed: 4 });
    expect(a).toEqual(b);
    expect(c.mean).not.toBe(a.mean);
  });

  it('compositionScores(model, "x") is a HeadlensError listing q, k, v', () => {
    expect(() => compositionScores(model, 'x' as never)).toThrow(/use q, k or v/);
  });

  it('compositionScores, 20 times, leaves numTensors unchanged', () => {
    compositionScores(model, 'q', { baselineSamples: 2 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) compositionScores(model, 'k', { baselineSamples: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('copyingScore', () => {
  /** 1 layer, 3 heads: head 0 copies (O = +Vᵀ), head 1 suppresses (O = −Vᵀ), head 2 random; W_U = W_Eᵀ. */
  function copyModel(): HookedTransformer {
    const cfg = makeConfig({ d_model: D, n_layers: 1, n_heads: 3, d_head: E, d_vocab: 20, n_ctx: 8, attn_only: true });
    const model = HookedTransformer.random(cfg, { seed: 5, std: 0.3 });
    const emb = randomNormal(20, D, 99);
    model.setParams({ 'embed.W_E': tf.tensor2d(Float32Array.from(emb.data), [20, D]), 'unembed.W_U': tf.tensor2d(Float32Array.from(transpose(emb).data), [D, 20]) });
    const V = randomNormal(D, E, 7);
    setHead(model, 'blocks.0.attn.W_V', 0, (i, j) => V.data[i * E + j]);
    setHead(model, 'blocks.0.attn.W_O', 0, (j, k) => V.data[k * E + j]);
    setHead(model, 'blocks.0.attn.W_V', 1, (i, j) => V.data[i * E + j]);
    setHead(model, 'blocks.0.attn.W_O', 1, (j, k) => -V.data[k * E + j]);
    return model;
  }

  it('copyingScore is +1 for a head built to copy and −1 for one built to suppress (hand computation)', () => {
    const model = copyModel();
    // E·V·Vᵀ·Eᵀ = (E·V)(E·V)ᵀ is positive semi-definite: every nonzero eigenvalue is positive
    const copy = copyingScore(model, 0, 0);
    const suppress = copyingScore(model, 0, 1);
    expect(copy.score).toBeCloseTo(1, 6);
    expect(copy.positiveFraction).toBe(1);
    expect(copy.eigenvalues).toHaveLength(E);
    expect(suppress.score).toBeCloseTo(-1, 6);
    expect(suppress.positiveFraction).toBe(0);
    // its eigenvalues are the squared singular values of E·V (two different algorithms, one identity)
    const EV = matmul(mat(20, D, model.param('embed.W_E').dataSync()), mat(D, E, model.param('blocks.0.attn.W_V').dataSync().subarray(0, D * E)));
    const s = svd(EV).S;
    copy.eigenvalues.forEach((e, i) => {
      expect(Math.abs(e.re - s[i] * s[i]) / (s[0] * s[0])).toBeLessThan(1e-9);
      expect(e.im).toBe(0);
    });
    const random = copyingScore(model, 0, 2);
    expect(Math.abs(random.score)).toBeLessThan(0.9);
    const all = copyingScores(model);
    expect(all.map((s) => s.label)).toEqual(['L0H0', 'L0H1', 'L0H2']);
    model.dispose();
  });

  it('copyingScores, 20 times, leaves numTensors unchanged', () => {
    const model = copyModel();
    copyingScores(model);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) copyingScores(model);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('against numpy on the transformers fixtures', () => {
  it.each(Object.keys(NUMPY))('compositionScores(%s, q|k|v) equal numpy’s dense scores for every head pair (1e-9 relative)', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    let worst = 0;
    for (const kind of ['q', 'k', 'v'] as const) {
      const got = new Map(compositionScores(model, kind, { baselineSamples: 1 }).pairs.map((p) => [`${p.from.label}>${p.to.label}`, p.score]));
      const want = NUMPY[name].composition[kind];
      expect(got.size).toBe(want.length);
      for (const [la, ha, lb, hb, score] of want) worst = Math.max(worst, Math.abs(got.get(`L${la}H${ha}>L${lb}H${hb}`)! - score) / score);
    }
    expect(worst).toBeLessThan(1e-9);
    model.dispose();
  });

  it.each(Object.keys(NUMPY))('copyingScores(%s) equal Σλ/Σ|λ| of numpy’s eigenvalues of the dense vocab × vocab W_E·OV·W_U (1e-9)', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const got = copyingScores(model);
    expect(got).toHaveLength(NUMPY[name].copying.length);
    NUMPY[name].copying.forEach(([l, h, score], i) => {
      expect(got[i].label).toBe(`L${l}H${h}`);
      expect(Math.abs(got[i].score - score)).toBeLessThan(1e-9);
    });
    model.dispose();
  });
});

describe('compositionScores and compositionScore agree', () => {
  it('compositionScores(model, kind) gives, for every pair, compositionScore of the circuits themselves', async () => {
    const { ovCircuit, qkCircuit } = await import('../src/interp/weights/head_circuits.js');
    const cfg = makeConfig({ d_model: 24, n_layers: 3, n_heads: 2, n_key_value_heads: 1, d_head: 6, d_vocab: 10, n_ctx: 4, attn_only: true });
    const model = HookedTransformer.random(cfg, { seed: 8 });
    for (const kind of ['q', 'k', 'v'] as const) {
      for (const p of compositionScores(model, kind, { baselineSamples: 1 }).pairs) {
        const qk = qkCircuit(model, p.to.layer, p.to.head);
        const right = kind === 'q' ? qk : kind === 'k' ? qk.transpose() : ovCircuit(model, p.to.layer, p.to.head);
        expect(Math.abs(p.score - compositionScore(ovCircuit(model, p.from.layer, p.from.head), right))).toBeLessThan(1e-12);
      }
    }
    model.dispose();
  });
});
