/** headlens/bench: `headlens bench` as a function. */
export { runBench, PRESETS as BENCH_PRESETS, type BenchOptions, type BenchResult, type BenchPreset } from './bench.js';
