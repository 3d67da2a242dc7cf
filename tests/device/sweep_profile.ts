/**
 * Where the batched head sweep's time goes on the webgpu backend (issue 18 §5, the sweep_speedup target): GPT-2
 * small with random weights, the benchmark's IOI-shaped task (bench.ts makeTask, seed as `headlens bench`), the
 * public activationPatching('head-out') computation driven here read by read (util/reads.ts) outside readAsync, so
 * prefetch starts no read early and each segment between two reads is measured on its own (the pass it records,
 * then the read of the pass before: pipelinedPasses yields each pass's values one pass late):
 *   enqueue_ms   the segment's own JavaScript time (recording the pass: tfjs, bind groups; the GPU runs behind);
 *   read_ms      from the end of the segment until its read is back (the GPU finishing the segment, the copy);
 *   programs     programs dispatched in the segment, by class name.
 * Then the same computation once more with each segment under tf.time: the segments' GPU time by program kind
 * (timestamp queries; tf.time turns lean dispatch and the kernels with several outputs off, so these kinds are
 * the single-output ones). Then the sweep with other numbers of variants a pass (SWEEP_BATCHES, default
 * 12,24,64,144; best of two). Then the full cache against the forward (runWithCache('all') and forward, alternating:
 * recording time, time until the logits are read back, programs by class; best of REPS, default 12), and the
 * per-head loop (every head, and one head's forward under tf.time).
 * Usage (GPU machine): node sweep_profile.cjs OUT.json [BATCH] [POS] [MAX_PASS_BYTES]
 */
import './device_env.js';
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../../src/backend/index.js';
import { makeTask, PRESETS } from '../../src/bench/bench.js';
import { patchHeadsOneByOneAsync } from '../../src/bench/head_sweep.js';
import { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { activationPatchingReads } from '../../src/interp/interventions/patching.js';
import { logitDiff } from '../../src/interp/metrics.js';
import { makeConfig } from '../../src/model/config.js';
import { readAsync, type Values } from '../../src/util/reads.js';
import { kernelTimesByKind } from './kernel_times.js';
import { runMain } from './run_main.js';

const now = () => performance.now();

async function main(): Promise<void> {
  const [out = 'sweep_profile.json', batchArg = '8', posArg = '16', maxPassArg] = process.argv.slice(2);
  const [batch, pos] = [Number(batchArg), Number(posArg)];
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.name, choice.reason);
  const p = PRESETS[(process.env.PRESET ?? 'gpt2-small') as keyof typeof PRESETS]; // PRESET=quick for a smoke run on SwiftShader
  const cfg = makeConfig({ ...p.model, n_ctx: Math.max(p.model.n_ctx, pos) });
  const model = HookedTransformer.random(cfg, { seed: 0 });
  const task = makeTask(cfg.d_vocab, batch, pos, 1);
  const opts = { clean: task.clean, corrupted: task.corrupted, metric: logitDiff(task.correct, task.wrong), byPos: false, maxPassBytes: maxPassArg ? Number(maxPassArg) : undefined };

  const be = tf.backend() as unknown as { runWebGPUProgram: (prog: { constructor: { name: string } }, ...rest: unknown[]) => unknown };
  let programs: Record<string, number> = {};
  const run = be.runWebGPUProgram.bind(be);
  be.runWebGPUProgram = (prog, ...rest) => {
    programs[prog.constructor.name] = (programs[prog.constructor.name] ?? 0) + 1;
    return run(prog, ...rest);
  };

  type Segment = { enqueue_ms: number; read_ms: number; read_shape: number[]; programs: Record<string, number>; gpu_ms?: number; by_kind?: Record<string, { n: number; ms: number }> };
  /** Drives the sweep read by read; `timed` wraps each segment in tf.time. */
  const sweep = async (timed: boolean): Promise<{ total_ms: number; segments: Segment[] }> => {
    const segments: Segment[] = [];
    const g = activationPatchingReads(model, 'head-out', opts);
    const t0 = now();
    let value: Values | undefined;
    for (;;) {
      programs = {};
      let r!: IteratorResult<tf.Tensor, unknown>;
      const s0 = now();
      let gpu: Pick<Segment, 'gpu_ms' | 'by_kind'> = {};
      if (timed) {
        const info = await tf.time(() => {
          r = g.next(value as Values);
        });
        gpu = { gpu_ms: info.kernelMs as number, by_kind: kernelTimesByKind(info) };
      } else r = g.next(value as Values);
      const s1 = now();
      if (r.done) break;
      const t = r.value;
      value = (await t.data()) as Values;
      segments.push({ enqueue_ms: s1 - s0, read_ms: now() - s1, read_shape: t.shape, programs, ...gpu });
      t.dispose();
    }
    return { total_ms: now() - t0, segments };
  };

  await sweep(false); // shaders compiled for the batched shapes
  const plain = await sweep(false);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  console.log(`sweep ${batch}x${pos}: ${plain.total_ms.toFixed(1)} ms, ${plain.segments.length} reads; enqueue ${sum(plain.segments.map((s) => s.enqueue_ms)).toFixed(1)} ms, waiting on reads ${sum(plain.segments.map((s) => s.read_ms)).toFixed(1)} ms`);
  for (const s of plain.segments) console.log(`  segment: enqueue ${s.enqueue_ms.toFixed(1)} ms, read ${s.read_ms.toFixed(1)} ms [${s.read_shape}] ${JSON.stringify(s.programs)}`);
  // the same computation through readAsync, as activationPatchingAsync runs it: each pass's read starts when the pass
  // is recorded (prefetch), and the next pass is recorded while the device computes it; best of three, each driver
  const drivers: Record<string, number> = { read_by_read: Infinity, read_async: Infinity };
  for (let t = 0; t < 3; t++) {
    drivers.read_by_read = Math.min(drivers.read_by_read, (await sweep(false)).total_ms);
    const t0 = now();
    await readAsync(activationPatchingReads(model, 'head-out', opts));
    drivers.read_async = Math.min(drivers.read_async, now() - t0);
  }
  console.log(`sweep driven read by read ${drivers.read_by_read.toFixed(1)} ms, through readAsync (reads started as each pass is recorded) ${drivers.read_async.toFixed(1)} ms`);
  const timed = await sweep(true);
  const kinds: Record<string, { n: number; ms: number }> = {};
  for (const s of timed.segments) for (const [k, v] of Object.entries(s.by_kind ?? {})) {
    kinds[k] ??= { n: 0, ms: 0 };
    kinds[k].n += v.n;
    kinds[k].ms += v.ms;
  }
  const gpuTotal = sum(timed.segments.map((s) => s.gpu_ms ?? 0));
  console.log(`timed sweep: GPU ${gpuTotal.toFixed(1)} ms over ${timed.segments.length} segments (wall ${timed.total_ms.toFixed(1)} ms under tf.time)`);
  console.log(`  by kind: ${JSON.stringify(Object.fromEntries(Object.entries(kinds).sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => [k, { n: v.n, ms: +v.ms.toFixed(2) }])))}`);

  // the sweep at other pass sizes (variants a pass; the default fills about 4,096 rows), best of two runs each
  const byBatch: Record<string, number> = {};
  for (const b of (process.env.SWEEP_BATCHES ?? '12,24,64,144').split(',').map(Number)) {
    let best = Infinity;
    for (let t = 0; t < 2; t++) {
      const t0 = now();
      await readAsync(activationPatchingReads(model, 'head-out', { ...opts, batchSize: b }));
      best = Math.min(best, now() - t0);
    }
    byBatch[b] = best;
  }
  console.log(`sweep by variants a pass (ms): ${JSON.stringify(byBatch)}`);

  // the full cache against the forward (the cache_overhead target): recording time, time to the logits read back,
  // and programs, alternating, best of REPS
  const tokens = task.clean;
  const variantsOf = {
    forward: () => ({ logits: model.forward(tokens), done: () => {} }),
    cache: () => {
      const r = model.runWithCache(tokens, { names: 'all' });
      return { logits: r.logits, done: () => r.cache.dispose() };
    },
  };
  const cacheRows: Record<string, { enqueue_ms: number; total_ms: number; programs: Record<string, number> }> = {};
  const reps = Math.max(1, Number(process.env.REPS ?? 12));
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, make] of Object.entries(variantsOf)) {
      programs = {};
      const a = now();
      const r = make();
      const enq = now() - a;
      await r.logits.data();
      const total = now() - a;
      r.logits.dispose();
      r.done();
      const best = cacheRows[name];
      // the first two are warm-up, where there are more
      if (rep >= Math.min(2, reps - 1) && (!best || total < best.total_ms)) cacheRows[name] = { enqueue_ms: enq, total_ms: total, programs: { ...programs } };
    }
  }
  const nprog = (p: Record<string, number>) => Object.values(p).reduce((a, b) => a + b, 0);
  for (const [name, r] of Object.entries(cacheRows)) console.log(`${name}: total ${r.total_ms.toFixed(2)} ms, enqueue ${r.enqueue_ms.toFixed(2)} ms, ${nprog(r.programs)} programs ${JSON.stringify(r.programs)}`);
  console.log(`cache / forward: ${(cacheRows.cache.total_ms / cacheRows.forward.total_ms).toFixed(3)} (enqueue ${(cacheRows.cache.enqueue_ms / cacheRows.forward.enqueue_ms).toFixed(3)})`);

  // the loop: every head, then one head's forward under tf.time
  const l0 = now();
  (await patchHeadsOneByOneAsync(model, task)).dispose();
  const loopMs = now() - l0;
  const one = await tf.time(() => {
    model.runWithHooks(task.corrupted).dispose();
  });
  console.log(`loop over ${cfg.n_layers * cfg.n_heads} heads: ${loopMs.toFixed(1)} ms (${(loopMs / (cfg.n_layers * cfg.n_heads)).toFixed(2)} ms a head); one forward's GPU time ${(one.kernelMs as number).toFixed(2)} ms`);
  writeFileSync(out, JSON.stringify({ backend: choice, batch, pos, sweep_ms_by_driver: drivers, sweep_ms_by_variants_a_pass: byBatch, cache: cacheRows, sweep: plain, timed, by_kind: kinds, gpu_ms: gpuTotal, loop_ms: loopMs, loop_forward_gpu_ms: one.kernelMs }, null, 1));
  console.log('wrote', out);
}

runMain(main);
