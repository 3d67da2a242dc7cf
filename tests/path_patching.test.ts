/**
 * Path patching against hand recomputation on a tiny attention-only model: sender → logits is the
 * clean final residual plus the sender's Δz·W_O through LayerNorm and W_U; sender → a receiver's query is
 * the clean run with that query recomputed from (clean resid_pre + Δz·W_O).
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { logitDiff, metricValue } from '../src/interp/metrics.js';
import { activationPatching } from '../src/interp/interventions/patching.js';
import { pathPatch, pathPatchingSweep, pathPatchMany } from '../src/interp/interventions/path_patching.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

const CLEAN = [
  [10, 20, 30, 40, 50],
  [11, 21, 31, 41, 51],
];
const CORRUPTED = [
  [10, 25, 30, 40, 50],
  [13, 21, 31, 41, 51],
];
const metric = logitDiff([7, 8], [9, 12]);
let toy: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  toy = HookedTransformer.random(
    makeConfig({ d_model: 12, n_layers: 3, n_heads: 3, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: 'LN' }),
    { seed: 21, std: 0.5 },
  );
});
afterAll(() => toy.dispose());

const arr = (t: tf.Tensor) => t.arraySync() as never;

function ln(x: number[], w: number[], b: number[], eps: number): number[] {
  const d = x.length;
  const m = x.reduce((s, v) => s + v, 0) / d;
  const sd = Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / d + eps);
  return x.map((v, j) => ((v - m) / sd) * w[j] + b[j]);
}

/** Δ of one head's output, clean → corrupted: (z_corr − z_clean)[head] · W_O[head], [batch][pos][d_model]. */
function headDelta(layer: number, head: number): number[][][] {
  const grab = (tokens: number[][]) => {
    const { logits, cache } = toy.runWithCache(tokens, { names: [actName('z', layer)] });
    const z = arr(cache.get(actName('z', layer))) as number[][][][];
    cache.dispose();
    logits.dispose();
    return z;
  };
  const zc = grab(CLEAN);
  const zx = grab(CORRUPTED);
  const WO = arr(toy.param(`blocks.${layer}.attn.W_O`)) as number[][][];
  return zc.map((row, b) => row.map((_, p) => WO[head][0].map((_, j) => WO[head].reduce((s, wk, k) => s + (zx[b][p][head][k] - zc[b][p][head][k]) * wk[j], 0))));
}

describe('pathPatch', () => {
  it('pathPatch(sender → logits) equals the clean final residual + Δz·W_O, LayerNorm, unembed (by hand)', () => {
    const got = pathPatch(toy, [{ layer: 0, head: 1 }], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const delta = headDelta(0, 1);
    const { logits, cache } = toy.runWithCache(CLEAN, { names: [actName('resid_post', 2)] });
    const resid = arr(cache.get(actName('resid_post', 2))) as number[][][];
    cache.dispose();
    logits.dispose();
    const w = arr(toy.param('ln_final.w')) as number[];
    const b = arr(toy.param('ln_final.b')) as number[];
    const WU = arr(toy.param('unembed.W_U')) as number[][];
    const bU = arr(toy.param('unembed.b_U')) as number[];
    const answers = [[7, 9], [8, 12]];
    let total = 0;
    for (let bi = 0; bi < 2; bi++) {
      const n = ln(resid[bi][4].map((v, j) => v + delta[bi][4][j]), w, b, toy.cfg.eps);
      const logit = (t: number) => n.reduce((s, v, j) => s + v * WU[j][t], 0) + bU[t];
      total += logit(answers[bi][0]) - logit(answers[bi][1]);
    }
    expect(Math.abs(got - total / 2)).toBeLessThan(1e-5);
    // a path differs from the total effect: activation patching the same head also moves layers 1 and 2
    const noising = activationPatching(toy, 'head-out', { clean: CLEAN, corrupted: CORRUPTED, metric, direction: 'noising', byPos: false });
    expect(Math.abs(noising.get(0, 1) - got)).toBeGreaterThan(1e-4);
  });

  it("pathPatch(sender → receiver's q) equals the clean run with that query recomputed from resid_pre + Δz·W_O (by hand)", () => {
    const R = { layer: 2, head: 0 };
    const got = pathPatch(toy, [{ layer: 0, head: 2 }], { kind: 'heads', heads: [R], inputs: ['q'] }, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const delta = headDelta(0, 2);
    const { logits, cache } = toy.runWithCache(CLEAN, { names: [actName('resid_pre', 2)] });
    const resid = arr(cache.get(actName('resid_pre', 2))) as number[][][];
    cache.dispose();
    logits.dispose();
    const w = arr(toy.param('blocks.2.ln1.w')) as number[];
    const b = arr(toy.param('blocks.2.ln1.b')) as number[];
    const WQ = arr(toy.param('blocks.2.attn.W_Q')) as number[][][];
    const bQ = arr(toy.param('blocks.2.attn.b_Q')) as number[][];
    // q of head 0 from the shifted residual: [batch][pos][d_head]
    const q = resid.map((row, bi) => row.map((x, p) => {
      const n = ln(x.map((v, j) => v + delta[bi][p][j]), w, b, toy.cfg.eps);
      return bQ[0].map((bias, k) => n.reduce((s, v, j) => s + v * WQ[0][j][k], 0) + bias);
    }));
    const qT = tf.tensor3d(q);
    const hand = toy.runWithHooks(CLEAN, {
      fwdHooks: [[actName('q', 2), (act) => {
        const sel = tf.tensor4d([1, 0, 0], [1, 1, 3, 1]).cast('bool');
        return tf.where(sel, qT.expandDims(2).tile([1, 1, 3, 1]), act);
      }]],
    });
    expect(Math.abs(got - metricValue(metric, hand))).toBeLessThan(1e-5);
    [qT, hand].forEach((t) => t.dispose());
  });

  it('pathPatch with senderPositions / receiverPositions: only the read position matters when the receivers are in the last layer', () => {
    const o = { clean: CLEAN, corrupted: CORRUPTED, metric };
    const logits = toy.forward(CLEAN);
    const clean = metricValue(metric, logits);
    logits.dispose();
    const S = [{ layer: 0, head: 1 }];
    const all = pathPatch(toy, S, { kind: 'logits' }, o);
    expect(Math.abs(pathPatch(toy, S, { kind: 'logits' }, { ...o, senderPositions: [4] }) - all)).toBeLessThan(1e-6);
    expect(Math.abs(pathPatch(toy, S, { kind: 'logits' }, { ...o, senderPositions: [0, 1, 2, 3] }) - clean)).toBeLessThan(1e-6);
    const R = { kind: 'heads' as const, heads: [{ layer: 2, head: 0 }], inputs: ['q' as const] };
    const allQ = pathPatch(toy, S, R, o);
    expect(Math.abs(allQ - clean)).toBeGreaterThan(1e-4);
    expect(Math.abs(pathPatch(toy, S, R, { ...o, receiverPositions: [4] }) - allQ)).toBeLessThan(1e-6);
    expect(Math.abs(pathPatch(toy, S, R, { ...o, receiverPositions: [0, 1, 2, 3] }) - clean)).toBeLessThan(1e-6);
    expect(() => pathPatch(toy, S, R, { ...o, receiverPositions: [5] })).toThrow(HeadlensError);
  });

  it('pathPatchingSweep stacks sender sets: equal to one pathPatch each; shaped [layer < receiver, head]', () => {
    const receiver = { kind: 'heads' as const, heads: [{ layer: 2, head: 1 }], inputs: ['k' as const, 'v' as const] };
    const sweep = pathPatchingSweep(toy, receiver, { clean: CLEAN, corrupted: CORRUPTED, metric, batchSize: 4 });
    expect(sweep.shape).toEqual([2, 3]);
    for (const [l, h] of [[0, 0], [1, 2]]) {
      const one = pathPatch(toy, [{ layer: l, head: h }], receiver, { clean: CLEAN, corrupted: CORRUPTED, metric });
      expect(Math.abs(sweep.get(l, h) - one)).toBeLessThan(1e-5);
    }
    expect(JSON.parse(JSON.stringify(sweep)).values.length).toBe(6);
    // no senders: nothing patched, the clean metric
    expect(pathPatchMany(toy, [[]], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric })[0]).toBeCloseTo(sweep.meta.clean as number, 5);
  });

  it('pathPatch works under GQA and MQA (k/v receivers patch the key/value head), with MLPs recomputed or frozen; no leaks', async () => {
    for (const name of ['llama-gqa', 'llama-mqa-tied-bias-bf16', 'pythia-parallel']) {
      const model = await loadPretrained(path.join(FIXTURES, name));
      for (const freezeMlps of [false, true]) {
        const s = pathPatchingSweep(model, { kind: 'heads', heads: [{ layer: 1, head: 1 }], inputs: ['q', 'k', 'v'] }, { clean: CLEAN, corrupted: CORRUPTED, metric, freezeMlps });
        expect(s.shape).toEqual([1, model.cfg.n_heads]);
        expect(s.values.every(Number.isFinite)).toBe(true);
        const l = pathPatchingSweep(model, { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric, freezeMlps });
        expect(l.shape).toEqual([2, model.cfg.n_heads]);
      }
      model.dispose();
    }
    expect(() => pathPatch(toy, [{ layer: 3, head: 0 }], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric })).toThrow(HeadlensError);
    expect(() => pathPatchingSweep(toy, { kind: 'heads', heads: [{ layer: 0, head: 0 }], inputs: ['q'] }, { clean: CLEAN, corrupted: CORRUPTED, metric })).toThrow(HeadlensError);
    const once = () => {
      pathPatchingSweep(toy, { kind: 'heads', heads: [{ layer: 2, head: 2 }], inputs: ['q', 'v'] }, { clean: CLEAN, corrupted: CORRUPTED, metric });
      pathPatch(toy, [{ layer: 1, head: 1 }], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric });
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) once();
    expect(tf.memory().numTensors).toBe(before);
  });
});
