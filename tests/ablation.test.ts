/**
 * Ablation against exact arithmetic: hand recomputation of a zero-ablated head on a tiny attention-only
 * model, reference means and resampled rows read back from the run, uniform patterns equal to
 * 1/(allowed keys), GQA/MQA kv-head ablation, and leak tests.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import {
  drawRows,
  headAblationHooks,
  kvHeadAblationHooks,
  mlpAblationHooks,
  queryHeadsOf,
  runWithAblatedHeads,
  type AblationKind,
} from '../src/interp/interventions/ablation.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

let gpt2: HookedTransformer;
let gqa: HookedTransformer;
let mqa: HookedTransformer;
let mistral: HookedTransformer;
let toy: HookedTransformer;

const TOKENS = [
  [10, 20, 30, 40, 50, 60],
  [11, 21, 31, 41, 51, 61],
];
const REF = [
  [1, 2, 3, 4, 5, 6, 7],
  [8, 9, 10, 11, 12, 13, 14],
  [15, 16, 17, 18, 19, 20, 21],
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  gqa = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
  mqa = await loadPretrained(path.join(FIXTURES, 'llama-mqa-tied-bias-bf16'));
  mistral = await loadPretrained(path.join(FIXTURES, 'mistral-sliding'));
  toy = HookedTransformer.random(
    makeConfig({ d_model: 12, n_layers: 2, n_heads: 3, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: 'LN' }),
    { seed: 3, std: 0.4 },
  );
});

afterAll(() => [gpt2, gqa, mqa, mistral, toy].forEach((m) => m.dispose()));

const arr = (t: tf.Tensor) => t.arraySync() as never;
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);

/** The activation at `name` after the hooks ran (runWithCache caches what the hooks returned). */
function hooked(model: HookedTransformer, tokens: number[][], hooks: ReturnType<typeof headAblationHooks>, name: string): number[][][][] {
  const { logits, cache } = model.runWithCache(tokens, { fwdHooks: hooks, names: [name] });
  const out = arr(cache.get(name));
  cache.dispose();
  logits.dispose();
  return out;
}

function refCache(model: HookedTransformer, names: string[]) {
  const { logits, cache } = model.runWithCache(REF, { names });
  logits.dispose();
  return cache;
}

describe('headAblationHooks', () => {
  it('runWithAblatedHeads(zero) equals a hand recomputation of the final residual, LayerNorm and unembedding', () => {
    const L = 1;
    const H = 2;
    const ablated = runWithAblatedHeads(toy, TOKENS, [{ layer: L, head: H }], { kind: 'zero' });
    const { logits, cache } = toy.runWithCache(TOKENS, { names: [actName('z', L), actName('resid_post', L)] });
    const z: number[][][][] = arr(cache.get(actName('z', L))); // [batch, pos, head, d_head]
    const resid: number[][][] = arr(cache.get(actName('resid_post', L))); // [batch, pos, d_model]
    const WO: number[][][] = arr(toy.param(`blocks.${L}.attn.W_O`)); // [head, d_head, d_model]
    const w: number[] = arr(toy.param('ln_final.w'));
    const b: number[] = arr(toy.param('ln_final.b'));
    const WU: number[][] = arr(toy.param('unembed.W_U'));
    const bU: number[] = arr(toy.param('unembed.b_U'));
    const { d_model: d, d_head: e, d_vocab: V, eps } = toy.cfg;
    const got: number[][][] = arr(ablated);
    let worst = 0;
    for (let bi = 0; bi < TOKENS.length; bi++) {
      for (let p = 0; p < TOKENS[0].length; p++) {
        // the head's output removed by hand: x − z_H · W_O[H]
        const x = Array.from({ length: d }, (_, j) => resid[bi][p][j] - Array.from({ length: e }, (_, k) => z[bi][p][H][k] * WO[H][k][j]).reduce((s, v) => s + v, 0));
        const mean = x.reduce((s, v) => s + v, 0) / d;
        const varc = x.reduce((s, v) => s + (v - mean) ** 2, 0) / d;
        const n = x.map((v, j) => ((v - mean) / Math.sqrt(varc + eps)) * w[j] + b[j]);
        for (let t = 0; t < V; t++) {
          const logit = n.reduce((s, v, j) => s + v * WU[j][t], 0) + bU[t];
          worst = Math.max(worst, Math.abs(logit - got[bi][p][t]));
        }
      }
    }
    expect(worst).toBeLessThan(1e-5);
    expect(maxDiff(ablated, logits)).toBeGreaterThan(1e-3); // the head mattered
    [ablated, logits].forEach((t) => t.dispose());
    cache.dispose();
  });

  it('zero-ablating a head whose W_O is zero changes nothing', async () => {
    const m = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const WO = m.param('blocks.0.attn.W_O');
    const mask = tf.tidy(() => tf.sub(1, tf.oneHot(1, 4).reshape([4, 1, 1])));
    m.setParams({ 'blocks.0.attn.W_O': WO.mul(mask) });
    mask.dispose();
    const plain = m.forward(TOKENS);
    const ablated = runWithAblatedHeads(m, TOKENS, [{ layer: 0, head: 1 }], { kind: 'zero' });
    expect(maxDiff(plain, ablated)).toBe(0);
    [plain, ablated].forEach((t) => t.dispose());
    m.dispose();
  });

  it("headAblationHooks(mean) writes the reference batch's mean z, per position or over positions", () => {
    const name = actName('z', 0);
    const ref = refCache(gpt2, [name]);
    const rz: number[][][][] = arr(ref.get(name)); // [3, 7, head, d_head]
    const perPos = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 0, head: 3 }], { kind: 'mean', reference: ref }), name);
    const overPos = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 0, head: 3 }], { kind: 'mean', reference: ref, perPosition: false }), name);
    const plain = hooked(gpt2, TOKENS, [], name);
    let worst = 0;
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < 6; p++) {
        for (let k = 0; k < 8; k++) {
          const meanP = (rz[0][p][3][k] + rz[1][p][3][k] + rz[2][p][3][k]) / 3;
          let meanAll = 0;
          for (let r = 0; r < 3; r++) for (let q = 0; q < 7; q++) meanAll += rz[r][q][3][k] / 21;
          worst = Math.max(worst, Math.abs(perPos[b][p][3][k] - meanP), Math.abs(overPos[b][p][3][k] - meanAll));
          for (const h of [0, 1, 2]) worst = Math.max(worst, Math.abs(perPos[b][p][h][k] - plain[b][p][h][k]));
        }
      }
    }
    expect(worst).toBeLessThan(1e-6);
    ref.dispose();
  });

  it('headAblationHooks(resample, seed) copies the seeded reference rows, the same for the same seed', () => {
    const name = actName('z', 1);
    const ref = refCache(gpt2, [name]);
    const rz: number[][][][] = arr(ref.get(name));
    const got = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 1, head: 0 }], { kind: 'resample', reference: ref, seed: 5 }), name);
    const rows = drawRows(2, 3, 5 * 7919 + 1);
    for (let b = 0; b < 2; b++) for (let p = 0; p < 6; p++) expect(got[b][p][0]).toEqual(rz[rows[b]][p][0]);
    const again = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 1, head: 0 }], { kind: 'resample', reference: ref, seed: 5 }), name);
    expect(again).toEqual(got);
    expect(new Set(Array.from({ length: 20 }, (_, s) => drawRows(4, 3, s).join())).size).toBeGreaterThan(1);
    ref.dispose();
  });

  it('drawRows(n, nRef, seed) draws the rows it drew with its own mulberry32 before it used Random', () => {
    // frozen from the earlier copy of the generator: resampled ablations, and the numbers derived from them, stay the same
    expect(drawRows(4, 3, 0)).toEqual([0, 0, 0, 0]);
    expect(drawRows(6, 7, 5 * 7919 + 1)).toEqual([5, 4, 4, 2, 3, 1]);
    expect(drawRows(5, 1000, 0xffffffff)).toEqual([896, 189, 715, 944, 845]);
    expect(drawRows(3, 10, -7)).toEqual([4, 3, 5]);
  });

  it('headAblationHooks(uniform) makes the pattern 1/(allowed keys), also under a sliding window', () => {
    const name = actName('pattern', 1);
    const pat = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 1, head: 2 }], { kind: 'uniform' }), name);
    const plain = hooked(gpt2, TOKENS, [], name);
    for (let q = 0; q < 6; q++) for (let k = 0; k < 6; k++) expect(pat[0][2][q][k]).toBeCloseTo(k <= q ? 1 / (q + 1) : 0, 6);
    expect(pat[1][1]).toEqual(plain[1][1]);
    const window = mistral.cfg.sliding_window!;
    const long = [Array.from({ length: Math.min(mistral.cfg.n_ctx, window + 3) }, (_, i) => i + 5)];
    const mp = hooked(mistral, long, headAblationHooks(mistral, [{ layer: 0, head: 1 }], { kind: 'uniform' }), actName('pattern', 0));
    const n = long[0].length;
    for (let q = 0; q < n; q++) {
      const allowed = Math.min(q + 1, window);
      for (let k = 0; k < n; k++) expect(mp[0][1][q][k]).toBeCloseTo(k <= q && q - k < window ? 1 / allowed : 0, 6);
    }
  });

  it('headAblationHooks(…, {positions}) changes only those query positions', () => {
    const name = actName('z', 0);
    const got = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 0, head: 0 }], { kind: 'zero', positions: [2, 4] }), name);
    const plain = hooked(gpt2, TOKENS, [], name);
    for (let p = 0; p < 6; p++) {
      if (p === 2 || p === 4) expect(got[0][p][0].every((v) => v === 0)).toBe(true);
      else expect(got[0][p][0]).toEqual(plain[0][p][0]);
    }
    const pat = hooked(gpt2, TOKENS, headAblationHooks(gpt2, [{ layer: 0, head: 0 }], { kind: 'uniform', positions: [3] }), actName('pattern', 0));
    const plainPat = hooked(gpt2, TOKENS, [], actName('pattern', 0));
    expect(pat[0][0][3].slice(0, 4).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(pat[0][0][2]).toEqual(plainPat[0][0][2]);
  });

  for (const [label, get] of [
    ['GQA (llama-gqa, 8 heads over 2 kv heads)', () => gqa],
    ['MQA (llama-mqa-tied-bias-bf16, 4 heads over 1 kv head)', () => mqa],
  ] as const) {
    it(`every kind changes exactly the ablated query head's z under ${label}`, () => {
      const model = get();
      const name = actName('z', 1);
      const ref = refCache(model, [name]);
      const plain = hooked(model, TOKENS, [], name);
      for (const kind of ['zero', 'mean', 'resample', 'uniform'] as AblationKind[]) {
        const got = hooked(model, TOKENS, headAblationHooks(model, [{ layer: 1, head: 1 }], { kind, reference: ref, seed: 1 }), name);
        for (let h = 0; h < model.cfg.n_heads; h++) {
          const d = Math.max(...got[0].flatMap((row, p) => row[h].map((v, k) => Math.abs(v - plain[0][p][h][k]))));
          if (h === 1) expect(d, `${kind} head ${h}`).toBeGreaterThan(1e-4);
          else expect(d, `${kind} head ${h}`).toBe(0);
        }
      }
      ref.dispose();
    });

    it(`kvHeadAblationHooks(zero) zeroes z of every query head of the group under ${label}`, () => {
      const model = get();
      const name = actName('z', 0);
      const group = queryHeadsOf(model, 0);
      expect(group.length).toBe(model.cfg.n_heads / model.cfg.n_key_value_heads);
      const got = hooked(model, TOKENS, kvHeadAblationHooks(model, [{ layer: 0, kvHead: 0 }], { kind: 'zero' }), name);
      const plain = hooked(model, TOKENS, [], name);
      for (let h = 0; h < model.cfg.n_heads; h++) {
        const zs = got[1].flatMap((row) => row[h]);
        if (group.includes(h)) expect(zs.every((v) => v === 0)).toBe(true);
        else expect(zs).toEqual(plain[1].flatMap((row) => row[h]));
      }
      const ref = refCache(model, [actName('k', 0), actName('v', 0)]);
      for (const kind of ['mean', 'resample'] as const) {
        const logits = model.runWithHooks(TOKENS, { fwdHooks: kvHeadAblationHooks(model, [{ layer: 0, kvHead: 0 }], { kind, reference: ref }) });
        const base = model.forward(TOKENS);
        expect(maxDiff(logits, base)).toBeGreaterThan(1e-5);
        [logits, base].forEach((t) => t.dispose());
      }
      ref.dispose();
    });
  }
});

describe('mlpAblationHooks', () => {
  it('mlpAblationHooks(zero | mean) replaces hook_mlp_out', () => {
    const name = actName('mlp_out', 0);
    const zero = hooked(gpt2, TOKENS, mlpAblationHooks(gpt2, [0], { kind: 'zero' }), name);
    expect(zero.flat(3).every((v) => v === 0)).toBe(true);
    const ref = refCache(gpt2, [name]);
    const rm: number[][][] = arr(ref.get(name));
    const mean = hooked(gpt2, TOKENS, mlpAblationHooks(gpt2, [0], { kind: 'mean', reference: ref }), name) as unknown as number[][][];
    expect(mean[1][2][5]).toBeCloseTo((rm[0][2][5] + rm[1][2][5] + rm[2][2][5]) / 3, 6);
    ref.dispose();
  });
});

describe('bad input', () => {
  it('ablation of an unknown head, a missing reference, or a uniform MLP is a HeadlensError', () => {
    expect(() => headAblationHooks(gpt2, [{ layer: 0, head: 4 }], { kind: 'zero' })).toThrow(HeadlensError);
    expect(() => headAblationHooks(gpt2, [{ layer: 2, head: 0 }], { kind: 'zero' })).toThrow(HeadlensError);
    expect(() => headAblationHooks(gpt2, [{ layer: 0, head: 0 }], { kind: 'mean' })).toThrow(/reference cache/);
    expect(() => headAblationHooks(gpt2, [{ layer: 0, head: 0 }], { kind: 'nope' as AblationKind })).toThrow(HeadlensError);
    expect(() => mlpAblationHooks(gpt2, [0], { kind: 'uniform' })).toThrow(HeadlensError);
    expect(() => kvHeadAblationHooks(gqa, [{ layer: 0, kvHead: 2 }], { kind: 'zero' })).toThrow(HeadlensError);
    const ref = refCache(gpt2, [actName('z', 1)]);
    expect(() => runWithAblatedHeads(gpt2, TOKENS, [{ layer: 0, head: 0 }], { kind: 'mean', reference: ref })).toThrow(/holds no/);
    ref.dispose();
  });
});

describe('leaks', () => {
  it('runWithAblatedHeads / kvHeadAblationHooks / mlpAblationHooks of every kind, 30 times, leave numTensors unchanged', () => {
    const ref = refCache(gpt2, [actName('z', 0), actName('mlp_out', 1)]);
    const kvRef = refCache(gqa, [actName('k', 1), actName('v', 1)]);
    const once = () => {
      for (const kind of ['zero', 'mean', 'resample', 'uniform'] as AblationKind[]) {
        runWithAblatedHeads(gpt2, TOKENS, [{ layer: 0, head: 1 }, { layer: 0, head: 2 }], { kind, reference: ref, positions: [1, 5] }).dispose();
      }
      gpt2.runWithHooks(TOKENS, { fwdHooks: mlpAblationHooks(gpt2, [1], { kind: 'resample', reference: ref }) }).dispose();
      gqa.runWithHooks(TOKENS, { fwdHooks: kvHeadAblationHooks(gqa, [{ layer: 1, kvHead: 1 }], { kind: 'mean', reference: kvRef }) }).dispose();
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) once();
    expect(tf.memory().numTensors).toBe(before);
    ref.dispose();
    kvRef.dispose();
  });
});
