/**
 * `headlens bench` and what it is built on: the public head sweep, activationPatching (against the naive loop and a plain
 * hand computation), Transformer.runFrom, and the forward's speed-ups (cached QKV weights, scopes), which
 * must never change a result. No timing is asserted anywhere: only that the numbers exist and are sane.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { runBench } from '../src/bench/bench.js';
import { patchHeadsSweep, patchHeadsOneByOne, type HeadPatchingTask } from '../src/bench/head_sweep.js';
import { measurePeak, uniqueBytes } from '../src/bench/memory.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { linear } from '../src/model/mlp.js';
import { optimisations } from '../src/model/transformer.js';
import { FIXTURES } from './helpers.js';
import { runMatmulBench } from '../src/bench/matmul.js';
import { mat } from '../src/linalg/mat.js';
import { singularValues } from '../src/linalg/svd.js';

const ROOT = path.join(import.meta.dirname, '..');

// weights large enough that patching one head visibly moves the logits
const CFG = makeConfig({ d_model: 16, n_layers: 3, n_heads: 4, d_head: 4, d_mlp: 32, d_vocab: 23, n_ctx: 12, act_fn: 'gelu_new' });
const TASK: HeadPatchingTask = {
  clean: [
    [1, 5, 9, 2, 7, 3, 4],
    [8, 2, 6, 1, 0, 11, 4],
  ],
  corrupted: [
    [1, 13, 9, 2, 7, 17, 4],
    [8, 19, 6, 1, 0, 21, 4],
  ],
  correct: [5, 2],
  wrong: [13, 19],
};

let model: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = HookedTransformer.random(CFG, { seed: 3, std: 0.4 });
});
afterAll(() => model.dispose());

/** logit[correct] − logit[wrong] at the last position, averaged over prompts, from plain arrays. */
function logitDiffByHand(logits: number[][][], task: HeadPatchingTask): number {
  return logits.reduce((s, row, b) => s + row[row.length - 1][task.correct[b]] - row[row.length - 1][task.wrong[b]], 0) / logits.length;
}

describe('patchHeadsSweep (activationPatching head-out)', () => {
  it('patchHeadsSweep(model, task) equals patchHeadsOneByOne(model, task) for every head', () => {
    const loop = patchHeadsOneByOne(model, TASK);
    const batched = patchHeadsSweep(model, TASK);
    expect(batched.shape).toEqual([3, 4]);
    const a = loop.arraySync().flat();
    const b = batched.arraySync().flat();
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4);
    // the heads differ from each other: the comparison above is not between constants
    expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(1e-2);
    tf.dispose([loop, batched]);
  });

  it('patchHeadsSweep(model, task, {maxPassBytes}) gives the same numbers in one pass or in passes of one head', () => {
    const loop = patchHeadsOneByOne(model, TASK);
    const a = loop.arraySync().flat();
    for (const maxPassBytes of [1, 3 * TASK.corrupted.length * model.cfg.n_heads * TASK.corrupted[0].length ** 2 * 4, Infinity]) {
      const r = patchHeadsSweep(model, TASK, { maxPassBytes });
      r.arraySync().flat().forEach((x, i) => expect(Math.abs(x - a[i]), `maxPassBytes ${maxPassBytes}`).toBeLessThan(1e-4));
      r.dispose();
    }
    loop.dispose();
  });

  it('patchHeadsSweep(model, task) with clean = corrupted gives the unpatched logit difference for every head', () => {
    const same = { ...TASK, corrupted: TASK.clean };
    const logits = model.forward(TASK.clean);
    const expected = logitDiffByHand(logits.arraySync() as number[][][], TASK);
    const r = patchHeadsSweep(model, same);
    for (const v of r.arraySync().flat()) expect(v).toBeCloseTo(expected, 4);
    tf.dispose([logits, r]);
  });

  it('patchHeadsSweep(model, task) for the last layer matches patching that head by hand with runWithHooks', () => {
    // patch head 2 of the last layer from the clean run; read the logits in plain JS
    const { logits: cl, cache } = model.runWithCache(TASK.clean, { names: ['blocks.2.attn.hook_z'] });
    const cleanZ = cache.get('blocks.2.attn.hook_z').arraySync() as number[][][][];
    const patched = model.runWithHooks(TASK.corrupted, {
      fwdHooks: [
        [
          'blocks.2.attn.hook_z',
          (z) => {
            const zz = z.arraySync() as number[][][][];
            zz.forEach((bt, b) => bt.forEach((p, i) => (p[2] = cleanZ[b][i][2])));
            return tf.tensor(zz);
          },
        ],
      ],
    });
    const expected = logitDiffByHand(patched.arraySync() as number[][][], TASK);
    const r = patchHeadsSweep(model, TASK);
    expect((r.arraySync() as number[][])[2][2]).toBeCloseTo(expected, 4);
    tf.dispose([cl, patched, r]);
    cache.dispose();
  });

  it('patchHeadsSweep and patchHeadsOneByOne, called again, leave numTensors unchanged', () => {
    patchHeadsSweep(model, TASK).dispose();
    patchHeadsOneByOne(model, TASK).dispose();
    const before = tf.memory().numTensors;
    patchHeadsSweep(model, TASK).dispose();
    patchHeadsOneByOne(model, TASK).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('patchHeadsSweep(model, task) with one answer token missing is an error', () => {
    expect(() => patchHeadsSweep(model, { ...TASK, correct: [5] })).toThrow(/one correct and one wrong token per prompt/);
  });
});

describe('Transformer.runFrom', () => {
  it('runFrom(l, resid_pre of l) gives the logits of forward', () => {
    const { logits, cache } = model.runWithCache(TASK.clean, { names: ['blocks.1.hook_resid_pre'] });
    const from = model.runFrom(1, cache.get('blocks.1.hook_resid_pre') as tf.Tensor3D);
    expect(tf.max(tf.abs(from.sub(logits))).arraySync()).toBeLessThan(1e-5);
    tf.dispose([logits, from]);
    cache.dispose();
  });

  it('runFrom with a layer out of range or a resid of the wrong width is an error', () => {
    const x = tf.zeros([1, 3, 8]) as tf.Tensor3D;
    expect(() => model.runFrom(7, x)).toThrow(/not a layer index/);
    expect(() => model.runFrom(0, x)).toThrow(/expected \[batch, pos ≤ 12, 16\]/);
    x.dispose();
  });
});

describe('the forward speed-ups', () => {
  it('linear(x, W, b, fused) with and without fusing equals x·W + b computed by hand', () => {
    const x = [[1, 2, 3], [-1, 0.5, 2]];
    const W = [[0.5, -1], [2, 0.25], [-0.5, 1]];
    const b = [0.1, -0.2];
    const byHand = x.map((row) => b.map((bj, j) => row.reduce((s, xi, i) => s + xi * W[i][j], bj)));
    for (const fused of [true, false]) {
      const got = tf.tidy(() => linear(tf.tensor2d(x), tf.tensor2d(W), tf.tensor1d(b), fused).arraySync());
      got.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(byHand[i][j], 5)));
    }
  });

  it('forward with every optimisation off gives the same logits as with them on (gpt2 fixture)', async () => {
    const gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
    const tokens = [[3, 14, 15, 92, 65]];
    const on = gpt2.forward(tokens);
    const flags = Object.keys(optimisations) as (keyof typeof optimisations)[];
    try {
      for (const f of flags) optimisations[f] = false;
      const off = gpt2.forward(tokens);
      expect(tf.max(tf.abs(on.sub(off))).arraySync()).toBeLessThan(1e-5);
      off.dispose();
    } finally {
      for (const f of flags) optimisations[f] = true;
    }
    on.dispose();
    gpt2.dispose();
  });

  it('setParams(W_Q) drops the cached fused QKV weights: the next forward uses the new W_Q', () => {
    const m = HookedTransformer.random(CFG, { seed: 5, std: 0.4 });
    const before = m.forward(TASK.clean); // builds the cache
    m.setParams({ 'blocks.0.attn.W_Q': tf.zeros([4, 16, 4]) });
    const after = m.forward(TASK.clean);
    // reference: the same model with the cache switched off computes from the parameters directly
    optimisations.cachedWeights = false;
    const direct = m.forward(TASK.clean);
    optimisations.cachedWeights = true;
    expect(tf.max(tf.abs(after.sub(direct))).arraySync()).toBeLessThan(1e-6);
    expect(tf.max(tf.abs(after.sub(before))).arraySync()).toBeGreaterThan(1e-3);
    tf.dispose([before, after, direct]);
    m.dispose();
  });

  it('forward with tf.Variable parameters passes gradients to W_Q (the cache is bypassed for variables)', () => {
    const m = HookedTransformer.random(CFG, { seed: 6, std: 0.4 });
    const W = tf.variable(m.param('blocks.1.attn.W_Q').clone(), true, `bench-test-wq-${Date.now()}`);
    m.setParams({ 'blocks.1.attn.W_Q': W });
    const { grads } = tf.variableGrads(() => m.forward(TASK.clean).square().mean() as tf.Scalar, [W]);
    expect(tf.max(tf.abs(grads[W.name])).arraySync()).toBeGreaterThan(0);
    // an in-place update is seen by the next forward
    const y1 = m.forward(TASK.clean);
    W.assign(tf.zerosLike(W));
    const y2 = m.forward(TASK.clean);
    expect(tf.max(tf.abs(y1.sub(y2))).arraySync()).toBeGreaterThan(1e-3);
    tf.dispose([y1, y2, ...Object.values(grads)]);
    m.dispose();
  });

  it('tf.variableGrads through forward gives the same gradient for every parameter with the speed-ups on and off', () => {
    const m = HookedTransformer.random(CFG, { seed: 7, std: 0.3 });
    const vars = Object.fromEntries(m.paramNames().map((n) => [n, tf.variable(m.param(n).clone(), true, `bench-grad-${n}-${Date.now()}`)]));
    m.setParams(vars);
    const flags = Object.keys(optimisations) as (keyof typeof optimisations)[];
    const grads = (on: boolean) => {
      for (const f of flags) optimisations[f] = on;
      return tf.variableGrads(() => m.forward(TASK.clean).square().mean() as tf.Scalar, Object.values(vars)).grads;
    };
    try {
      const on = grads(true);
      const off = grads(false);
      for (const k of Object.keys(on)) expect(tf.max(tf.abs(on[k].sub(off[k]))).arraySync(), k).toBeLessThan(1e-6);
      expect(tf.max(tf.abs(on[vars['blocks.0.attn.W_Q'].name])).arraySync()).toBeGreaterThan(1e-4);
    } finally {
      for (const f of flags) optimisations[f] = true;
      m.dispose();
    }
  });

  it('a hook may keep the activation it saw and read it at a later block of the same run', () => {
    let stashed: tf.Tensor | undefined;
    const logits = model.runWithHooks(TASK.clean, {
      fwdHooks: [
        ['blocks.0.attn.hook_z', (z) => void (stashed = z)],
        ['blocks.2.attn.hook_z', (z) => z.add(stashed!)], // blocks 0 and 1 have ended by now
      ],
    });
    expect(logits.isDisposed).toBe(false);
    logits.dispose();
  });

  it('runWithCache keeps no more than one block of temporaries alive besides what it returns', () => {
    const { out, peak, retained } = measurePeak(() => model.runWithCache(TASK.clean, { names: 'all' }));
    const returned = uniqueBytes([out.logits, ...out.cache.keys().map((k) => out.cache.get(k))]);
    expect(retained).toBe(returned);
    // a block's activations are about a third of the cache of this 3-layer model; the old single scope
    // kept every temporary (the peak was several times the cache) — allow the cache, its wasm copies, one block
    expect(peak).toBeLessThan(2.6 * returned);
    out.cache.dispose();
    out.logits.dispose();
  });
});

describe('runBench', () => {
  it('runMatmulBench on a backend other than webgpu is refused with the fix named', async () => {
    await expect(runMatmulBench()).rejects.toThrow(/--backend webgpu/);
  });

  it("runBench({ preset: 'tiny' }) reports every documented ratio and raw number as a finite positive number", async () => {
    const before = tf.memory().numTensors;
    const r = await runBench({ preset: 'tiny', ablate: true });
    for (const k of ['hook_overhead', 'sweep_speedup', 'forward_vs_matmul', 'cache_memory_ratio'] as const) {
      expect(Number.isFinite(r[k]) && r[k] > 0, k).toBe(true);
    }
    const raw = r.raw as unknown as Record<string, number>;
    for (const [k, v] of Object.entries(raw)) {
      if (k === 'sweep_max_abs_diff') expect(v).toBeLessThan(1e-4);
      else expect(Number.isFinite(v) && v > 0, k).toBe(true);
    }
    expect(r).toMatchObject({ backend: 'wasm', preset: 'tiny', batch: 2, pos: 6, model: { n_layers: 2, n_heads: 4 } });
    expect(r.raw.sweep_heads).toBe(8);
    // resid_post of l is resid_pre of l+1: one buffer where the cache's handles share data (WebGPU), two on wasm (clone copies)
    expect(r.raw.cache_bytes).toBeLessThanOrEqual(r.raw.cache_bytes_per_entry);
    // on wasm --ablate also times a training step with the BatchMatMul wrapper off and on
    expect(Object.keys(r.optimisations!)).toEqual(['cachedWeights', 'blockScopes', 'fusedMatMul', 'lazyHooks', 'all', 'wasm_batch_matmul_train_step']);
    const mm = r.optimisations!.wasm_batch_matmul_train_step;
    expect(Number.isFinite(mm.speedup) && mm.on_ms > 0 && mm.off_ms > 0).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('headlens bench --preset tiny --json prints one JSON object with the four ratios', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'bench', '--preset', 'tiny', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, HEADLENS_BACKEND: 'wasm' },
      cwd: ROOT,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(expect.arrayContaining(['hook_overhead', 'sweep_speedup', 'forward_vs_matmul', 'cache_memory_ratio', 'raw']));
  });

  it('headlens bench --preset huge is an error that lists the presets', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'bench', '--preset', 'huge'], { encoding: 'utf8', cwd: ROOT });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no bench preset 'huge'.*gpt2-small.*quick.*tiny/);
  });
});

describe('headlens bench --long (long_context.ts)', () => {
  it('measures prefill and decoding per context on the gpt2-small shape, and refuses a shape wasm cannot hold', async () => {
    const { runLongBench } = await import('../src/bench/long_context.js');
    const before = tf.memory().numTensors;
    const r = await runLongBench({ preset: 'gpt2-small', contexts: [8, 12], decodeTokens: 2 });
    expect(r.rows.map((row) => row.context)).toEqual([8, 12]);
    for (const row of r.rows) {
      expect(row.error).toBeUndefined();
      for (const k of ['prefill_ms', 'prefill_tokens_per_s', 'decode_ms_per_token', 'decode_first_step_ms', 'decode_rows_ms_per_token', 'prefill_peak_bytes'] as const) expect(row[k]).toBeGreaterThan(0);
    }
    expect(r.weight_bytes).toBeGreaterThanOrEqual(4 * r.model.parameters); // a tied W_U is held as its own transposed copy
    expect(tf.memory().numTensors).toBe(before);
    await expect(runLongBench({ preset: 'llama-7b', contexts: [8] })).rejects.toThrow(/25\.1 GiB of float32 weights.*at most 4 GiB/);
  });
});

describe('random weights of low rank (RandomInit.lowRank)', () => {
  it('have the asked std, the asked rank, and the shapes of a full draw', () => {
    const cfg = makeConfig({ d_model: 64, n_layers: 1, n_heads: 4, d_head: 16, d_mlp: 256, d_vocab: 500, n_ctx: 8 });
    const m = HookedTransformer.random(cfg, { lowRank: 8, std: 0.05, seed: 3 });
    const full = HookedTransformer.random(cfg, { seed: 3 });
    for (const n of m.paramNames()) expect(m.param(n).shape, n).toEqual(full.param(n).shape);
    const w = m.param('blocks.0.mlp.W_in') as tf.Tensor2D; // [64, 256]
    const v = w.dataSync() as Float32Array;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    expect(sd).toBeGreaterThan(0.04);
    expect(sd).toBeLessThan(0.06);
    // rank 8: the 9th singular value is zero to float32 rounding (svd in float64 of the weights read back)
    const sv = singularValues(mat(64, 256, v));
    expect(sv[8] / sv[0]).toBeLessThan(1e-5);
    expect(sv[7] / sv[0]).toBeGreaterThan(1e-2);
    m.dispose();
    full.dispose();
  });
});

describe('headlens bench --long --retrieval (retrieval_scan.ts)', () => {
  it('times one retrieval scan of every head per context, and its scores are what retrievalScores gives on the same model and trial', async () => {
    const { runLongBench, LONG_PRESETS } = await import('../src/bench/long_context.js');
    const { retrievalBenchOptions, retrievalBenchTrial, RANDOM_WEIGHTS_NOTE } = await import('../src/bench/retrieval_scan.js');
    const { retrievalScores } = await import('../src/interp/scores/retrieval.js');
    const before = tf.memory().numTensors;
    const r = await runLongBench({ preset: 'llama-tiny', contexts: [48], retrievalSteps: 3, retrieval: true });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.retrieval).toBe(true);
    expect(r.decode_tokens).toBe(3);
    const [row] = r.rows;
    console.log('bench --long --retrieval (llama-tiny, 48 tokens, 3 steps)', JSON.stringify(row.retrieval));
    expect(row.error).toBeUndefined();
    expect(row.prefill_ms).toBeUndefined(); // the scan replaces prefill and decoding
    const t = row.retrieval!;
    expect(t).toMatchObject({ context: 48, heads: 8, decode_steps: 3, note: RANDOM_WEIGHTS_NOTE, pool_released_bytes: 0 }); // no GPU pool on wasm
    expect(t.settings).toMatchObject({ task: 'retrieval', variant: 'decode', maxNewTokens: 3, stopTokens: [], gate: -1 });
    for (const k of ['total_s', 'first_step_s', 'ms_per_step', 'finish_s'] as const) expect(t[k]).toBeGreaterThan(0);
    expect(t.first_step_s + ((t.decode_steps - 1) * t.ms_per_step!) / 1000 + t.finish_s).toBeCloseTo(t.total_s, 6);
    expect(t.scores.length).toBe(2);
    expect(t.scores.every((row) => row.length === 4)).toBe(true);
    // the same model (same preset and seed) and trial, scored directly by the synchronous scorer
    const model = HookedTransformer.random(makeConfig(LONG_PRESETS['llama-tiny']), { seed: 0, lowRank: 64 });
    try {
      const trial = retrievalBenchTrial(model.cfg.d_vocab, 48, t.trial.seed);
      expect([trial.needleStart, trial.needleEnd, trial.answerStart, trial.answerEnd]).toEqual([...t.trial.needle, ...t.trial.answer]);
      const direct = retrievalScores(model, [trial], retrievalBenchOptions(3));
      expect(t.scores).toEqual(direct.scores);
      expect(t.settings).toEqual(direct.settings);
    } finally {
      model.dispose();
    }
  });
});
