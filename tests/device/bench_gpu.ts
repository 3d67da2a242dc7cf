/**
 * `headlens bench` on the GPU machine, where vitest cannot run (no Node.js there: see ../shared/device).
 * Bundled by ../shared/device/pack.sh and run with `bash .device/boot.sh --backend webgpu --out DIR`.
 * In one process: the WebGPU parity check of every fixture against transformers (after the forward's
 * speed-ups, which must keep it within 1e-4), then the benchmark on GPT-2 small's shape at the IOI-sized
 * batch (with each speed-up timed on and off) and at a larger batch where the GPU is busy (32 × 128 tokens;
 * --large-batch, --large-pos, or --skip-large yes; --parity-only yes stops after the parity check). --quick yes benches the quick preset instead. Each result is
 * written as JSON into DIR, where bench/pytorch_bench.py, run after it, finds them.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { runBench, type BenchOptions } from '../../src/bench/bench.js';
import { fixtureModels } from '../helpers.js';
import { fixtureErrors } from './fixture_parity.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Largest error per fixture over logits, every resid_pre and pattern, and ln_final. */
async function parity(): Promise<Record<string, number>> {
  const worst: Record<string, number> = {};
  for (const name of fixtureModels()) {
    const { model, errors } = await fixtureErrors(name);
    model.dispose();
    worst[name] = Math.max(...Object.values(errors));
    console.log(`parity ${name}: max |error| ${worst[name].toExponential(2)}`);
  }
  return worst;
}

async function main() {
  const backend = arg('backend', 'webgpu') as BackendName;
  const outDir = arg('out', process.env.OUT ?? '.');
  const choice = await initBackend({ backend });
  console.log(`backend ${choice.name}: ${choice.reason}`);
  if (arg('only-large', 'no') === 'yes') {
    // the batched sweep at 32 × 128 in passes of at most 64 MiB of scores (the default), then in one pass
    for (const [name, maxPassBytes] of [['large-chunked', undefined], ['large-one-pass', Infinity]] as const) {
      const r = await runBench({ preset: 'gpt2-small', batch: 32, pos: 128, reps: 2, trials: 1, maxPassBytes, log: (line) => console.log(line) });
      writeFileSync(path.join(outDir, `bench-${choice.name}-${name}.json`), JSON.stringify(r, null, 1));
      console.log(JSON.stringify({ run: name, sweep_speedup: r.sweep_speedup, sweep_max_abs_diff: (r.raw as Record<string, unknown>).sweep_max_abs_diff }));
    }
    return;
  }
  // --parity no: the benchmarks alone in this process (the fixtures' models loaded first leave the process larger)
  if (arg('parity', 'yes') !== 'no') {
    const worst = await parity();
    const ok = Object.values(worst).every((e) => e < 1e-4);
    writeFileSync(path.join(outDir, `bench-parity-${choice.name}.json`), JSON.stringify({ backend: choice, max_abs_error: worst, within_1e4: ok }, null, 1));
    console.log(`parity within 1e-4 on every fixture: ${ok}`);
  }
  if (arg('parity-only', 'no') === 'yes') return;

  const runs: { name: string; opts: BenchOptions }[] = [
    // reps and trials as bench/pytorch_bench.py takes them (20, 5), so both sides' best blocks are alike
    { name: 'ioi', opts: { preset: 'gpt2-small', ablate: true, reps: Number(arg('reps', '20')), trials: Number(arg('trials', '5')) } },
    { name: 'large', opts: { preset: 'gpt2-small', batch: Number(arg('large-batch', '32')), pos: Number(arg('large-pos', '128')), reps: 3, trials: 2 } },
  ];
  if (arg('skip-large', 'no') === 'yes') runs.pop();
  if (arg('quick', 'no') === 'yes') runs.splice(0, 2, { name: 'quick', opts: { preset: 'quick', ablate: true } });
  for (const { name, opts } of runs) {
    const r = await runBench({ ...opts, log: (line) => console.log(line) });
    const file = path.join(outDir, `bench-${choice.name}-${name}.json`);
    writeFileSync(file, JSON.stringify(r, null, 1));
    console.log(JSON.stringify({ run: name, hook_overhead: r.hook_overhead, sweep_speedup: r.sweep_speedup, forward_vs_matmul: r.forward_vs_matmul, cache_memory_ratio: r.cache_memory_ratio, tokens_per_s_forward: r.raw.tokens_per_s_forward, tokens_per_s_cache: r.raw.tokens_per_s_cache }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
