/**
 * Where the full cache's time goes beyond the forward's (issue 18, the "full cache ≤ 1.3× the forward" target), on
 * the webgpu backend: GPT-2 small with random weights, the benchmark's tokens (bench.ts makeTask), each variant timed
 * as `headlens bench` times hook_overhead (msPerCall: calls queued back to back, the block ended by one read; best
 * of TRIALS blocks of REPS calls), the variants interleaved in each trial:
 *   forward            model.forward
 *   cache_all          runWithCache(names 'all'): what hook_overhead divides by the forward
 *   cache_no_rows      every name except hook_attn_scores and hook_pattern (what the attention rows cost)
 *   cache_rows_only    only hook_attn_scores and hook_pattern
 *   cache_resid        only the residual stream (hook_resid_pre / mid / post)
 *   cache_all_per_row  'all' with flashAttention.minRows above pos: the per-row kernel writes the rows (the routing
 *                      before flashAttentionWithRows, for pos ≥ 32)
 *   cache_all_reshape_handles  'all' with the cache's handles made by reshape (sharedHandles.direct off: before
 *                      src/util/handles.ts)
 * For each: ms a call and the GPU buffers created a call while queued so; then one call with the GPU idle before it:
 * the host's own time (recording, no read), programs, buffers created.
 * Then the rows' agreement: every layer's scores, pattern and z of the default routing against the per-row kernel's
 * and against the unfused path (optimisations.fusedKernels off), max |difference| / max |value|.
 * Usage (GPU machine): node cache_profile.cjs OUT.json BATCH×POS[,BATCH×POS…]   (default 8x16,32x128)
 */
import './device_env.js';
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../../src/backend/index.js';
import { flashAttention } from '../../src/backend/webgpu_kernels/index.js';
import { makeTask, PRESETS } from '../../src/bench/bench.js';
import { msPerCall } from '../../src/bench/timing.js';
import { HookedTransformer, type NamesFilter } from '../../src/hooks/hooked_transformer.js';
import { makeConfig } from '../../src/model/config.js';
import { optimisations } from '../../src/model/transformer.js';
import { sharedHandles } from '../../src/util/handles.js';
import { relError } from '../helpers.js';
import { runMain } from './run_main.js';

const ROWS = /attn\.hook_(attn_scores|pattern)$/;

async function main(): Promise<void> {
  const [out = 'cache_profile.json', shapesArg = '8x16,32x128'] = process.argv.slice(2);
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.name, choice.reason);
  const p = PRESETS[(process.env.PRESET ?? 'gpt2-small') as keyof typeof PRESETS]; // PRESET=quick on SwiftShader
  const reps = Number(process.env.REPS ?? 20);
  const trials = Number(process.env.TRIALS ?? 5);
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: object, ...r: unknown[]) => unknown; device: { createBuffer: (d: object) => unknown } };
  let programs = 0;
  let buffers = 0;
  const run = be.runWebGPUProgram.bind(be);
  be.runWebGPUProgram = (prog, ...rest) => (programs++, run(prog, ...rest));
  const create = be.device.createBuffer.bind(be.device);
  be.device.createBuffer = (d) => (buffers++, create(d));
  const results: Record<string, unknown>[] = [];
  const savedMin = flashAttention.minRows;

  for (const shape of shapesArg.split(',')) {
    const [batch, pos] = shape.split('x').map(Number);
    const cfg = makeConfig({ ...p.model, n_ctx: Math.max(p.model.n_ctx, pos) });
    const model = HookedTransformer.random(cfg, { seed: 0 });
    const tokens = makeTask(cfg.d_vocab, batch, pos, 1).clean;
    const cached = (names: NamesFilter, perRow = false, reshapeHandles = false) => () => {
      if (perRow) flashAttention.minRows = pos + 1;
      sharedHandles.direct = !reshapeHandles;
      try {
        const r = model.runWithCache(tokens, { names });
        r.cache.dispose();
        return r.logits;
      } finally {
        flashAttention.minRows = savedMin;
        sharedHandles.direct = true;
      }
    };
    const variants: Record<string, () => tf.Tensor> = {
      forward: () => model.forward(tokens),
      cache_all: cached('all'),
      cache_no_rows: cached((n) => !ROWS.test(n)),
      cache_rows_only: cached((n) => ROWS.test(n)),
      cache_resid: cached((n) => /hook_resid_(pre|mid|post)$/.test(n)),
      cache_all_per_row: cached('all', true),
      cache_all_reshape_handles: cached('all', false, true),
    };
    const ms: Record<string, number> = {};
    const created: Record<string, number> = {}; // GPU buffers created a call while the calls were queued back to back (after the first trial)
    for (let t = 0; t < trials; t++)
      for (const [name, fn] of Object.entries(variants)) {
        buffers = 0;
        ms[name] = Math.min(ms[name] ?? Infinity, await msPerCall(fn, { reps, trials: 1, warmup: t === 0 ? 2 : 0 }));
        if (t > 0) created[name] = (created[name] ?? 0) + buffers / reps / (trials - 1);
      }
    // host time, programs and buffers of one call (the GPU idle before it), best of 5
    const host: Record<string, { enqueue_ms: number; programs: number; buffers_created: number }> = {};
    for (const [name, fn] of Object.entries(variants)) {
      let best = { enqueue_ms: Infinity, programs: 0, buffers_created: 0 };
      for (let i = 0; i < 5; i++) {
        [programs, buffers] = [0, 0];
        const a = performance.now();
        const r = fn();
        const enqueue_ms = performance.now() - a;
        const counted = { enqueue_ms, programs, buffers_created: buffers };
        await r.slice([0, 0, 0], [1, 1, 1]).data();
        r.dispose();
        if (enqueue_ms < best.enqueue_ms) best = counted;
      }
      host[name] = best;
    }
    console.log(`${batch}x${pos}: ms a call ${JSON.stringify(Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, +v.toFixed(2)])))}`);
    console.log(`${batch}x${pos}: buffers created a call, queued back to back ${JSON.stringify(Object.fromEntries(Object.entries(created).map(([k, v]) => [k, +v.toFixed(1)])))}`);
    console.log(`${batch}x${pos}: cache_all / forward ${(ms.cache_all / ms.forward).toFixed(3)}, cache_all_reshape_handles / forward ${(ms.cache_all_reshape_handles / ms.forward).toFixed(3)}, cache_all_per_row / forward ${(ms.cache_all_per_row / ms.forward).toFixed(3)}, cache_no_rows / forward ${(ms.cache_no_rows / ms.forward).toFixed(3)}`);
    for (const [name, h] of Object.entries(host)) console.log(`  ${name}: enqueue ${h.enqueue_ms.toFixed(2)} ms, ${h.programs} programs, ${h.buffers_created} buffers created`);

    // agreement of the rows: default routing against the per-row kernel and against the unfused path
    const grab = async (perRow: boolean, fused: boolean) => {
      optimisations.fusedKernels = fused;
      if (perRow) flashAttention.minRows = pos + 1;
      try {
        const names = (n: string) => ROWS.test(n) || n.endsWith('attn.hook_z');
        const r = model.runWithCache(tokens, { names });
        const got: Record<string, Float32Array> = {};
        for (const k of r.cache.keys()) got[k] = (await r.cache.get(k).data()) as Float32Array;
        got.logits = (await r.logits.data()) as Float32Array;
        r.logits.dispose();
        r.cache.dispose();
        return got;
      } finally {
        optimisations.fusedKernels = true;
        flashAttention.minRows = savedMin;
      }
    };
    const [mine, perRow, unfused] = [await grab(false, true), await grab(true, true), await grab(false, false)];
    const agreement: Record<string, { vs_per_row: number; vs_unfused: number }> = {};
    for (const kind of ['attn_scores', 'pattern', 'z', 'logits']) {
      const keys = Object.keys(mine).filter((k) => (kind === 'logits' ? k === 'logits' : k.endsWith(`hook_${kind}`)));
      agreement[kind] = { vs_per_row: Math.max(...keys.map((k) => relError(mine[k], perRow[k]))), vs_unfused: Math.max(...keys.map((k) => relError(mine[k], unfused[k]))) };
    }
    console.log(`${batch}x${pos}: agreement (max |difference| / max |value| over the layers) ${JSON.stringify(agreement)}`);
    results.push({ batch, pos, ms_per_call: ms, buffers_created_queued: created, host, agreement });
    model.dispose();
  }
  writeFileSync(out, JSON.stringify({ backend: choice, reps, trials, results }, null, 1));
  console.log('wrote', out);
}

runMain(main);
