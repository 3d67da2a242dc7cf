/**
 * `headlens bench --matmul`: tfjs-backend-webgpu's own matmul against headlens' tiled WGSL matmul
 * (src/backend/webgpu_kernels/matmul_tiled.ts) at the forward's product shapes, and against headlens' decode matmul
 * (matmul_gemv.ts) at a llama-7b decoding step's shapes (1 and 8 rows), in one run on one device.
 *
 * For each shape the operands are made once (uniform in [-1, 1), seeded), then each variant — tfjs' kernel
 * (`webgpuMatMul.tiled` off) and the tiled program with 128×128 and 64×64 output tiles, each with an 8- and a
 * 16-deep K slice (`t128 k8` …) — is timed in blocks of
 * `reps` calls ended by one readback (src/bench/timing.ts), the variants alternating block by block; the best
 * block counts. TFLOP/s = 2·batch·m·k·n / time. Before timing, every variant's full output is compared with tfjs'
 * (max |x − tfjs| / max |tfjs|), and at `samples` output entries with a float64 dot product computed here from
 * the operands' row and column (max |x − ref| / max |ref|): a variant whose result is off is reported as such,
 * not timed as if it were right.
 * The prefill shapes are arithmetic-bound: 4096³ is 137 GFLOP against 192 MiB read and written at least once (about
 * 0.06 ms at 3 TB/s), the llama-7b gate+up product 185 GFLOP against 450 MiB.
 * The decode shapes (at most 8 rows, `webgpuMatMul.gemvMaxRows`) are bound by reading W: their variants are tfjs and
 * the decode matmul with 4, 8 and 16 lanes a workgroup (`gemv l4` …) and with two column groups a thread at 4 and 8
 * lanes (`gemv l4g2`, `gemv l8g2`), their measure GB/s = bytes of W / time, both
 * from the wall clock (blocks of at least `decodeReps` calls: one call is tens of microseconds) and, where the device
 * has WebGPU timestamp queries, from the programs' GPU time (tf.time's kernelMs over `reps` calls).
 * At the decode shapes W is rounded to bf16 first (every variant multiplies the same values), and the packed
 * 16-bit kernel (matmul16.ts) is timed beside them: `bf16 pairs` (the pair kernel) and `bf16 l4` … (the vector
 * kernel at 4, 8, 16 lanes); their GB/s count W's 2 bytes a weight.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { matMul16, matmul16Options, pack16, unpack16 } from '../backend/webgpu_kernels/matmul16.js';
import { autoTile, webgpuMatMul } from '../backend/webgpu_kernels/matmul_tiled.js';
import { msPerCall } from './timing.js';

/** One product: `batch` independent [m, k]·[k, n] (b shared when `shareB`), optionally with a bias of n values. */
export interface MatmulBenchShape {
  name: string;
  batch: number;
  m: number;
  k: number;
  n: number;
  bias?: boolean;
  transposeB?: boolean;
}

/** The forward's products: GPT-2 small at 8 × 16 and 32 × 128 tokens, a llama-7b prefill of 1,024 tokens, 4096³. */
export const MATMUL_BENCH_SHAPES: MatmulBenchShape[] = [
  ...[
    [8, 16],
    [32, 128],
  ].flatMap(([b, p]) => {
    const t = b * p;
    const tag = `gpt2-small ${b}×${p}`;
    return [
      { name: `${tag} qkv`, batch: 1, m: t, k: 768, n: 2304, bias: true },
      { name: `${tag} attn out`, batch: 1, m: t, k: 768, n: 768, bias: true },
      { name: `${tag} mlp in`, batch: 1, m: t, k: 768, n: 3072, bias: true },
      { name: `${tag} mlp out`, batch: 1, m: t, k: 3072, n: 768, bias: true },
      { name: `${tag} unembed`, batch: 1, m: t, k: 768, n: 50257 },
      { name: `${tag} q·kᵀ`, batch: b * 12, m: p, k: 64, n: p, transposeB: true },
      { name: `${tag} pattern·v`, batch: b * 12, m: p, k: p, n: 64 },
    ];
  }),
  { name: 'llama-7b 1024 qkv', batch: 1, m: 1024, k: 4096, n: 12288 },
  { name: 'llama-7b 1024 attn out', batch: 1, m: 1024, k: 4096, n: 4096 },
  { name: 'llama-7b 1024 gate+up', batch: 1, m: 1024, k: 4096, n: 22016 },
  { name: 'llama-7b 1024 down', batch: 1, m: 1024, k: 11008, n: 4096 },
  { name: 'llama-7b 1024 q·kᵀ', batch: 32, m: 1024, k: 128, n: 1024, transposeB: true },
  { name: 'square 4096³', batch: 1, m: 4096, k: 4096, n: 4096 },
  // a llama-7b decoding step at 1 and 8 rows (batch × new positions); bias on, as the model's fused linear calls it
  ...[1, 8].flatMap((m) => [
    { name: `llama-7b decode ${m} attn out`, batch: 1, m, k: 4096, n: 4096, bias: true },
    { name: `llama-7b decode ${m} qkv`, batch: 1, m, k: 4096, n: 12288, bias: true },
    { name: `llama-7b decode ${m} gate/up`, batch: 1, m, k: 4096, n: 11008, bias: true },
    { name: `llama-7b decode ${m} down`, batch: 1, m, k: 11008, n: 4096, bias: true },
    { name: `llama-7b decode ${m} unembed`, batch: 1, m, k: 4096, n: 32000, bias: true },
  ]),
];

/** A decode-matmul variant's name: `gemv l4`, or `gemv l4g2` with two column groups a thread. */
const gemvName = (lanes: number, groups: number) => `gemv l${lanes}${groups > 1 ? `g${groups}` : ''}`;

/** A product the decode matmul's variants are timed on (at most 8 rows, one W). */
const isDecode = (s: MatmulBenchShape) => s.batch === 1 && s.m <= 8;

export interface MatmulBenchVariant {
  variant: string;
  /**
   * false when the variant's headlens program (the tiled one; the decode matmul for `gemv …` variants) did not take
   * this product (fewer rows than webgpuMatMul.minRows, …): tfjs ran it.
   */
  tiled: boolean;
  ms: number;
  tflops: number;
  /** bytes of W (the right operand) / ms: what bounds a decode product. */
  gbps: number;
  /** GPU time per call from WebGPU timestamp queries (tf.time), decode shapes only; absent without them. */
  kernel_ms?: number;
  /** bytes of W / kernel_ms. */
  kernel_gbps?: number;
  /** max |x − tfjs| / max |tfjs| over the whole output (0 for tfjs itself). */
  rel_diff_vs_tfjs: number;
  /** max |x − float64| / max |float64| over the sampled entries. */
  rel_err_vs_float64: number;
  ok: boolean;
}

export interface MatmulBenchRow extends MatmulBenchShape {
  flop: number;
  variants: MatmulBenchVariant[];
  /** best tiled (decode: gemv) variant's TFLOP/s over tfjs' (wall clock). */
  speedup?: number;
  /** the variant the defaults (tile 'auto', K slice 8) would run. */
  default_variant?: string;
  error?: string;
}

export interface MatmulBenchResult {
  backend: string;
  adapter?: string;
  /** The features tfjs' device was created with (no 'subgroups': tfjs 4.22 does not request it). */
  device_features: string[];
  /** maxComputeWorkgroupStorageSize: a 16-deep K slice on 128×128 tiles needs 32 KiB. */
  workgroup_storage_bytes?: number;
  reps: number;
  /** calls per timed block at the decode shapes */
  decode_reps: number;
  trials: number;
  tolerance: number;
  rows: MatmulBenchRow[];
}

export interface MatmulBenchOptions {
  shapes?: MatmulBenchShape[];
  reps?: number;
  trials?: number;
  /** K slices of the tiled program to time (default 8 and 16). */
  tileKs?: (8 | 16)[];
  /** Output tiles of the tiled program to time (default 128 and 64), each with each K slice. */
  tiles?: (64 | 128)[];
  /**
   * Settings of the decode matmul to time at decode shapes: [lanes a workgroup, vec4 column groups a thread]
   * (default [4, 1], [8, 1], [16, 1], [4, 2], [8, 2]; variants named `gemv l4`, `gemv l4g2` …).
   */
  gemvSettings?: [4 | 8 | 16, 1 | 2][];
  /** Lanes of the packed 16-bit kernel to time at decode shapes (matmul16Options.lanes; 0 the pair kernel; default 0, 4, 8, 16). */
  w16Lanes?: (0 | 4 | 8 | 16)[];
  /** Calls per timed block at decode shapes, at least (default 100). */
  decodeReps?: number;
  /** Output entries checked against float64 (default 16). */
  samples?: number;
  /** Relative difference above which a variant is marked not ok (default 1e-4). */
  tolerance?: number;
  log?: (line: string) => void;
}

/** A seeded LCG: the sample positions are the same in every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function scalar(t: tf.Tensor): Promise<number> {
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

/**
 * GPU milliseconds per call of `fn` over `reps` calls: tf.time's kernelMs, the sum of the programs' times from
 * WebGPU timestamp queries. Infinity where the device has none (tfjs then reports no number).
 */
async function kernelMsPerCall(fn: () => tf.Tensor, reps: number): Promise<number> {
  const info = await tf.time(() => {
    for (let i = 0; i < reps; i++) fn().dispose();
  });
  const ms = info.kernelMs as unknown;
  return typeof ms === 'number' && ms > 0 ? ms / reps : Infinity;
}

/** Times and checks tfjs' and the tiled matmul at each shape. Needs the webgpu backend (initBackend first). */
export async function runMatmulBench(opts: MatmulBenchOptions = {}): Promise<MatmulBenchResult> {
  if (tf.getBackend() !== 'webgpu') {
    throw new HeadlensError(`bench --matmul times the webgpu backend's kernels, but the backend is '${tf.getBackend()}'`, 'run it with --backend webgpu');
  }
  const shapes = opts.shapes ?? MATMUL_BENCH_SHAPES;
  const reps = opts.reps ?? 10;
  const trials = opts.trials ?? 5;
  const tileKs = opts.tileKs ?? [8, 16];
  const tiles = opts.tiles ?? [128, 64];
  const gemvSettings = opts.gemvSettings ?? [[4, 1], [8, 1], [16, 1], [4, 2], [8, 2]];
  const w16Lanes = opts.w16Lanes ?? [0, 4, 8, 16];
  const decodeReps = Math.max(reps, opts.decodeReps ?? 100);
  const samples = opts.samples ?? 16;
  const tolerance = opts.tolerance ?? 1e-4;
  const log = opts.log ?? (() => {});
  const saved = { ...webgpuMatMul };
  const saved16 = { ...matmul16Options };
  // each variant names the program class that must run for it to count as taken; a 16-bit variant runs `packed`
  // (its own call on the packed W) and reads half the bytes
  type Variant = { name: string; program?: string; set: () => void; packed?: boolean };
  const tfjsVariant: Variant = { name: 'tfjs', set: () => Object.assign(webgpuMatMul, { tiled: false }) };
  const tiledVariants: Variant[] = [
    tfjsVariant,
    ...tiles.flatMap((t) => tileKs.map((k) => ({ name: `t${t} k${k}`, program: 'TiledMatMulProgram', set: () => Object.assign(webgpuMatMul, { tiled: true, tile: t, tileK: k, minRows: 64, gemvMaxRows: 0 }) }))),
  ];
  const gemvVariants: Variant[] = [
    tfjsVariant,
    ...gemvSettings.map(([l, g]) => ({ name: gemvName(l, g), program: 'GemvMatMulProgram', set: () => Object.assign(webgpuMatMul, { tiled: true, gemvMaxRows: 8, gemvLanes: l, gemvGroups: g }) })),
    ...w16Lanes.map((l) => ({ name: l ? `bf16 l${l}` : 'bf16 pairs', program: 'HeadlensMatMul16', packed: true, set: () => (matmul16Options.lanes = l) })),
  ];
  const be = tf.backend() as unknown as {
    runWebGPUProgram: (p: { constructor: { name: string } }, ...rest: unknown[]) => unknown;
    adapterInfo?: { vendor?: string; architecture?: string };
    device?: { features?: Iterable<string>; limits?: { maxComputeWorkgroupStorageSize?: number } };
  };
  const rows: MatmulBenchRow[] = [];
  try {
    for (const s of shapes) {
      const flop = 2 * s.batch * s.m * s.k * s.n;
      const decode = isDecode(s);
      const variants = decode ? gemvVariants : tiledVariants;
      const wBytes = 4 * s.batch * s.k * s.n;
      const row: MatmulBenchRow = { ...s, flop, variants: [] };
      rows.push(row);
      const made: tf.Tensor[] = [];
      try {
        const aShape = s.batch > 1 ? [s.batch, s.m, s.k] : [s.m, s.k];
        const bShape = s.transposeB ? (s.batch > 1 ? [s.batch, s.n, s.k] : [s.n, s.k]) : s.batch > 1 ? [s.batch, s.k, s.n] : [s.k, s.n];
        const a = tf.randomUniform(aShape, -1, 1, 'float32', 1);
        let b = tf.randomUniform(bShape, -1, 1, 'float32', 2);
        const bias = s.bias ? tf.randomUniform([s.n], -1, 1, 'float32', 3) : undefined;
        made.push(a, b, ...(bias ? [bias] : []));
        // decode shapes: W rounded to bf16, and packed for the 16-bit variants
        let packed: tf.Tensor2D | undefined;
        if (decode) {
          packed = pack16(b as tf.Tensor2D, 'bf16');
          b = unpack16(packed, s.n, 'bf16');
          made.push(packed, b);
        }
        const zeros = decode && !bias ? tf.zeros([s.n]) : undefined;
        if (zeros) made.push(zeros);
        const call32 = () => (bias ? tf.fused.matMul({ a, b, bias, transposeB: s.transposeB }) : tf.matMul(a, b, false, !!s.transposeB));
        const call16 = () => matMul16(a as tf.Tensor2D, packed!, bias ?? zeros!, s.n, 'bf16');
        const callOf = (v: Variant) => (v.packed ? call16 : call32);

        // float64 references at sampled entries: a's row and b's column read back, the dot product done here
        const rnd = lcg(s.m * 31 + s.n * 7 + s.k);
        const at = Array.from({ length: samples }, () => [Math.floor(rnd() * s.batch), Math.floor(rnd() * s.m), Math.floor(rnd() * s.n)]);
        const refs: number[] = [];
        for (const [bi, i, j] of at) {
          const ar = tf.tidy(() => a.reshape([s.batch, s.m, s.k]).slice([bi, i, 0], [1, 1, s.k]));
          const bc = tf.tidy(() => (s.transposeB ? b.reshape([s.batch, s.n, s.k]).slice([bi, j, 0], [1, 1, s.k]) : b.reshape([s.batch, s.k, s.n]).slice([bi, 0, j], [1, s.k, 1])));
          const [av, bv] = [await ar.data(), await bc.data()];
          tf.dispose([ar, bc]);
          let sum = bias ? (await bias.data())[j] : 0;
          for (let kk = 0; kk < s.k; kk++) sum += av[kk] * bv[kk];
          refs.push(sum);
        }
        const refScale = Math.max(...refs.map(Math.abs));

        let base: tf.Tensor | undefined;
        const checked: MatmulBenchVariant[] = [];
        for (const v of variants) {
          v.set();
          let tiledRuns = 0;
          const run = be.runWebGPUProgram;
          be.runWebGPUProgram = function (this: unknown, p, ...rest) {
            if (v.program && p.constructor.name === v.program) tiledRuns++;
            return run.call(this, p, ...rest);
          };
          let out: tf.Tensor;
          try {
            out = callOf(v)();
          } finally {
            be.runWebGPUProgram = run;
          }
          const flat = tf.tidy(() => out.reshape([s.batch, s.m, s.n]));
          let err = 0;
          for (const [idx, [bi, i, j]] of at.entries()) {
            const e = tf.tidy(() => flat.slice([bi, i, j], [1, 1, 1]));
            err = Math.max(err, Math.abs((await scalar(e)) - refs[idx]));
          }
          flat.dispose();
          let diff = 0;
          if (!base) base = out;
          else {
            const b0 = base;
            diff = (await scalar(tf.tidy(() => tf.max(tf.abs(out.sub(b0)))))) / (await scalar(tf.tidy(() => tf.max(tf.abs(b0)))));
            out.dispose();
          }
          const relErr = err / refScale;
          checked.push({ variant: v.name, tiled: tiledRuns > 0, ms: NaN, tflops: NaN, gbps: NaN, rel_diff_vs_tfjs: diff, rel_err_vs_float64: relErr, ok: diff <= tolerance && relErr <= tolerance && !Number.isNaN(diff + relErr) });
        }
        base?.dispose();

        const best = checked.map(() => Infinity);
        const kernelBest = checked.map(() => Infinity);
        for (let t = 0; t < trials; t++) {
          for (const [vi, v] of variants.entries()) {
            v.set();
            best[vi] = Math.min(best[vi], await msPerCall(callOf(v), { reps: decode ? decodeReps : reps, trials: 1, warmup: t === 0 ? 1 : 0 }));
            if (decode) kernelBest[vi] = Math.min(kernelBest[vi], await kernelMsPerCall(callOf(v), reps));
          }
        }
        for (const [vi, c] of checked.entries()) {
          const bytes = variants[vi].packed ? wBytes / 2 : wBytes;
          c.ms = best[vi];
          c.tflops = flop / best[vi] / 1e9;
          c.gbps = bytes / best[vi] / 1e6;
          if (Number.isFinite(kernelBest[vi])) {
            c.kernel_ms = kernelBest[vi];
            c.kernel_gbps = bytes / kernelBest[vi] / 1e6;
          }
        }
        row.variants = checked;
        // the defaults' choice (webgpuMatMul is restored to them only after the loop)
        const now = { ...webgpuMatMul };
        Object.assign(webgpuMatMul, saved);
        row.default_variant = !saved.tiled
          ? 'tfjs'
          : s.batch === 1 && s.m <= saved.gemvMaxRows
            ? gemvName(saved.gemvLanes, saved.gemvGroups)
            : s.m < 64 || (s.m < saved.minRows && s.n < saved.wideN)
              ? 'tfjs'
              : `t${saved.tile === 'auto' ? autoTile(s.batch, s.m, s.n) : saved.tile} k${saved.tileK}`;
        Object.assign(webgpuMatMul, now);
        const tiledBest = Math.max(...checked.filter((c, i) => c.tiled && c.ok && !variants[i].packed).map((c) => c.tflops));
        if (Number.isFinite(tiledBest)) row.speedup = tiledBest / checked[0].tflops;
        const speed = (c: MatmulBenchVariant) => (decode ? `${tf3(c.gbps)} GB/s${c.kernel_gbps ? ` (GPU time ${tf3(c.kernel_gbps)})` : ''}` : `${tf3(c.tflops)} TFLOP/s`);
        log(
          `matmul ${s.name} [${s.batch}×${s.m}×${s.k}×${s.n}]: ` +
            checked.map((c) => `${c.variant}${c.tiled || c.variant === 'tfjs' ? '' : ' (ran tfjs)'} ${speed(c)}${c.ok ? '' : ` NOT OK (vs tfjs ${c.rel_diff_vs_tfjs.toExponential(1)}, vs float64 ${c.rel_err_vs_float64.toExponential(1)})`}`).join(', '),
        );
      } catch (e) {
        row.error = (e as Error).message.split('\n')[0];
        log(`matmul ${s.name}: FAILED: ${row.error}`);
      } finally {
        tf.dispose(made);
      }
    }
  } finally {
    Object.assign(webgpuMatMul, saved);
    Object.assign(matmul16Options, saved16);
  }
  const info = be.adapterInfo;
  return {
    backend: tf.getBackend(),
    adapter: info ? [info.vendor, info.architecture].filter(Boolean).join(' ') : undefined,
    device_features: [...(be.device?.features ?? [])].sort(),
    workgroup_storage_bytes: be.device?.limits?.maxComputeWorkgroupStorageSize,
    reps,
    decode_reps: decodeReps,
    trials,
    tolerance,
    rows,
  };
}

/** TFLOP/s to 3 significant digits at most (a CPU adapter gives thousandths). */
const tf3 = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));

/** The table `headlens bench --matmul` prints: one block for the prefill shapes (TFLOP/s), one for the decode shapes (GB/s). */
export function formatMatmulBench(r: MatmulBenchResult): string {
  const lines = [
    `backend ${r.backend}${r.adapter ? ` (${r.adapter})` : ''}; device features: ${r.device_features.join(', ') || 'none'}; workgroup memory ${r.workgroup_storage_bytes ?? '?'} bytes`,
    `best of ${r.trials} blocks of ${r.reps} calls (decode shapes: ${r.decode_reps}); results checked within ${r.tolerance} relative`,
  ];
  const blocks: { title: string; rows: MatmulBenchRow[]; decode: boolean }[] = [
    { title: 'TFLOP/s (wall clock)', rows: r.rows.filter((row) => !isDecode(row)), decode: false },
    { title: 'GB/s = bytes of W / time: wall clock, and [GPU time from timestamp queries] where the device has them', rows: r.rows.filter(isDecode), decode: true },
  ];
  for (const block of blocks.filter((b) => b.rows.length)) {
    const names = block.rows.find((row) => row.variants.length)?.variants.map((v) => v.variant) ?? [];
    const width = block.decode ? 18 : 10;
    lines.push('', block.title);
    lines.push(['shape'.padEnd(34), 'batch×m×k×n'.padEnd(24), ...names.map((n) => n.padStart(width)), 'speedup'.padStart(8), 'default'.padStart(9), ' check'].join(' '));
    for (const row of block.rows) {
      const dims = `${row.batch}×${row.m}×${row.k}×${row.n}`;
      if (row.error) {
        lines.push(`${row.name.padEnd(34)} ${dims.padEnd(24)} FAILED: ${row.error}`);
        continue;
      }
      const value = (v: MatmulBenchVariant) => (block.decode ? `${tf3(v.gbps)}${v.kernel_gbps ? ` [${tf3(v.kernel_gbps)}]` : ''}` : tf3(v.tflops));
      const cells = row.variants.map((v) => `${value(v)}${v.tiled || v.variant === 'tfjs' ? '' : '*'}`.padStart(width));
      const bad = row.variants.filter((v) => !v.ok).map((v) => `${v.variant} off (${v.rel_diff_vs_tfjs.toExponential(1)} vs tfjs, ${v.rel_err_vs_float64.toExponential(1)} vs float64)`);
      lines.push([row.name.padEnd(34), dims.padEnd(24), ...cells, (row.speedup ? `×${row.speedup.toFixed(2)}` : '—').padStart(8), (row.default_variant ?? '').padStart(9), bad.length ? ` ${bad.join('; ')}` : ' ok'].join(' '));
    }
  }
  lines.push('* headlens\' program did not take this product (the tiled one: fewer than 64 rows; the decode one: more than 8): tfjs ran it');
  lines.push('speedup: the best headlens variant over tfjs (wall clock); default: the variant webgpuMatMul\'s defaults run');
  return lines.join('\n');
}
