/**
 * Where a decoding step's time goes on the webgpu backend (issue 18 §3): for a preset shape with random weights,
 * a prompt of L tokens is run into a KV cache, then single-token steps are taken and each is measured four ways:
 *   enqueue_ms   the forward call's own time (JavaScript: tfjs' bookkeeping, bind groups, uniforms; the GPU runs
 *                asynchronously, so this is CPU time);
 *   step_ms      until the step's logits are read back (the GPU has finished);
 *   kernel_ms    the sum of the step's programs' GPU times (tf.time, WebGPU timestamp queries), with the
 *                programs grouped by kind;
 *   counts       programs dispatched, buffers created (and their bytes), uploads, per step;
 *   by_program   programs dispatched per step by kind (class name: tfjs' programs, headlens' Headlens* kernels).
 * Usage (GPU machine, bundled by pack.sh): node decode_profile.cjs OUT.json PRESET L[,L…] STEPS
 * WEIGHTS16=1 keeps the linear weights as bf16 (useWeights16, as bench --long --weights 16bit).
 * HEADLENS_PROFILE_TINY=1 keeps the preset's family (norm, activation, rotary, biases) but shrinks it to 2 layers of
 * d_model 256 and a 1,000-token vocabulary, for counting programs on SwiftShader (the counts per layer are the
 * same); HEADLENS_FUSED=0 switches optimisations.fusedKernels off, for the before/after count; HEADLENS_GEMV=0 sends
 * the products to tfjs' kernels instead of headlens' decode matmul (GemvMatMulProgram in by_kind), for the
 * before/after GPU time.
 */
import './device_env.js';
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { initBackend, releaseGpuPool, webgpuHostTuning, webgpuMatMul } from '../../src/backend/index.js';
import { HookedTransformer, type FwdHook } from '../../src/hooks/hooked_transformer.js';
import { LONG_PRESETS, type LongPreset } from '../../src/bench/long_context.js';
import { makeConfig, type HookedConfigInput } from '../../src/model/config.js';
import { KVCache } from '../../src/model/kv_cache.js';
import { matmul16Options } from '../../src/backend/webgpu_kernels/matmul16.js';
import { optimisations } from '../../src/model/transformer.js';
import { kernelTimesByKind } from './kernel_times.js';
import { runMain } from './run_main.js';

async function main(): Promise<void> {
  const [out = 'decode_profile.json', presetName = 'pythia-1.4b', ctxArg = '1024', stepsArg = '8'] = process.argv.slice(2);
  const contexts = ctxArg.split(',').map(Number);
  const steps = Number(stepsArg);

  // TF_FLAGS='{"WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE":64}' tries tfjs flags; SKIP_TIME=1 leaves out the tf.time step
  const flags = JSON.parse(process.env.TF_FLAGS ?? '{}') as Record<string, number | boolean>;
  // HOST_TUNING=0: tfjs' own uploads and submission batches (src/backend/webgpu_uploads.ts), for a same-run baseline
  if (process.env.HOST_TUNING === '0') Object.assign(webgpuHostTuning, { uploads: false, submitBatch: null, leanDispatch: false });
  // LEAN=0: everything else tuned, but tfjs' own recordAndSubmit (src/backend/webgpu_dispatch.ts)
  if (process.env.LEAN === '0') webgpuHostTuning.leanDispatch = false;
  const choice = await initBackend({ backend: (process.env.HEADLENS_BACKEND as 'webgpu') ?? 'webgpu' });
  console.log('backend', choice.name, choice.reason);
  for (const [k, v] of Object.entries(flags)) tf.env().set(k, v);
  if (Object.keys(flags).length) console.log('tfjs flags', JSON.stringify(flags));
  const preset: HookedConfigInput = LONG_PRESETS[presetName as LongPreset];
  const tiny = process.env.HEADLENS_PROFILE_TINY === '1';
  if (process.env.HEADLENS_FUSED === '0') optimisations.fusedKernels = false;
  // HEADLENS_GEMV=0: the decode steps' products through tfjs' kernels instead of the decode matmul (matmul_gemv.ts)
  if (process.env.HEADLENS_GEMV === '0') webgpuMatMul.gemvMaxRows = 0;
  const p = tiny ? { ...preset, n_layers: Number(process.env.TINY_LAYERS ?? 2), d_model: 256, d_head: 64, n_heads: 4, d_mlp: 512, d_vocab: 1000, ...(preset.rotary_dim != null ? { rotary_dim: preset.rotary_dim === 128 ? 64 : 16 } : {}) } : preset;
  const cfg = makeConfig({ ...p, n_ctx: Math.max(p.n_ctx ?? 0, Math.max(...contexts) + steps + 2) });
  console.log('model', JSON.stringify({ n_layers: cfg.n_layers, d_model: cfg.d_model, n_heads: cfg.n_heads, n_kv: cfg.n_key_value_heads, fusedKernels: optimisations.fusedKernels, gemvMaxRows: webgpuMatMul.gemvMaxRows }));
  const model = HookedTransformer.random(cfg, { seed: 0, lowRank: 64 });
  if (process.env.WEIGHTS16 === '1') model.useWeights16('bf16');
  // MEMTRACE=1: device bytes (tfjs' buffers in use, and in use + pooled) after the model is made, after the pool is
  // given back, and at every 4th layer of each prefill (a read-only hook; allocation happens as work is recorded)
  const bm = () => (tf.backend() as unknown as { bufferManager?: { numBytesUsed?: number; numBytesAllocated?: number } }).bufferManager ?? {};
  const gib = (n: number | undefined) => ((n ?? 0) / 2 ** 30).toFixed(2);
  const trace = (where: string) => console.log(`mem ${where}: used ${gib(bm().numBytesUsed)} GiB, allocated ${gib(bm().numBytesAllocated)} GiB, tensors ${gib(tf.memory().numBytes)} GiB`);
  const memtrace = process.env.MEMTRACE === '1';
  if (memtrace) trace('model made');
  // the float32 weights useWeights16 replaced sit in tfjs' pool: given back, as bench --long does
  console.log(`pooled GPU buffers released: ${gib(releaseGpuPool())} GiB`);
  if (memtrace) trace('pool released');
  const traceHooks: FwdHook[] = memtrace ? [[(n: string) => /^blocks\.\d*[048]\.hook_resid_post$/.test(n) || n === 'ln_final.hook_normalized', (_x: tf.Tensor, { name }: { name: string }) => trace(name)]] : [];

  const be = tf.backend() as unknown as {
    runWebGPUProgram?: (prog: { constructor: { name: string } }, inputs: { dataId: object }[], ...rest: unknown[]) => unknown;
    device?: { createBuffer: (d: { size: number }) => unknown };
    tensorMap: { get(id: object): { resource?: unknown; values?: unknown } };
  };
  const counts = { programs: 0, buffers: 0, bufferBytes: 0, uploads: 0 };
  let byProgram: Record<string, number> = {};
  if (be.runWebGPUProgram && be.device) {
    const run = be.runWebGPUProgram.bind(be);
    be.runWebGPUProgram = (prog, inputs, ...rest) => {
      counts.programs++;
      byProgram[prog.constructor.name] = (byProgram[prog.constructor.name] ?? 0) + 1;
      for (const i of inputs) {
        const d = be.tensorMap.get(i.dataId);
        if (d && d.resource == null && d.values != null) counts.uploads++;
      }
      return run(prog, inputs, ...rest);
    };
    const dev = be.device;
    const create = dev.createBuffer.bind(dev);
    dev.createBuffer = (d: { size: number }) => {
      counts.buffers++;
      counts.bufferBytes += d.size;
      return create(d);
    };
  }
  // every byte tfjs holds on the device: buffers in use and the pool of freed ones (tfjs-backend-webgpu 4.22's field)
  const allocated = () => (tf.backend() as unknown as { bufferManager?: { numBytesAllocated?: number } }).bufferManager?.numBytesAllocated ?? 0;
  const reset = () => {
    Object.assign(counts, { programs: 0, buffers: 0, bufferBytes: 0, uploads: 0 });
    byProgram = {};
  };

  const result: Record<string, unknown>[] = [];
  for (const L of contexts) {
    const cache = new KVCache(cfg.n_layers, { capacity: L + steps + 1 });
    const prompt = [Array.from({ length: L }, (_, i) => (i * 7919) % cfg.d_vocab)];
    const t0 = performance.now();
    const first = model.runWithHooks(prompt, { kvCache: cache, logits: 'last', fwdHooks: traceHooks });
    await first.data();
    first.dispose();
    const prefill_ms = performance.now() - t0;
    if (memtrace) trace(`prefill ${L} done`);
    const rows: Record<string, unknown>[] = [];
    for (let s = 0; s < steps; s++) {
      const tok = [[(s * 31) % cfg.d_vocab]];
      reset();
      const a = performance.now();
      const logits = model.runWithHooks(tok, { kvCache: cache, logits: 'last' });
      const enqueue_ms = performance.now() - a;
      await logits.data();
      const step_ms = performance.now() - a;
      logits.dispose();
      rows.push({ step: s, enqueue_ms, step_ms, ...counts, by_program: byProgram });
      console.log(`L=${L} step ${s}: enqueue ${enqueue_ms.toFixed(1)} ms, step ${step_ms.toFixed(1)} ms, ${JSON.stringify(counts)}`);
      console.log(`  by program: ${JSON.stringify(byProgram)}`);
    }
    // one more step under tf.time: GPU time per program kind (timestamp queries add a pass per program)
    let kernel: Record<string, unknown> = {};
    if (process.env.SKIP_TIME) kernel = { skipped: 'SKIP_TIME' };
    else try {
      const info = await tf.time(() => {
        const l = model.runWithHooks([[5]], { kvCache: cache, logits: 'last' });
        l.dispose();
      });
      const byKind = kernelTimesByKind(info);
      kernel = { wall_ms: info.wallMs, kernel_ms: info.kernelMs, by_kind: byKind };
      console.log(`L=${L} timed step: wall ${info.wallMs.toFixed(1)} ms, kernels ${JSON.stringify(info.kernelMs)} ms`);
      console.log(JSON.stringify(byKind));
    } catch (e) {
      kernel = { error: (e as Error).message };
      console.log('tf.time failed:', (e as Error).message);
    }
    // the same step twice from the same cache: with the default kernels (16-bit weights: the vector kernel with its
    // epilogues and norm prologues), then with the pair kernel (no epilogues: the norms, activation and adds as
    // their own kernels); the cache's length is set back between the two, so both write and read the same rows
    let check: Record<string, unknown> = {};
    if (process.env.WEIGHTS16 === '1') {
      const saved = matmul16Options.lanes;
      const step = async (lanes: 0 | 4 | 8 | 16) => {
        matmul16Options.lanes = lanes;
        const t = model.runWithHooks([[7]], { kvCache: cache, logits: 'last' });
        const v = (await t.data()) as Float32Array;
        t.dispose();
        cache.length -= 1;
        return v;
      };
      try {
        const fused = await step(saved);
        const plain = await step(0);
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < plain.length; i++) {
          diff = Math.max(diff, Math.abs(fused[i] - plain[i]));
          scale = Math.max(scale, Math.abs(plain[i]));
        }
        check = { rel_diff: diff / scale, argmax_equal: argmax(fused) === argmax(plain) };
        console.log(`L=${L} one step with the epilogues against the pair kernel without them: max |difference| / max |logit| ${(diff / scale).toExponential(2)}, same argmax ${argmax(fused) === argmax(plain)}`);
      } finally {
        matmul16Options.lanes = saved;
      }
    }
    console.log(`L=${L} cache ${(cache.bytes / 2 ** 30).toFixed(2)} GiB (${cache.mode}, capacity ${cache.capacity}); tf.memory ${(tf.memory().numBytes / 2 ** 30).toFixed(2)} GiB; tfjs' WebGPU buffers allocated (in use + pooled) ${(allocated() / 2 ** 30).toFixed(2)} GiB`);
    result.push({ context: L, prefill_ms, steps: rows, timed: kernel, epilogue_check: check, cache_bytes: cache.bytes, cache_mode: cache.mode, tensor_bytes: tf.memory().numBytes, allocated_bytes: allocated() });
    cache.dispose();
    writeFileSync(out, JSON.stringify({ preset: presetName, backend: choice, result }, null, 1));
  }
  console.log('wrote', out);
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

runMain(main);
