/**
 * The lean dispatch path (src/backend/webgpu_dispatch.ts) on SwiftShader: the uniform bytes it writes are the ones
 * tfjs-backend-webgpu's own makeUniforms writes, and forwards, decoding and ops with many inputs give the same
 * numbers to the bit with it on and off, including when its uniform slots run out mid-submission.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { leanDispatchSlots, leanDispatchStats, uniformFields, uniformLayout, writeUniforms, type UniformEntry } from '../src/backend/webgpu_dispatch.js';
import { webgpuHostTuning } from '../src/backend/webgpu_uploads.js';
import { patchHeadsOneByOneAsync, patchHeadsSweepAsync } from '../src/bench/head_sweep.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { makeConfig, type HookedConfigInput } from '../src/model/config.js';
import { optimisations } from '../src/model/transformer.js';
import { KVCache } from '../src/model/kv_cache.js';
import { countPrograms, relError, startSoftwareWebGPU } from './helpers.js';

beforeAll(async () => {
  await startSoftwareWebGPU();
});

afterEach(() => {
  webgpuHostTuning.leanDispatch = true;
  leanDispatchSlots.slots = 512;
  optimisations.fusedKernels = true;
});

interface TfjsUniforms {
  makeUniforms(fields: UniformEntry[]): { size: number };
  queue: { writeBuffer: (buffer: unknown, offset: number, data: ArrayBuffer, dataOffset?: number, size?: number) => void };
}

/** The bytes tfjs' own makeUniforms writes for these fields (its queue.writeBuffer call, captured). */
function tfjsBytes(fields: UniformEntry[]): Uint8Array {
  const be = tf.backend() as unknown as TfjsUniforms;
  const write = be.queue.writeBuffer;
  let got: Uint8Array | undefined;
  be.queue.writeBuffer = (_buffer, _offset, data, dataOffset = 0, size) => {
    got = new Uint8Array(data.slice(dataOffset, dataOffset + (size ?? data.byteLength)));
  };
  try {
    be.makeUniforms(fields.map((f) => ({ ...f, data: [...f.data] })));
  } finally {
    be.queue.writeBuffer = write;
  }
  if (!got) throw new Error('tfjs wrote no uniforms');
  return got;
}

function leanBytes(fields: UniformEntry[]): Uint8Array {
  const { offsets, size } = uniformLayout(fields.map((f) => f.data.length));
  const ab = new ArrayBuffer(size);
  writeUniforms(fields, offsets, { f32: new Float32Array(ab), i32: new Int32Array(ab), u32: new Uint32Array(ab) }, 0);
  return new Uint8Array(ab);
}

/** Runs f with the lean path on, then off; returns both results' values and how many dispatches each path took. */
async function bothWays(f: () => tf.Tensor | Promise<tf.Tensor>): Promise<{ on: Float32Array; off: Float32Array; lean: number; fallback: number }> {
  const out: Float32Array[] = [];
  let lean = 0;
  let fallback = 0;
  for (const on of [true, false]) {
    webgpuHostTuning.leanDispatch = on;
    const before = { ...leanDispatchStats };
    const t = await f();
    out.push((await t.data()) as Float32Array);
    t.dispose();
    if (on) [lean, fallback] = [leanDispatchStats.lean - before.lean, leanDispatchStats.fallback - before.fallback];
  }
  return { on: out[0], off: out[1], lean, fallback };
}

describe('lean dispatch', () => {
  it("lays uniforms out byte for byte as tfjs' makeUniforms (scalars, vectors of 2–6, fields after a vec5/6, empty shapes)", () => {
    const prog = (size: boolean, outputShape: number[], outputComponent?: number) => ({ size, outputShape, outputComponent });
    const cases: UniformEntry[][] = [
      uniformFields(prog(true, [3, 5]), { dataId: {}, shape: [3, 5] }, [{ dataId: {}, shape: [3, 5] }]),
      uniformFields(prog(false, []), { dataId: {}, shape: [] }, [{ dataId: {}, shape: [7] }, { dataId: {}, shape: [] }]),
      uniformFields(prog(true, [2, 3, 4, 5, 6], 4), { dataId: {}, shape: [2, 3, 4, 5, 6] }, [{ dataId: {}, shape: [2, 3, 4, 5, 6] }, { dataId: {}, shape: [1, 2, 3, 4, 5, 6] }], [
        { type: 'float32', data: [0.5] },
        { type: 'int32', data: [3, 4] },
        { type: 'uint32', data: [7, 8, 9] },
        { type: 'float32', data: [-1.25] },
      ]),
      uniformFields(prog(true, [1, 2, 3, 4, 5, 6]), { dataId: {}, shape: [1, 2, 3, 4, 5, 6] }, [], [{ type: 'int32', data: [11] }, { type: 'int32', data: [12, 13] }]),
    ];
    for (const fields of cases) {
      const ours = leanBytes(fields);
      const theirs = tfjsBytes(fields);
      expect(ours.length).toBe(theirs.length);
      expect(Array.from(ours)).toEqual(Array.from(theirs));
    }
  });

  it('a forward and KV-cached decoding give the same numbers to the bit, on the lean path', async () => {
    const cfg = makeConfig({ n_layers: 2, d_model: 64, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 97, n_ctx: 64, act_fn: 'silu', normalization_type: 'RMS', positional_embedding_type: 'rotary', gated_mlp: true, n_key_value_heads: 2 } as never);
    const model = HookedTransformer.random(cfg, { seed: 3 });
    const tokens = [Array.from({ length: 40 }, (_, i) => (i * 13) % 97), Array.from({ length: 40 }, (_, i) => (i * 7 + 2) % 97)];
    const fwd = await bothWays(() => model.runWithHooks(tokens));
    expect(fwd.lean).toBeGreaterThan(20);
    expect(fwd.fallback).toBe(0);
    expect(Array.from(fwd.on)).toEqual(Array.from(fwd.off));
    // a prefill and five single-token steps through the KV cache (slabs written in place): every step's logits
    const decode = () => {
      const cache = new KVCache(cfg.n_layers, { capacity: 24 });
      const steps = [model.runWithHooks([tokens[0].slice(0, 12)], { kvCache: cache, logits: 'last' })];
      for (let s = 0; s < 5; s++) steps.push(model.runWithHooks([[(s * 17 + 1) % 97]], { kvCache: cache, logits: 'last' }));
      const all = tf.concat(steps);
      tf.dispose(steps);
      cache.dispose();
      return all;
    };
    const dec = await bothWays(decode);
    expect(dec.lean).toBeGreaterThan(50);
    expect(Array.from(dec.on)).toEqual(Array.from(dec.off));
    model.dispose();
  });

  it('when its slots run out mid-submission it submits early, and uniforms larger than every slot go through tfjs', async () => {
    // rank-4 inputs: each buffer's shape and strides take 32 bytes of uniforms
    const xs = Array.from({ length: 7 }, (_, i) => tf.randomNormal([2, 3, 5, 7], 0, 1, 'float32', i));
    const run = () =>
      tf.tidy(() => {
        let acc = tf.addN(xs); // 8 buffers: 264 bytes of uniforms, two 256-byte slots
        for (let i = 0; i < 30; i++) acc = acc.mul(1.01).add(0.5).relu();
        return acc;
      });
    leanDispatchSlots.slots = 3;
    const wide = leanDispatchStats.wide;
    const small = await bothWays(run);
    expect(leanDispatchStats.wide).toBeGreaterThan(wide);
    expect(small.lean).toBeGreaterThan(60);
    expect(Array.from(small.on)).toEqual(Array.from(small.off));
    leanDispatchSlots.slots = 1; // the addN's uniforms need 2 slots: tfjs' path
    const one = await bothWays(run);
    expect(one.fallback).toBeGreaterThan(0);
    expect(Array.from(one.on)).toEqual(Array.from(one.off));
    tf.dispose(xs);
  });

  it('tf.time still times every program (timed dispatches take tfjs’ path) and nothing leaks', async () => {
    const before = tf.memory().numTensors;
    const a = tf.randomNormal([64, 64]);
    const info = await tf.time(() => {
      const b = tf.tidy(() => a.matMul(a).relu());
      b.dispose();
    });
    expect(String((info as unknown as { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '')).toMatch(/MatMul/);
    const r = await bothWays(() => tf.tidy(() => a.matMul(a).add(1)));
    expect(Array.from(r.on)).toEqual(Array.from(r.off));
    a.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** runWithCache(names 'all'): every cached activation's values by name, and the logits. */
async function cacheAll(model: HookedTransformer, tokens: number[][], extra: object = {}): Promise<Map<string, Float32Array>> {
  const { logits, cache } = model.runWithCache(tokens, { names: 'all', ...extra } as never);
  const out = new Map<string, Float32Array>([['logits', (await logits.data()) as Float32Array]]);
  for (const k of cache.keys()) out.set(k, (await cache.get(k).data()) as Float32Array);
  logits.dispose();
  cache.dispose();
  return out;
}

const FAMILIES: Record<string, HookedConfigInput> = {
  'GPT-2 style (LayerNorm, GELU, learned positions)': { n_layers: 2, d_model: 64, n_heads: 4, d_head: 16, d_mlp: 256, d_vocab: 101, n_ctx: 32, act_fn: 'gelu_new', normalization_type: 'LN', positional_embedding_type: 'standard' },
  'Llama style (RMSNorm, rotary, GQA, SwiGLU)': { n_layers: 2, d_model: 64, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 101, n_ctx: 32, act_fn: 'silu', normalization_type: 'RMS', positional_embedding_type: 'rotary', gated_mlp: true, n_key_value_heads: 2 },
};

describe('kernels with several outputs (the cache of every activation)', () => {
  for (const [family, input] of Object.entries(FAMILIES)) {
    it(`${family}: runWithCache('all') gives the single-output kernels' values (to the bit but for the pattern, within 1e-6) in fewer programs, and the plain ops' within 1e-5`, async () => {
      const model = HookedTransformer.random(makeConfig(input as never), { seed: 5 });
      const tokens = [Array.from({ length: 20 }, (_, i) => (i * 11 + 3) % 101), Array.from({ length: 20 }, (_, i) => (i * 5 + 1) % 101)];
      await cacheAll(model, tokens); // compile every shader first
      const multi = await countPrograms(() => cacheAll(model, tokens));
      webgpuHostTuning.leanDispatch = false; // the single-output kernels: scale and norm apart, tfjs' split
      const single = await countPrograms(() => cacheAll(model, tokens));
      webgpuHostTuning.leanDispatch = true;
      optimisations.fusedKernels = false;
      const plain = await cacheAll(model, tokens);
      optimisations.fusedKernels = true;

      expect(multi.kinds.HeadlensNormWith).toBe(2 * input.n_layers! + 1); // ln1, ln2 (with resid_mid), ln_final
      expect(multi.kinds.HeadlensSplitColumns).toBe(input.n_layers);
      // every row of scores and pattern: written by the attention kernel itself, beside z
      expect(multi.kinds.HeadlensAttentionWithRows).toBe(input.n_layers);
      expect(multi.kinds.HeadlensAttention ?? 0).toBe(0);
      expect(multi.kinds.HeadlensAttentionPattern ?? 0).toBe(0);
      expect(single.kinds.HeadlensAttentionPattern).toBe(input.n_layers);
      expect(multi.kinds.SliceProgram ?? 0).toBeLessThan(single.kinds.SliceProgram);
      expect(single.kinds.HeadlensNormWith).toBeUndefined();
      expect(multi.total).toBeLessThanOrEqual(single.total - 4 * input.n_layers!);
      expect([...multi.result.keys()].sort()).toEqual([...single.result.keys()].sort());
      expect(multi.result.size).toBeGreaterThan(20);
      for (const [name, values] of multi.result) {
        // the pattern's softmax sum comes from the online softmax there (rounded otherwise); all else to the bit
        if (name.endsWith('hook_pattern')) expect(relError(values, single.result.get(name)!), name).toBeLessThan(1e-6);
        else expect(Array.from(values), name).toEqual(Array.from(single.result.get(name)!));
        expect(relError(values, plain.get(name)!), name).toBeLessThan(1e-5);
      }
      // only the last query row of scores and pattern (patternRows 'last'): one dispatch too, the same rows
      const lastMulti = await countPrograms(() => cacheAll(model, tokens, { patternRows: 'last' }));
      webgpuHostTuning.leanDispatch = false;
      const lastSingle = await cacheAll(model, tokens, { patternRows: 'last' });
      webgpuHostTuning.leanDispatch = true;
      expect(lastMulti.kinds.HeadlensAttentionScoresPattern).toBe(input.n_layers);
      const p0 = 'blocks.0.attn.hook_pattern';
      expect(lastMulti.result.get(p0)!.length).toBe(2 * input.n_heads! * 20);
      for (const [name, values] of lastMulti.result) expect(Array.from(values), name).toEqual(Array.from(lastSingle.get(name)!));
      model.dispose();
    });
  }

  it('a hook that changes resid_mid or ln2.hook_scale keeps the single-output path and the plain results', async () => {
    const input = FAMILIES['GPT-2 style (LayerNorm, GELU, learned positions)'];
    const model = HookedTransformer.random(makeConfig(input as never), { seed: 6 });
    const tokens = [Array.from({ length: 12 }, (_, i) => (i * 7 + 2) % 101)];
    const hooks = [
      ['blocks.0.hook_resid_mid', (x: tf.Tensor) => x.mul(0.5)],
      ['blocks.1.ln2.hook_scale', (x: tf.Tensor) => x.mul(2)],
    ] as never;
    const run = async () => {
      const l = model.runWithHooks(tokens, { fwdHooks: hooks });
      const v = (await l.data()) as Float32Array;
      l.dispose();
      return v;
    };
    const fused = await countPrograms(run);
    optimisations.fusedKernels = false;
    const plain = await run();
    expect(fused.kinds.HeadlensNormWith).toBeUndefined();
    expect(relError(fused.result, plain)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('under tf.time (programs timed one by one through tfjs) the cache takes the single-output kernels', async () => {
    const input = FAMILIES['Llama style (RMSNorm, rotary, GQA, SwiGLU)'];
    const model = HookedTransformer.random(makeConfig(input as never), { seed: 7 });
    (await cacheAll(model, [[1, 2, 3]])).clear(); // the model makes its fused QKV weights once, on first use
    const before = tf.memory().numTensors;
    let kinds: Record<string, number> = {};
    const info = await tf.time(async () => {
      const r = await countPrograms(async () => {
        const { logits, cache } = model.runWithCache([[1, 2, 3, 4, 5, 6, 7, 8]], { names: 'all' } as never);
        tf.dispose([logits]);
        cache.dispose();
      });
      kinds = r.kinds;
    });
    expect(info.kernelMs).toBeDefined();
    expect(kinds.HeadlensNormWith).toBeUndefined();
    expect(kinds.HeadlensNormScale).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('a patching sweep on WebGPU, its passes read one pass late', () => {
  it('patchHeadsSweepAsync equals the loop of one forward per head within 1e-5, in passes of one layer or of one head, and leaves no tensor behind', async () => {
    const cfg = makeConfig({ d_model: 64, n_layers: 3, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 120, n_ctx: 16, act_fn: 'gelu_new' });
    const model = HookedTransformer.random(cfg, { seed: 5, std: 0.15 });
    const clean = [[5, 17, 42, 8, 99, 7, 23, 61], [9, 1, 77, 12, 4, 56, 31, 2]];
    const task = { clean, corrupted: clean.map((r) => r.map((t, i) => (i === 2 ? (t + 11) % 120 : t))), correct: [3, 4], wrong: [8, 9] };
    const warm = model.runWithHooks(clean); // the model's cached weights, which it keeps
    await warm.data();
    warm.dispose();
    const before = tf.memory().numTensors;
    const loop = await patchHeadsOneByOneAsync(model, task);
    const expected = await loop.data();
    loop.dispose();
    // one pass a layer (4 heads stacked), then one pass a head (a pass's scores capped at one variant's)
    for (const maxPassBytes of [undefined, 2 * 4 * 8 * 8 * 4]) {
      const got = await patchHeadsSweepAsync(model, task, { maxPassBytes });
      const values = await got.data();
      got.dispose();
      expect(relError(Float32Array.from(values), Float32Array.from(expected)), `maxPassBytes ${maxPassBytes}`).toBeLessThan(1e-5);
    }
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
