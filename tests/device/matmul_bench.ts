/**
 * tfjs-backend-webgpu's matmul against headlens' tiled WGSL matmul (src/backend/webgpu_kernels/matmul_tiled.ts) at
 * the forward's shapes, and against the decode matmul (matmul_gemv.ts) at a llama-7b decoding step's shapes, on the
 * GPU machine: the same as `headlens bench --matmul`, as a program pack.sh or esbuild bundles.
 * Usage: node matmul_bench.cjs OUT.json [REPS] [TRIALS] [NAME_FILTER]
 * (NAME_FILTER: a substring of the shape names, e.g. llama-7b, or 'decode' for the decode shapes only; default
 * every shape). Decode shapes are timed in blocks of at least 100 calls (DECODE_REPS overrides).
 */
import { writeFileSync } from 'node:fs';
import { initBackend } from '../../src/backend/index.js';
import { formatMatmulBench, MATMUL_BENCH_SHAPES, runMatmulBench } from '../../src/bench/matmul.js';
import { runMain } from './run_main.js';

async function main(): Promise<void> {
  const [out = 'matmul_bench.json', reps = '10', trials = '5', filter = ''] = process.argv.slice(2);
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.name, choice.reason);
  const shapes = MATMUL_BENCH_SHAPES.filter((s) => s.name.includes(filter));
  const result = await runMatmulBench({
    shapes,
    reps: Number(reps),
    trials: Number(trials),
    decodeReps: process.env.DECODE_REPS ? Number(process.env.DECODE_REPS) : undefined,
    log: (line) => {
      console.log(line);
    },
  });
  writeFileSync(out, JSON.stringify({ backend_reason: choice.reason, ...result }, null, 1));
  console.log(formatMatmulBench(result));
  console.log('wrote', out);
}

runMain(main);
