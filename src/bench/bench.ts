/**
 * `headlens bench`: how fast headlens is where it runs, measured on a model with GPT-2 small's shape
 * (Radford et al. 2019: 12 layers, 12 heads, d_model 768, 124M parameters; random weights made in memory,
 * nothing downloaded) and an IOI-sized batch (Wang et al. 2022's prompts are about 15 tokens).
 * All ratios come from one run, on one backend:
 *   hook_overhead      runWithCache(names 'all') time / plain forward time (goal ≤ 1.10);
 *   sweep_speedup      one-forward-per-head patching loop / the public activationPatching('head-out') sweep, same results (goal ≥ 10);
 *   forward_vs_matmul  forward GFLOP/s / the backend's own matmul GFLOP/s on the forward's shapes (goal ≥ 0.6),
 *                      i.e. time of the forward's matmuls alone / time of the forward;
 *   cache_memory_ratio peak bytes allocated at once during runWithCache('all') / bytes it returns
 *                      (the cache, shared buffers counted once, plus the logits) (goal ≤ 1.2); memory.ts.
 * Times are the best of `trials` blocks of `reps` calls, each block closed by one readback; on CPU
 * backends they are the process's CPU time, on GPUs wall time (timing.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { currentBackend } from '../backend/index.js';
import { wasmKernelSwitches } from '../backend/wasm_kernels.js';
import { lmLoss } from '../train/trainer.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig, type HookedConfigInput } from '../model/config.js';
import { webgpuMatMul } from '../backend/webgpu_kernels/matmul_tiled.js';
import { optimisations } from '../model/transformer.js';
import { applySubmitBatch, webgpuHostTuning } from '../backend/webgpu_uploads.js';
import { forwardMatmuls, matmulFlops } from './flops.js';
import { patchHeadsOneByOneAsync, patchHeadsSweepAsync, type HeadPatchingTask } from './head_sweep.js';
import { measurePeak, uniqueBytes } from './memory.js';
import { clockName, msPerCall, now, sync } from './timing.js';

export const PRESETS = {
  /** GPT-2 small's shape (the `gpt2` checkpoint), tied embeddings. */
  'gpt2-small': {
    model: { model_name: 'gpt2-small-random', original_architecture: 'GPT2LMHeadModel', d_model: 768, n_layers: 12, n_heads: 12, d_head: 64, d_mlp: 3072, d_vocab: 50257, n_ctx: 1024, act_fn: 'gelu_new', tie_word_embeddings: true },
    batch: 8,
    pos: 16,
    reps: 5,
    trials: 3,
  },
  /** Small enough for CI on one CPU thread (wasm): 4 layers × 8 heads, d_model 256. */
  quick: {
    model: { model_name: 'quick-random', original_architecture: 'GPT2LMHeadModel', d_model: 256, n_layers: 4, n_heads: 8, d_head: 32, d_mlp: 1024, d_vocab: 4096, n_ctx: 64, act_fn: 'gelu_new', tie_word_embeddings: true },
    batch: 4,
    pos: 16,
    reps: 5,
    trials: 3,
  },
  /** For tests: seconds on the slowest backend. */
  tiny: {
    model: { model_name: 'tiny-random', original_architecture: 'GPT2LMHeadModel', d_model: 32, n_layers: 2, n_heads: 4, d_head: 8, d_mlp: 64, d_vocab: 97, n_ctx: 16, act_fn: 'gelu_new', tie_word_embeddings: true },
    batch: 2,
    pos: 6,
    reps: 2,
    trials: 1,
  },
} satisfies Record<string, { model: HookedConfigInput; batch: number; pos: number; reps: number; trials: number }>;

export type BenchPreset = keyof typeof PRESETS;

export interface BenchOptions {
  preset?: BenchPreset;
  batch?: number;
  pos?: number;
  reps?: number;
  trials?: number;
  /** Also time the forward with each optimisation switched off (transformer.ts `optimisations`). */
  ablate?: boolean;
  seed?: number;
  /** Bytes of attention scores one pass of the batched sweep may hold (activationPatching's maxPassBytes). */
  maxPassBytes?: number;
  /** Progress lines (to stderr in the CLI). */
  log?: (line: string) => void;
}

export interface OptimisationGain {
  /** Plain forward ms with the optimisation on / off, and off/on (above 1: the optimisation helps). */
  on_ms: number;
  off_ms: number;
  speedup: number;
  /** Peak bytes above baseline of a plain forward, on and off. */
  on_peak_bytes: number;
  off_peak_bytes: number;
}

export interface BenchResult {
  backend: string;
  backend_reason: string;
  preset: BenchPreset;
  model: { n_layers: number; n_heads: number; d_model: number; d_mlp: number | null; d_vocab: number; parameters: number };
  batch: number;
  pos: number;
  hook_overhead: number;
  sweep_speedup: number;
  forward_vs_matmul: number;
  cache_memory_ratio: number;
  raw: {
    forward_ms: number;
    cache_ms: number;
    tokens_per_s_forward: number;
    tokens_per_s_cache: number;
    sweep_heads: number;
    sweep_loop_ms: number;
    sweep_batched_ms: number;
    /** Largest |loop − batched| over the [layer, head] results, and the largest |result| for scale. */
    sweep_max_abs_diff: number;
    sweep_max_abs_value: number;
    forward_gflop: number;
    forward_gflops: number;
    matmul_ms: number;
    matmul_gflops: number;
    cache_entries: number;
    /** Cached tensors' bytes, shared buffers once (resid_post of l is resid_pre of l+1). */
    cache_bytes: number;
    /** The same, each entry counted on its own (ActivationCache.bytes). */
    cache_bytes_per_entry: number;
    logits_bytes: number;
    /** Most bytes of buffers made by the call alive at one time (memory.ts). */
    cache_peak_bytes: number;
    forward_peak_bytes: number;
    /** Bytes the model keeps for speed: the fused, pre-transposed QKV weights. */
    qkv_cache_bytes: number;
    weight_bytes: number;
  };
  optimisations?: Record<string, OptimisationGain>;
  reps: number;
  trials: number;
  /** 'cpu': times are this process's CPU time (wasm, cpu backends); 'wall': wall-clock time (GPU backends). */
  clock: 'cpu' | 'wall';
  seconds: number;
}

/** A seeded [batch, pos] of token ids, and an IOI-like corruption of it (two positions changed). */
export function makeTask(vocab: number, batch: number, pos: number, seed: number): HeadPatchingTask {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % vocab;
  };
  const clean = Array.from({ length: batch }, () => Array.from({ length: pos }, rnd));
  const corrupted = clean.map((row) => row.map((t, i) => (i === 1 || i === pos - 3 ? rnd() : t)));
  return { clean, corrupted, correct: clean.map(() => rnd()), wrong: clean.map(() => rnd()) };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const started = performance.now();
  const preset = opts.preset ?? 'gpt2-small';
  const p = PRESETS[preset];
  const batch = opts.batch ?? p.batch;
  const pos = opts.pos ?? p.pos;
  const reps = opts.reps ?? p.reps;
  const trials = opts.trials ?? p.trials;
  const log = opts.log ?? (() => {});
  const cfg = makeConfig({ ...p.model, n_ctx: Math.max(p.model.n_ctx, pos) });
  const model = HookedTransformer.random(cfg, { seed: opts.seed ?? 0 });
  const matInputs: tf.Tensor[] = [];
  try {
    const task = makeTask(cfg.d_vocab, batch, pos, (opts.seed ?? 0) + 1);
    const tokens = task.clean;
    const T = batch * pos;
    const forward = () => model.forward(tokens);
    const withCache = () => {
      const r = model.runWithCache(tokens, { names: 'all' });
      r.cache.dispose();
      return r.logits;
    };

    log(`bench: ${preset}, ${model.nParams.toLocaleString('en-US')} parameters, batch ${batch} × pos ${pos}, on ${currentBackend()?.name}`);
    // the forward's matmuls alone, on the same shapes and the same kind of inputs
    const shapes = forwardMatmuls(cfg, batch, pos);
    const inputs = new Map<string, [tf.Tensor, tf.Tensor]>();
    for (const s of shapes) {
      const key = `${s.count}x${s.m}x${s.k}x${s.n}`;
      if (inputs.has(key)) continue;
      const a = s.count === 1 ? tf.randomNormal([s.m, s.k], 0, 1, 'float32', 1) : tf.randomNormal([s.count, s.m, s.k], 0, 1, 'float32', 1);
      const b = s.count === 1 ? tf.randomNormal([s.k, s.n], 0, 0.05, 'float32', 2) : tf.randomNormal([s.count, s.k, s.n], 0, 0.05, 'float32', 2);
      inputs.set(key, [a, b]);
      matInputs.push(a, b);
    }
    const keys = shapes.map((s) => `${s.count}x${s.m}x${s.k}x${s.n}`);
    const matmuls = () => keys.map((k) => tf.matMul(...(inputs.get(k)! as [tf.Tensor2D, tf.Tensor2D])));
    const flop = matmulFlops(shapes);

    // forward, cached forward and the matmuls alone, trials interleaved so all three see the same machine state
    let forwardMs = Infinity;
    let cacheMs = Infinity;
    let matmulMs = Infinity;
    for (let t = 0; t < trials; t++) {
      const warmup = t === 0 ? 2 : 0;
      forwardMs = Math.min(forwardMs, await msPerCall(forward, { reps, trials: 1, warmup }));
      cacheMs = Math.min(cacheMs, await msPerCall(withCache, { reps, trials: 1, warmup }));
      matmulMs = Math.min(matmulMs, await msPerCall(matmuls, { reps, trials: 1, warmup }));
    }
    log(`bench: forward ${forwardMs.toFixed(2)} ms, runWithCache('all') ${cacheMs.toFixed(2)} ms, its ${shapes.length} matmuls alone ${matmulMs.toFixed(2)} ms (${(flop / 1e9).toFixed(2)} GFLOP)`);

    // memory: a full cache against what it holds
    const cached = measurePeak(() => {
      const r = model.runWithCache(tokens, { names: 'all' });
      return [r.logits, ...r.cache.keys().map((k) => r.cache.get(k))];
    });
    const [logits, ...cacheTensors] = cached.out;
    const cacheBytes = uniqueBytes(cacheTensors);
    const cacheBytesPerEntry = cacheTensors.reduce((s, t) => s + t.size * 4, 0);
    const logitsBytes = logits.size * 4;
    tf.dispose(cached.out);
    const forwardPeak = () => {
      const r = measurePeak(() => model.forward(tokens));
      r.out.dispose();
      return r.peak;
    };
    const fwdPeak = forwardPeak();
    log(`bench: cache ${(cacheBytes / 1e6).toFixed(1)} MB + logits ${(logitsBytes / 1e6).toFixed(1)} MB, peak ${(cached.peak / 1e6).toFixed(1)} MB`);

    // the head sweep, both ways
    // the public activationPatching, in its asynchronous form (the one WebGPU in Node can run); the same engine
    const batched = () => patchHeadsSweepAsync(model, task, { maxPassBytes: opts.maxPassBytes });
    // a GPU compiles shaders for the batched shapes on first use; CPU backends have nothing to warm up
    const cpu = ['wasm', 'cpu'].includes(tf.getBackend());
    const first = cpu ? undefined : await batched();
    if (first) await sync(first);
    const t0 = now();
    const b = await batched();
    await sync(b);
    const sweepBatchedMs = now() - t0;
    log(`bench: batched sweep over ${cfg.n_layers * cfg.n_heads} heads ${sweepBatchedMs.toFixed(1)} ms; now the loop`);
    const t1 = now();
    const loop = await patchHeadsOneByOneAsync(model, task);
    await sync(loop);
    const sweepLoopMs = now() - t1;
    const diff = tf.tidy(() => tf.max(tf.abs(loop.sub(b))));
    const scale = tf.tidy(() => tf.max(tf.abs(loop)));
    const sweepDiff = (await diff.data())[0];
    const sweepScale = (await scale.data())[0];
    tf.dispose([...(first ? [first] : []), b, loop, diff, scale]);
    log(`bench: loop sweep ${sweepLoopMs.toFixed(1)} ms; max |loop − batched| ${sweepDiff.toExponential(2)}`);

    const qkvBytes = uniqueBytes(Array.from({ length: cfg.n_layers }, (_, l) => Object.values(model.qkvWeights(l))).flat());
    const weightBytes = uniqueBytes(model.paramNames().map((n) => model.param(n)));

    let gains: Record<string, OptimisationGain> | undefined;
    if (opts.ablate) {
      gains = {};
      // fusedKernels only acts on webgpu: elsewhere its row would time the same path twice
      const flags = (Object.keys(optimisations) as (keyof typeof optimisations)[]).filter((f) => f !== 'fusedKernels' || tf.getBackend() === 'webgpu');
      // on webgpu also the host-side switches of src/backend/webgpu_uploads.ts and webgpu_dispatch.ts
      const host: Record<string, (on: boolean) => void> =
        tf.getBackend() === 'webgpu'
          ? {
              'webgpu.uploads': (on) => void (webgpuHostTuning.uploads = on),
              'webgpu.bucketBuffers': (on) => void (webgpuHostTuning.bucketBuffers = on),
              'webgpu.leanDispatch': (on) => void (webgpuHostTuning.leanDispatch = on),
              'webgpu.submitBatch': (on) => {
                webgpuHostTuning.submitBatch = on ? 128 : null;
                applySubmitBatch();
              },
            }
          : {};
      for (const flag of [...flags, ...Object.keys(host), 'all' as const]) {
        const set = (on: boolean) => {
          if (flag === 'all') {
            for (const f of flags) optimisations[f] = on;
            for (const h of Object.values(host)) h(on);
          } else if (flag in host) host[flag](on);
          else optimisations[flag as keyof typeof optimisations] = on;
        };
        let on = Infinity;
        let off = Infinity;
        try {
          for (let t = 0; t < trials; t++) {
            set(false);
            off = Math.min(off, await msPerCall(forward, { reps, trials: 1, warmup: 1 }));
            set(true);
            on = Math.min(on, await msPerCall(forward, { reps, trials: 1, warmup: 1 }));
          }
          set(false);
          const offPeak = forwardPeak();
          set(true);
          const onPeak = forwardPeak();
          gains[flag] = { on_ms: on, off_ms: off, speedup: off / on, on_peak_bytes: onPeak, off_peak_bytes: offPeak };
          log(`bench: ${flag}: forward ${off.toFixed(2)} → ${on.toFixed(2)} ms (×${(off / on).toFixed(3)}), peak ${(offPeak / 1e6).toFixed(1)} → ${(onPeak / 1e6).toFixed(1)} MB`);
        } finally {
          set(true);
        }
      }
    }

    // on wasm: a training step (forward + backward) with the BatchMatMul wrapper (wasm_kernels.ts) off and on
    if (opts.ablate && tf.getBackend() === 'wasm') {
      gains ??= {};
      const step = () => {
        const { value, grads } = tf.variableGrads(() => lmLoss(model, { tokens }), vars);
        tf.dispose(Object.values(grads));
        return value;
      };
      const vars = model.paramNames().map((n) => tf.variable(model.param(n), true, `${n}#bench${Math.random().toString(36).slice(2, 8)}`));
      // the last measurement: the model keeps the variables (and disposes them with itself)
      model.setParams(Object.fromEntries(model.paramNames().map((n, i) => [n, vars[i]])));
      let on = Infinity;
      let off = Infinity;
      try {
        for (let t = 0; t < trials; t++) {
          wasmKernelSwitches.batchMatMul = false;
          off = Math.min(off, await msPerCall(step, { reps, trials: 1, warmup: 1 }));
          wasmKernelSwitches.batchMatMul = true;
          on = Math.min(on, await msPerCall(step, { reps, trials: 1, warmup: 1 }));
        }
      } finally {
        wasmKernelSwitches.batchMatMul = true;
      }
      gains.wasm_batch_matmul_train_step = { on_ms: on, off_ms: off, speedup: off / on, on_peak_bytes: 0, off_peak_bytes: 0 };
      log(`bench: wasm BatchMatMul wrapper: training step ${off.toFixed(2)} → ${on.toFixed(2)} ms (×${(off / on).toFixed(3)})`);
    }

    // on webgpu: the forward with headlens' tiled matmul (backend/webgpu_kernels/matmul_tiled.ts) off and on
    if (opts.ablate && tf.getBackend() === 'webgpu') {
      gains ??= {};
      let on = Infinity;
      let off = Infinity;
      try {
        for (let t = 0; t < trials; t++) {
          webgpuMatMul.tiled = false;
          off = Math.min(off, await msPerCall(forward, { reps, trials: 1, warmup: 1 }));
          webgpuMatMul.tiled = true;
          on = Math.min(on, await msPerCall(forward, { reps, trials: 1, warmup: 1 }));
        }
      } finally {
        webgpuMatMul.tiled = true;
      }
      gains.webgpu_tiled_matmul = { on_ms: on, off_ms: off, speedup: off / on, on_peak_bytes: 0, off_peak_bytes: 0 };
      log(`bench: webgpu tiled matmul: forward ${off.toFixed(2)} → ${on.toFixed(2)} ms (×${(off / on).toFixed(3)})`);
    }

    const choice = currentBackend();
    return {
      backend: choice?.name ?? tf.getBackend(),
      backend_reason: choice?.reason ?? '',
      preset,
      model: { n_layers: cfg.n_layers, n_heads: cfg.n_heads, d_model: cfg.d_model, d_mlp: cfg.d_mlp, d_vocab: cfg.d_vocab, parameters: model.nParams },
      batch,
      pos,
      hook_overhead: cacheMs / forwardMs,
      sweep_speedup: sweepLoopMs / sweepBatchedMs,
      forward_vs_matmul: matmulMs / forwardMs,
      cache_memory_ratio: cached.peak / (cacheBytes + logitsBytes),
      raw: {
        forward_ms: forwardMs,
        cache_ms: cacheMs,
        tokens_per_s_forward: (T / forwardMs) * 1000,
        tokens_per_s_cache: (T / cacheMs) * 1000,
        sweep_heads: cfg.n_layers * cfg.n_heads,
        sweep_loop_ms: sweepLoopMs,
        sweep_batched_ms: sweepBatchedMs,
        sweep_max_abs_diff: sweepDiff,
        sweep_max_abs_value: sweepScale,
        forward_gflop: flop / 1e9,
        forward_gflops: flop / 1e6 / forwardMs,
        matmul_ms: matmulMs,
        matmul_gflops: flop / 1e6 / matmulMs,
        cache_entries: cacheTensors.length,
        cache_bytes: cacheBytes,
        cache_bytes_per_entry: cacheBytesPerEntry,
        logits_bytes: logitsBytes,
        cache_peak_bytes: cached.peak,
        forward_peak_bytes: fwdPeak,
        qkv_cache_bytes: qkvBytes,
        weight_bytes: weightBytes,
      },
      ...(gains ? { optimisations: gains } : {}),
      reps,
      trials,
      clock: clockName(),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    tf.dispose(matInputs);
    model.dispose();
  }
}
