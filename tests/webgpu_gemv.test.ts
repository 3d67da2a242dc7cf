/**
 * headlens' decode matmul (src/backend/webgpu_kernels/matmul_gemv.ts) on SwiftShader: products of 1–8 rows against
 * float64 products computed here in JavaScript and against tfjs' own kernel (the route off), for every code path
 * (vec4 and scalar reads of x and W, K not a multiple of 4 nor of the slices' 256, bias, each activation, x with
 * leading dimensions, transposeA), with a count of the programs run so a product that fell back to tfjs cannot pass
 * as the decode matmul; and a few-token forward of the llama-gqa fixture with the route on and off.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { matmul16Options } from '../src/backend/webgpu_kernels/matmul16.js';
import { webgpuMatMul } from '../src/backend/webgpu_kernels/matmul_tiled.js';
import { loadPretrained } from '../src/loading/load.js';
import { formatMatmulBench, runMatmulBench } from '../src/bench/matmul.js';
import { FIXTURES, startSoftwareWebGPU, randomValues, relError } from './helpers.js';

const TOL = 1e-5;
const DEFAULTS = { ...webgpuMatMul };


type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu' | 'prelu';
const ALPHA = 0.3;

/** float64 x·W (+ bias, activation) for x [M, K] (or [K, M] with tA), W [K, N]. */
function reference(x: Float32Array, W: Float32Array, M: number, K: number, N: number, tA: boolean, bias?: Float32Array, act: Activation = 'linear', prelu?: Float32Array): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j] : 0;
      for (let k = 0; k < K; k++) s += (tA ? x[k * M + i] : x[i * K + k]) * W[k * N + j];
      if (act === 'relu') s = Math.max(0, s);
      if (act === 'relu6') s = Math.min(6, Math.max(0, s));
      if (act === 'elu') s = s >= 0 ? s : Math.expm1(s);
      if (act === 'sigmoid') s = 1 / (1 + Math.exp(-s));
      if (act === 'leakyrelu') s = s < 0 ? ALPHA * s : s;
      if (act === 'prelu') s = s < 0 ? prelu![j] * s : s;
      out[i * N + j] = s;
    }
  }
  return out;
}

/** Counts the decode-matmul programs the webgpu backend runs while `fn` runs. */
async function countGemv<T>(fn: () => Promise<T>): Promise<{ result: T; gemv: number }> {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { constructor: { name: string } }, ...rest: unknown[]) => unknown };
  const run = be.runWebGPUProgram;
  let gemv = 0;
  be.runWebGPUProgram = function (this: unknown, p, ...rest) {
    if (p.constructor.name === 'GemvMatMulProgram') gemv++;
    return run.call(this, p, ...rest);
  };
  try {
    return { result: await fn(), gemv };
  } finally {
    be.runWebGPUProgram = run;
  }
}

interface Case {
  M: number;
  K: number;
  N: number;
  /** leading dimensions of x, folded into its M rows (their product divides M) */
  lead?: number[];
  tA?: boolean;
  bias?: boolean;
  act?: Activation;
}

/**
 * One product on webgpu with the route as set now: its output, and how many decode-matmul programs ran.
 * The operands depend only on the case and seed, so two calls give the same product.
 */
async function product(c: Case, seed: number) {
  const sx = randomValues(c.M * c.K, seed);
  const sw = randomValues(c.K * c.N, seed + 7);
  const sb = c.bias ? randomValues(c.N, seed + 13) : undefined;
  const sp = c.act === 'prelu' ? randomValues(c.N, seed + 17).map((v) => Math.abs(v)) : undefined;
  const lead = c.lead ?? [];
  const rows = c.M / lead.reduce((s, d) => s * d, 1);
  const x = tf.tensor(sx, c.tA ? [c.K, c.M] : [...lead, rows, c.K]);
  const W = tf.tensor(sw, lead.length ? [1, c.K, c.N] : [c.K, c.N]);
  const bias = sb ? tf.tensor1d(sb) : undefined;
  const prelu = sp ? tf.tensor1d(sp) : undefined;
  const { result, gemv } = await countGemv(async () => {
    const y =
      c.bias || c.act
        ? tf.fused.matMul({ a: x, b: W, transposeA: c.tA, bias, activation: c.act, preluActivationWeights: prelu, leakyreluAlpha: ALPHA })
        : tf.matMul(x, W, c.tA, false);
    expect(y.shape).toEqual(c.tA ? [c.M, c.N] : lead.length ? [...lead, rows, c.N] : [c.M, c.N]);
    const v = (await y.data()) as Float32Array;
    y.dispose();
    return v;
  });
  tf.dispose([x, W, ...(bias ? [bias] : []), ...(prelu ? [prelu] : [])]);
  return { out: result, gemv, ref: reference(sx, sw, c.M, c.K, c.N, !!c.tA, sb, c.act, sp) };
}

/** The product through the decode matmul and through tfjs' kernel (route off): errors against float64 and each other. */
async function check(c: Case, seed: number): Promise<{ err: number; vsTfjs: number; gemv: number; tfjsErr: number }> {
  webgpuMatMul.gemvMaxRows = 8;
  const on = await product(c, seed);
  webgpuMatMul.gemvMaxRows = 0;
  const off = await product(c, seed);
  expect(off.gemv, 'the route off runs no decode matmul').toBe(0);
  webgpuMatMul.gemvMaxRows = 8;
  return { err: relError(on.out, on.ref), vsTfjs: relError(on.out, off.out), gemv: on.gemv, tfjsErr: relError(off.out, off.ref) };
}

beforeAll(async () => {
  await startSoftwareWebGPU();
}, 60_000);
afterEach(() => {
  Object.assign(webgpuMatMul, DEFAULTS);
});

describe('decode matmul (webgpu on SwiftShader) against float64 and tfjs’ kernel', () => {
  // Each distinct row block (1, 2, 4, 8), read width, bias and activation is its own shader, and SwiftShader takes
  // seconds to compile one: the cases cover each path in few shaders.
  it('M 1, 3, 8, x with leading dimensions and transposed; N odd and not a multiple of 4; K not a multiple of 4 or 256: within 1e-5, on the decode matmul', async () => {
    const cases: Case[] = [
      { M: 1, K: 300, N: 1000 }, // vec4 x and W; K past one round of 64 slices × 4, not a multiple of it
      { M: 3, K: 77, N: 259, bias: true, act: 'relu' }, // odd N (scalar W), K % 4 = 1 (scalar x, zero-filled quad)
      { M: 8, K: 130, N: 262, bias: true }, // N % 4 = 2, K % 4 = 2
      { M: 8, K: 256, N: 384 }, // vec4 everywhere, 8 rows
      { M: 6, K: 96, N: 200, lead: [2, 3] }, // x [2, 3, 1, 96]·W [1, 96, 200]: leading dimensions fold into 6 rows
      { M: 2, K: 70, N: 132, tA: true, bias: true }, // x stored [K, M]
    ];
    for (const [i, c] of cases.entries()) {
      const r = await check(c, 100 + i);
      expect(r.gemv, JSON.stringify(c)).toBe(1);
      expect(r.err, JSON.stringify(c)).toBeLessThan(TOL);
      expect(r.vsTfjs, JSON.stringify(c)).toBeLessThan(TOL);
      expect(r.tfjsErr, JSON.stringify(c)).toBeLessThan(TOL);
    }
  }, 120_000);

  it('8 and 16 lanes a workgroup (32 and 16 slices), and two column groups a thread, give the same products', async () => {
    const odd: Case = { M: 3, K: 77, N: 259, bias: true, act: 'relu' };
    const settings: [4 | 8 | 16, 1 | 2, Case][] = [
      [8, 1, odd],
      [16, 1, odd],
      // 32 columns a workgroup: the last one's second group (columns 272…287) is partly past N = 276
      [4, 2, { M: 8, K: 256, N: 276 }],
      // 64 columns a workgroup: the last one's second group (columns 288…319) is wholly past N = 259
      [8, 2, odd],
    ];
    for (const [i, [lanes, groups, c]] of settings.entries()) {
      Object.assign(webgpuMatMul, { gemvLanes: lanes, gemvGroups: groups });
      const r = await check(c, 150 + i);
      const what = `${lanes} lanes, ${groups} groups, ${JSON.stringify(c)}`;
      expect(r.gemv, what).toBe(1);
      expect(r.err, what).toBeLessThan(TOL);
      expect(r.vsTfjs, what).toBeLessThan(TOL);
    }
  }, 60_000);

  it('bias with each activation _FusedMatMul has (tfjs’ formulas); prelu goes to tfjs', async () => {
    for (const [i, act] of (['relu6', 'elu', 'sigmoid', 'leakyrelu'] as const).entries()) {
      const r = await check({ M: 4, K: 128, N: 256, bias: true, act }, 200 + i);
      expect(r.gemv, act).toBe(1);
      expect(r.err, act).toBeLessThan(TOL);
      expect(r.vsTfjs, act).toBeLessThan(TOL);
    }
    const prelu = await check({ M: 4, K: 128, N: 256, bias: true, act: 'prelu' }, 210);
    expect(prelu.gemv).toBe(0);
    expect(prelu.err).toBeLessThan(TOL);
  }, 120_000);

  it('more rows than gemvMaxRows, a transposed W and a batched W go to the other kernels, still right; a larger gemvMaxRows takes 9 rows in two blocks; a bad gemvLanes is refused; nothing leaks', async () => {
    const nine = await check({ M: 9, K: 64, N: 128 }, 300);
    expect(nine.gemv).toBe(0);
    expect(nine.err).toBeLessThan(TOL);
    // a larger gemvMaxRows takes them, in two blocks of rows (8 and 1)
    webgpuMatMul.gemvMaxRows = 16;
    const sixteen = await product({ M: 9, K: 64, N: 128 }, 300);
    expect(sixteen.gemv).toBe(1);
    expect(relError(sixteen.out, sixteen.ref)).toBeLessThan(TOL);
    webgpuMatMul.gemvLanes = 5 as 4;
    const x5 = tf.ones([2, 64]);
    const w5 = tf.ones([64, 128]);
    expect(() => tf.matMul(x5, w5)).toThrow(/gemvLanes must be 4, 8 or 16, got 5/);
    tf.dispose([x5, w5]);
    webgpuMatMul.gemvLanes = 4;
    webgpuMatMul.gemvMaxRows = 8;
    const x = tf.tensor(randomValues(4 * 64, 1), [4, 64]);
    const Wt = tf.tensor(randomValues(128 * 64, 2), [128, 64]);
    const Wb = tf.tensor(randomValues(2 * 64 * 128, 3), [2, 64, 128]);
    const bias = tf.tensor1d(randomValues(128, 4));
    const others = await countGemv(async () => {
      const a = tf.matMul(x, Wt, false, true);
      const b = tf.matMul(x.reshape([1, 4, 64]), Wb);
      await Promise.all([a.data(), b.data()]);
      tf.dispose([a, b]);
    });
    expect(others.gemv).toBe(0);
    const W = tf.tensor(randomValues(64 * 128, 5), [64, 128]);
    const before = tf.memory();
    const taken = await countGemv(async () => {
      for (let i = 0; i < 2; i++) {
        const y = tf.matMul(x, W);
        const z = tf.fused.matMul({ a: x, b: W, bias, activation: 'relu' });
        await z.data();
        tf.dispose([y, z]);
      }
    });
    expect(taken.gemv).toBe(4);
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    tf.dispose([x, Wt, Wb, W, bias]);
  }, 60_000);

  it('runMatmulBench times tfjs, the decode matmul and the packed bf16 kernels at decode shapes, checks each, and reports GB/s of W', async () => {
    const shapes = [
      { name: 'decode 3', batch: 1, m: 3, k: 77, n: 259, bias: true },
      { name: 'decode 2', batch: 1, m: 2, k: 64, n: 264 },
    ];
    const r = await runMatmulBench({ shapes, gemvSettings: [[4, 1], [8, 2]], w16Lanes: [0, 4], reps: 1, decodeReps: 2, trials: 1, samples: 4 });
    for (const [i, row] of r.rows.entries()) {
      const { k, n } = shapes[i];
      expect(row.error).toBeUndefined();
      expect(row.variants.map((v) => [v.variant, v.tiled, v.ok])).toEqual([
        ['tfjs', false, true],
        ['gemv l4', true, true],
        ['gemv l8g2', true, true],
        ['bf16 pairs', true, true],
        ['bf16 l4', true, true],
      ]);
      for (const v of row.variants) {
        expect(v.rel_err_vs_float64).toBeLessThan(TOL);
        expect(v.rel_diff_vs_tfjs).toBeLessThan(TOL);
        const bytes = v.variant.startsWith('bf16') ? 2 : 4;
        expect(v.gbps).toBeCloseTo((bytes * k * n) / v.ms / 1e6, 6);
      }
      expect(row.default_variant).toBe('gemv l4');
    }
    expect(r.decode_reps).toBe(2);
    expect(formatMatmulBench(r)).toMatch(/GB\/s = bytes of W[^]*decode 3 .* ok/);
    expect(webgpuMatMul).toEqual(DEFAULTS);
    expect(matmul16Options.lanes).toBe(4);
  }, 60_000);

  it('a 6-token forward of llama-gqa takes the decode matmul for every projection and equals the forward without it within 1e-5', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
    const tokens = [[3, 17, 5, 9, 11, 2]];
    const logitsWith = async () => {
      const logits = model.runWithHooks(tokens);
      const v = (await logits.data()) as Float32Array;
      logits.dispose();
      return v;
    };
    const on = await countGemv(logitsWith);
    webgpuMatMul.gemvMaxRows = 0;
    const off = await countGemv(logitsWith);
    model.dispose();
    // per layer: the q/k/v projection(s), the attention output, gate, up and down; and the unembedding
    expect(on.gemv).toBeGreaterThanOrEqual(model.cfg.n_layers * 5 + 1);
    expect(off.gemv).toBe(0);
    expect(relError(on.result, off.result)).toBeLessThan(TOL);
  }, 60_000);
});
