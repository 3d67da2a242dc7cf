/** `headlens bench`: the speed and memory goals of headlens, measured on a random model of a preset size. */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { initBackend, type BackendName } from '../backend/index.js';
import { runBench, PRESETS, type BenchPreset, type BenchResult } from '../bench/bench.js';
import { LONG_PRESETS, runLongBench, type LongBenchResult, type LongPreset } from '../bench/long_context.js';
import { RANDOM_WEIGHTS_NOTE } from '../bench/retrieval_scan.js';
import { formatMatmulBench, runMatmulBench } from '../bench/matmul.js';
import { commaList, defineCommand, option, positiveInt } from './options.js';
import { CAPS, memoryBudget, activationBytes, checkAtMost, fitting, formatBytes } from './size_bounds.js';

/** The human-readable summary: each ratio beside its goal. */
export function formatBench(r: BenchResult): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const lines = [
    `backend            ${r.backend} (${r.backend_reason})`,
    `model              ${r.preset}: ${r.model.n_layers} layers × ${r.model.n_heads} heads, d_model ${r.model.d_model}, ${r.model.parameters.toLocaleString('en-US')} parameters; batch ${r.batch} × pos ${r.pos}`,
    `hook_overhead      ${f(r.hook_overhead, 3)}  (goal ≤ 1.10)  runWithCache('all') ${f(r.raw.cache_ms)} ms / forward ${f(r.raw.forward_ms)} ms`,
    `sweep_speedup      ${f(r.sweep_speedup)}  (goal ≥ 10)  loop ${f(r.raw.sweep_loop_ms, 0)} ms / batched ${f(r.raw.sweep_batched_ms, 0)} ms over ${r.raw.sweep_heads} heads, max |diff| ${r.raw.sweep_max_abs_diff.toExponential(1)}`,
    `forward_vs_matmul  ${f(r.forward_vs_matmul, 3)}  (goal ≥ 0.6)  forward ${f(r.raw.forward_gflops, 1)} GFLOP/s, its matmuls alone ${f(r.raw.matmul_gflops, 1)} GFLOP/s`,
    `cache_memory_ratio ${f(r.cache_memory_ratio, 3)}  (goal ≤ 1.2)  peak ${mb(r.raw.cache_peak_bytes)} / cache ${mb(r.raw.cache_bytes)} + logits ${mb(r.raw.logits_bytes)}`,
    `tokens/s           ${f(r.raw.tokens_per_s_forward, 0)} forward, ${f(r.raw.tokens_per_s_cache, 0)} with the full cache`,
  ];
  for (const [name, g] of Object.entries(r.optimisations ?? {})) {
    const what = name.endsWith('_train_step') ? 'training step' : 'forward';
    const peak = g.on_peak_bytes || g.off_peak_bytes ? `, peak ${mb(g.off_peak_bytes)} → ${mb(g.on_peak_bytes)}` : '';
    lines.push(`optimisation       ${name}: ${what} ${f(g.off_ms)} → ${f(g.on_ms)} ms (×${f(g.speedup, 3)})${peak}`);
  }
  return lines.join('\n');
}

const PRESET_NAMES = [...new Set([...Object.keys(PRESETS), ...Object.keys(LONG_PRESETS)])] as [string, ...string[]];

/** The --long summary: one line per context. */
export function formatLongBench(r: LongBenchResult): string {
  const lines = [
    `backend  ${r.backend} (${r.backend_reason})`,
    `model    ${r.preset}: ${r.model.n_layers} layers × ${r.model.n_heads} heads, d_model ${r.model.d_model}, ${r.model.parameters.toLocaleString('en-US')} parameters (${(r.weight_bytes / 2 ** 30).toFixed(1)} GiB of ${r.weights === '16bit' ? 'weights, linear ones bf16' : 'float32 weights'}), batch 1; ${r.clock} clock`,
  ];
  for (const row of r.rows) {
    const f = (x: number | undefined, d = 1) => (x === undefined ? '—' : x.toFixed(d));
    const t = row.retrieval;
    if (t || (r.retrieval && row.error)) {
      lines.push(
        `${String(row.context).padStart(6)} tokens  retrieval scan of ${t?.heads ?? '—'} heads: ${f(t?.total_s, 2)} s for ${t?.decode_steps ?? '—'} decoding steps (first step ${f(t?.first_step_s, 2)} s, then ${f(t?.ms_per_step)} ms/step)` +
          (row.error ? `  FAILED: ${row.error}` : ''),
      );
      continue;
    }
    lines.push(
      `${String(row.context).padStart(6)} tokens  prefill ${f(row.prefill_tokens_per_s, 0)} tokens/s (${f(row.prefill_ms, 0)} ms, peak ${f(row.prefill_peak_bytes === undefined ? undefined : row.prefill_peak_bytes / 2 ** 30, 2)} GiB)` +
        `  decode ${f(row.decode_tokens_per_s)} tokens/s, with attention rows ${f(row.decode_rows_tokens_per_s)} tokens/s` +
        (row.decode_programs_per_token === undefined ? '' : `, ${f(row.decode_programs_per_token, 0)} programs/token`) +
        (row.decode_rows_programs_per_token === undefined ? '' : ` (${f(row.decode_rows_programs_per_token, 0)} with rows)`) +
        (row.error ? `  FAILED: ${row.error}` : ''),
    );
  }
  if (r.retrieval) lines.push(`note     ${RANDOM_WEIGHTS_NOTE}`);
  return lines.join('\n');
}

export const benchCommand = defineCommand({
  summary: 'hook overhead, batched-sweep speed-up, forward vs matmul throughput and cache memory, each beside its goal',
  options: {
    quick: option(z.boolean().optional(), { description: 'the quick preset (same as --preset quick)' }),
    preset: option(z.enum(PRESET_NAMES, { error: (iss) => `no bench preset '${String(iss.input)}'` }).optional(), { description: 'the model size', default: 'gpt2-small' }),
    batch: option(positiveInt().optional(), { description: "the batch size (default: the preset's; at most what fits in memory)", value: 'N', example: '8' }),
    pos: option(positiveInt().optional(), { description: "the sequence length (default: the preset's; at most what fits in memory)", value: 'N', example: '8' }),
    reps: option(positiveInt({ max: CAPS.reps, why: 'the most calls headlens bench times in a block' }).optional(), { description: `calls per timed block (default: the preset's; at most ${CAPS.reps})`, value: 'N', example: '5' }),
    trials: option(positiveInt({ max: CAPS.trials, why: 'the most timed blocks headlens bench runs' }).optional(), { description: `timed blocks, of which the best is reported (default: the preset's; at most ${CAPS.trials})`, value: 'N', example: '3' }),
    ablate: option(z.boolean().optional(), { description: 'also time each optimisation off and on' }),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
    out: option(z.string().optional(), { description: 'also write the result as JSON', value: 'FILE.json' }),
    long: option(z.boolean().optional(), { description: `prefill and decoding of one long prompt per --contexts length (implied by ${Object.keys(LONG_PRESETS).filter((k) => !(k in PRESETS)).join(', ')})` }),
    contexts: option(commaList().transform((l) => l.map(Number)).pipe(z.array(z.number().int('a whole number of tokens').positive().max(CAPS.longContext, `at most ${CAPS.longContext} tokens`))).optional(), { description: 'prompt lengths for --long (default 1024,4096,16384)', value: 'N,N', example: '1024,4096' }),
    decode: option(positiveInt({ max: CAPS.reps, why: 'the most decoding steps headlens bench --long times' }).optional(), { description: 'decoding steps timed per context for --long (default 16; with --retrieval the tokens the scan decodes, default 50)', value: 'N', example: '16' }),
    matmul: option(z.boolean().optional(), { description: "webgpu only: tfjs' matmul against headlens' tiled WGSL matmul at the forward's shapes (GPT-2 small, llama-7b prefill, 4096³), TFLOP/s, and its decode matmul at llama-7b's decoding shapes (1 and 8 rows), GB/s of weights; results checked" }),
    weights: option(z.enum(['float32', '16bit']).optional(), { description: "--long: 'float32' weights (default) or '16bit' (the random weights rounded to bf16 and kept packed on the GPU; webgpu only)", value: 'W', example: '16bit' }),
    retrieval: option(z.boolean().optional(), { description: 'with --long: time one retrieval-head scan of every head on one needle trial per context, instead of prefill and decoding (random weights: the scores mean nothing)' }),
  },
  async run(v) {
    if (v.matmul) {
      await initBackend({ backend: v.backend as BackendName | undefined });
      const result = await runMatmulBench({ reps: v.reps, trials: v.trials, log: (line) => console.error(line) });
      if (v.out) writeFileSync(v.out, JSON.stringify(result, null, 1) + '\n');
      console.log(v.json ? JSON.stringify(result) : formatMatmulBench(result));
      return;
    }
    if (v.weights && !(v.long || v.contexts || v.decode || v.retrieval || (v.preset !== undefined && !(v.preset in PRESETS)))) {
      throw new HeadlensError('--weights applies to bench --long only', 'add --long (or a --long preset such as llama-7b)');
    }
    if (v.long || v.contexts || v.decode || v.retrieval || (v.preset !== undefined && !(v.preset in PRESETS))) {
      const preset = (v.preset ?? 'gpt2-small') as LongPreset;
      if (!(preset in LONG_PRESETS)) throw new HeadlensError(`bench --long has no preset '${preset}'`, `use one of ${Object.keys(LONG_PRESETS).join(', ')}`);
      await initBackend({ backend: v.backend as BackendName | undefined });
      const result = await runLongBench({
        preset, contexts: v.contexts, weights: v.weights, log: (line) => console.error(line),
        ...(v.retrieval ? { retrieval: true, retrievalSteps: v.decode } : { decodeTokens: v.decode }),
      });
      if (v.out) writeFileSync(v.out, JSON.stringify(result, null, 1) + '\n');
      console.log(v.json ? JSON.stringify(result) : formatLongBench(result));
      return;
    }
    const preset = (v.preset ?? (v.quick ? 'quick' : 'gpt2-small')) as BenchPreset;
    checkBenchSizes(preset, v.batch, v.pos);
    await initBackend({ backend: v.backend as BackendName | undefined });
    const result = await runBench({ preset, batch: v.batch, pos: v.pos, reps: v.reps, trials: v.trials, ablate: !!v.ablate, log: (line) => console.error(line) });
    if (v.out) writeFileSync(v.out, JSON.stringify(result, null, 1) + '\n');
    console.log(v.json ? JSON.stringify(result) : formatBench(result));
  },
});

/**
 * The bench caches every activation and takes a training step (activations and gradients): --pos alone must fit
 * with one sequence, then --batch sequences of that length.
 */
function checkBenchSizes(preset: BenchPreset, batch: number | undefined, pos: number | undefined): void {
  const p = PRESETS[preset];
  const bytes = (n: number) => 3 * activationBytes({ ...p.model, d_mlp: p.model.d_mlp ?? null, n_ctx: Math.max(p.model.n_ctx, n) }, n);
  const budget = memoryBudget();
  let maxPos = 1;
  for (let step = 2 ** 24; step >= 1; step /= 2) if (bytes(maxPos + step) <= budget) maxPos += step;
  checkAtMost('pos', pos, maxPos, `in ${formatBytes(memoryBudget())} for the ${preset} preset (one sequence's activations and gradients)`);
  const n = pos ?? p.pos;
  checkAtMost('batch', batch, fitting(bytes(n)), `in ${formatBytes(memoryBudget())} for the ${preset} preset at ${n} tokens: each sequence holds ${formatBytes(bytes(n))} (activations, gradients)`);
}
