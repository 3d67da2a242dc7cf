/**
 * headlens' tiled WGSL matmul (src/backend/webgpu_kernels/matmul_tiled.ts) on SwiftShader against float64 products
 * computed here in JavaScript, and a forward of ≥ 64 rows against the same forward on wasm. Each check also
 * counts the programs run, so a product that silently fell back to tfjs' kernel cannot pass as the tiled one.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { webgpuMatMul } from '../src/backend/webgpu_kernels/matmul_tiled.js';
import { loadPretrained } from '../src/loading/load.js';
import { formatMatmulBench, runMatmulBench } from '../src/bench/matmul.js';
import { countPrograms, FIXTURES, startSoftwareWebGPU, randomValues, relError } from './helpers.js';

const TOL = 1e-5;


/** float64 reference of tfjs' matMul semantics: leading dimensions broadcast, transposes of the last two. */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, bias?: Float32Array): { data: Float64Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const m = tA ? aShape[ra - 1] : aShape[ra - 2];
  const k = tA ? aShape[ra - 2] : aShape[ra - 1];
  const n = tB ? bShape[rb - 2] : bShape[rb - 1];
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const rank = Math.max(outerA.length, outerB.length);
  const pa = [...Array(rank - outerA.length).fill(1), ...outerA];
  const pb = [...Array(rank - outerB.length).fill(1), ...outerB];
  const outer = pa.map((d, i) => Math.max(d, pb[i]));
  const batch = outer.reduce((s, d) => s * d, 1);
  const data = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    // coordinates of bi in `outer`, then the flat batch index of each operand (broadcast dims read at 0)
    let rest = bi;
    let ia = 0;
    let ib = 0;
    const coords: number[] = [];
    for (let d = rank - 1; d >= 0; d--) {
      coords[d] = rest % outer[d];
      rest = Math.floor(rest / outer[d]);
    }
    for (let d = 0; d < rank; d++) {
      ia = ia * pa[d] + (pa[d] === 1 ? 0 : coords[d]);
      ib = ib * pb[d] + (pb[d] === 1 ? 0 : coords[d]);
    }
    const A = (i: number, kk: number) => a[ia * m * k + (tA ? kk * m + i : i * k + kk)];
    const B = (kk: number, j: number) => b[ib * k * n + (tB ? j * k + kk : kk * n + j)];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let kk = 0; kk < k; kk++) s += A(i, kk) * B(kk, j);
        data[(bi * m + i) * n + j] = s;
      }
    }
  }
  return { data, shape: [...outer, m, n] };
}

/** The tiled matmul's dispatches and all others while fn runs. */
async function countTiled<T>(fn: () => Promise<T>): Promise<{ result: T; tiled: number; other: number }> {
  const { result, total, kinds } = await countPrograms(fn);
  const tiled = kinds.TiledMatMulProgram ?? 0;
  return { result, tiled, other: total - tiled };
}

interface Case {
  a: number[];
  b: number[];
  tA?: boolean;
  tB?: boolean;
  bias?: boolean;
  activation?: 'linear' | 'relu' | 'elu';
}

/** Runs one product on the webgpu backend; returns its relative error against float64 and the programs it ran. */
async function check(c: Case, seed: number): Promise<{ err: number; tiled: number }> {
  const sa = randomValues(c.a.reduce((s, d) => s * d, 1), seed);
  const sb = randomValues(c.b.reduce((s, d) => s * d, 1), seed + 7);
  const n = c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
  const sbias = c.bias ? randomValues(n, seed + 13) : undefined;
  const ref = reference(sa, c.a, sb, c.b, !!c.tA, !!c.tB, sbias);
  if (c.activation === 'relu') for (let i = 0; i < ref.data.length; i++) ref.data[i] = Math.max(0, ref.data[i]);
  if (c.activation === 'elu') for (let i = 0; i < ref.data.length; i++) ref.data[i] = ref.data[i] > 0 ? ref.data[i] : Math.expm1(ref.data[i]);
  const a = tf.tensor(sa, c.a);
  const b = tf.tensor(sb, c.b);
  const bias = sbias ? tf.tensor1d(sbias) : undefined;
  const { result, tiled } = await countTiled(async () => {
    const out = c.bias || c.activation ? tf.fused.matMul({ a, b, transposeA: c.tA, transposeB: c.tB, bias, activation: c.activation }) : tf.matMul(a, b, c.tA, c.tB);
    expect(out.shape).toEqual(ref.shape);
    const v = (await out.data()) as Float32Array;
    out.dispose();
    return v;
  });
  tf.dispose([a, b, ...(bias ? [bias] : [])]);
  return { err: relError(result, ref.data), tiled };
}

let wasmLogits: Record<string, { data: Float32Array; shape: number[] }> = {};
const FORWARD_TOKENS = (vocab: number) => Array.from({ length: 4 }, (_, b) => Array.from({ length: 24 }, (_, p) => (b * 131 + p * 17 + 3) % vocab)); // 96 rows

beforeAll(async () => {
  // the reference forward on wasm first: the webgpu backend then starts in the same process
  await initBackend({ backend: 'wasm' });
  for (const name of ['gpt2']) {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const logits = model.runWithHooks(FORWARD_TOKENS(model.cfg.d_vocab));
    wasmLogits[name] = { data: logits.dataSync() as Float32Array, shape: logits.shape };
    logits.dispose();
    model.dispose();
  }
  await startSoftwareWebGPU();
}, 120_000);

// the tests exercise the kernel from 64 rows (the defaults take it from 256, or 64 rows of a wide product)
const TEST_FLAGS = { tiled: true, minRows: 64, wideN: 16384, tileK: 8 as const, tile: 'auto' as const, smallTileBelow: 256, gemvMaxRows: 8, gemvLanes: 4 as const, gemvGroups: 1 as const };
beforeAll(() => {
  Object.assign(webgpuMatMul, TEST_FLAGS);
});
afterEach(() => {
  Object.assign(webgpuMatMul, TEST_FLAGS);
});

describe('tiled WGSL matmul (webgpu on SwiftShader) against float64', () => {
  // Each distinct set of flags (transposes, vec4 or scalar reads, whole or ragged tiles, bias, relu, K slice) is its
  // own shader, and SwiftShader takes seconds to compile one: the cases below cover every code path in few shaders.
  it('square, ragged, transposed and batched products with a broadcast batch, bias and relu: within 1e-5 relative, tiled', async () => {
    webgpuMatMul.tile = 128;
    const cases: Case[] = [
      { a: [128, 128], b: [128, 128] }, // whole tiles, vec4 reads and writes
      { a: [130, 77], b: [77, 259] }, // ragged M, N, K across tile edges: scalar reads, bounds everywhere
      { a: [2, 3, 130, 77], b: [3, 77, 259] }, // the same shader; b broadcast over the first dimension
      { a: [1, 130, 77], b: [2, 77, 259] }, // a broadcast
      { a: [77, 130], b: [259, 77], tA: true, tB: true, bias: true, activation: 'relu' },
      { a: [2, 77, 130], b: [3, 2, 259, 77], tA: true, tB: true }, // a read at batch % 2 (tfjs' fused matMul refuses this broadcast)
      { a: [132, 96], b: [132, 68], tA: true }, // vec4 reads, ragged tiles
      { a: [96, 132], b: [68, 132], tB: true, bias: true },
    ];
    for (const [i, c] of cases.entries()) {
      const { err, tiled } = await check(c, 100 + i);
      expect(tiled, JSON.stringify(c)).toBe(1);
      expect(err, JSON.stringify(c)).toBeLessThan(TOL);
    }
    // another activation goes to tfjs' kernel, and is still right
    const elu = await check({ a: [96, 40], b: [40, 72], bias: true, activation: 'elu' }, 150);
    expect(elu.tiled).toBe(0);
    expect(elu.err).toBeLessThan(TOL);
  }, 60_000);

  it('64×64 tiles, and a 16-deep K slice where the device allows its workgroup memory, give the same products', async () => {
    const limit = (tf.backend() as unknown as { device: { limits: { maxComputeWorkgroupStorageSize: number } } }).device.limits.maxComputeWorkgroupStorageSize;
    const c: Case = { a: [77, 130], b: [259, 77], tA: true, tB: true, bias: true, activation: 'relu' };
    for (const [i, [tile, tileK]] of ([[64, 8], [128, 16]] as const).entries()) {
      Object.assign(webgpuMatMul, { tile, tileK });
      const { err, tiled } = await check(c, 400 + i);
      expect(tiled).toBe(1);
      expect(err, `tile ${tile}, tileK ${tileK} (device limit ${limit} bytes)`).toBeLessThan(TOL);
    }
    // 'auto' takes 64×64 tiles when 128×128 ones would be few; checked through the program's dispatch
    webgpuMatMul.tile = 'auto';
    const be = tf.backend() as unknown as { runWebGPUProgram: (p: { workgroupSize: number[] }, ...rest: unknown[]) => unknown };
    const run = be.runWebGPUProgram;
    const sizes: number[][] = [];
    be.runWebGPUProgram = function (this: unknown, p, ...rest) {
      sizes.push(p.workgroupSize);
      return run.call(this, p, ...rest);
    };
    try {
      const a = tf.ones([130, 77]);
      const b = tf.ones([77, 259]);
      const y = tf.matMul(a, b);
      expect(Array.from((await y.data()).slice(0, 2))).toEqual([77, 77]);
      tf.dispose([a, b, y]);
    } finally {
      be.runWebGPUProgram = run;
    }
    expect(sizes).toContainEqual([8, 8, 1]);
  }, 60_000);

  it('small M, and the switch off, go to tfjs’ kernels; nothing leaks', async () => {
    const small = await check({ a: [16, 64], b: [64, 96] }, 500);
    expect(small.tiled).toBe(0);
    expect(small.err).toBeLessThan(TOL);
    webgpuMatMul.tiled = false;
    const off = await check({ a: [128, 64], b: [64, 128] }, 501);
    expect(off.tiled).toBe(0);
    expect(off.err).toBeLessThan(TOL);
    webgpuMatMul.tiled = true;
    const a = tf.tensor(randomValues(130 * 77, 1), [130, 77]);
    const b = tf.tensor(randomValues(77 * 259, 2), [77, 259]);
    const bias = tf.tensor1d(randomValues(259, 3));
    const before = tf.memory();
    for (let i = 0; i < 2; i++) {
      const y = tf.matMul(a, b);
      const z = tf.fused.matMul({ a, b, bias });
      await z.data();
      tf.dispose([y, z]);
    }
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    tf.dispose([a, b, bias]);
  }, 60_000);

  it('a forward of 96 rows (gpt2 fixture) equals the wasm forward within 1e-4, its projections tiled', async () => {
    for (const name of ['gpt2']) {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const { result, tiled } = await countTiled(async () => {
        const logits = model.runWithHooks(FORWARD_TOKENS(model.cfg.d_vocab));
        expect(logits.shape).toEqual(wasmLogits[name].shape);
        const v = (await logits.data()) as Float32Array;
        logits.dispose();
        return v;
      });
      model.dispose();
      const ref = wasmLogits[name].data;
      let err = 0;
      let scale = 0;
      for (let i = 0; i < ref.length; i++) {
        err = Math.max(err, Math.abs(result[i] - ref[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      expect(tiled, name).toBeGreaterThanOrEqual(model.cfg.n_layers * 2); // at least the attention output and MLP per layer
      expect(err / scale, name).toBeLessThan(1e-4);
    }
  }, 60_000);
  it('runMatmulBench times tfjs and the tiled program on the same operands and checks both against float64', async () => {
    const r = await runMatmulBench({
      shapes: [
        { name: 'ragged', batch: 1, m: 130, k: 77, n: 259 },
        { name: 'few rows', batch: 2, m: 16, k: 77, n: 259 },
      ],
      tileKs: [8],
      tiles: [64],
      reps: 1,
      trials: 1,
      samples: 4,
    });
    const [ragged, few] = r.rows;
    expect(ragged.error).toBeUndefined();
    expect(ragged.variants.map((v) => [v.variant, v.tiled, v.ok])).toEqual([
      ['tfjs', false, true],
      ['t64 k8', true, true],
    ]);
    for (const v of ragged.variants) {
      expect(v.rel_err_vs_float64).toBeLessThan(TOL);
      expect(v.rel_diff_vs_tfjs).toBeLessThan(TOL);
      expect(v.tflops).toBeGreaterThan(0);
    }
    expect(ragged.speedup).toBeGreaterThan(0);
    // 16 rows: the tiled switch on still runs tfjs' kernel, and the table says so
    expect(few.variants.map((v) => v.tiled)).toEqual([false, false]);
    expect(few.speedup).toBeUndefined();
    expect(formatMatmulBench(r)).toMatch(/few rows .*\*/);
    expect(webgpuMatMul).toEqual(TEST_FLAGS);
  }, 60_000);
});
