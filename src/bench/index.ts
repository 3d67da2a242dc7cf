/** headlens/bench: `headlens bench` as a function. */
export { runBench, PRESETS as BENCH_PRESETS, type BenchOptions, type BenchResult, type BenchPreset } from './bench.js';
export { runLongBench, LONG_PRESETS, type LongBenchOptions, type LongBenchResult, type LongBenchRow, type LongPreset } from './long_context.js';
export { runMatmulBench, formatMatmulBench, MATMUL_BENCH_SHAPES, type MatmulBenchOptions, type MatmulBenchResult, type MatmulBenchRow, type MatmulBenchShape } from './matmul.js';
export { timeRetrievalScan, retrievalBenchTrial, retrievalBenchOptions, RANDOM_WEIGHTS_NOTE, type RetrievalScanTiming } from './retrieval_scan.js';
