/**
 * A tiled float32 matrix product for tfjs-backend-webgpu (issue 18 §2), for prefill-sized products.
 *
 * Why: on an H100 through Dawn/Vulkan, tfjs 4.22's MatMulPackedProgram (a 32×32 output tile per workgroup of 64
 * threads, 4×4 outputs a thread, K step 32 read as scalars on transposed operands) reached about 6–7.6 TFLOP/s on
 * 4096³ float32, against cuBLAS' 51.6 TFLOP/s for float32 without TF32; the llama-7b-shaped prefill spends its time
 * in matmuls. WebGPU has no matrix units, so the aim is the classic register-blocked SGEMM on the FMA units:
 *
 *   - a workgroup of 16×16 threads computes a 128×128 output tile; each thread an 8×8 block, held in 16 vec4
 *     registers. The thread's rows are {4·ty … 4·ty+3} and {64+4·ty … 64+4·ty+3} (columns likewise with tx), so
 *     every read of the staged tiles is one aligned vec4, and the 16 threads of a half-warp read 16 consecutive
 *     vec4 of B (no bank conflicts) while A's reads are broadcasts. Where 128×128 tiles would leave most of a
 *     large GPU idle (fewer than `smallTileBelow` workgroups, e.g. GPT-2's projections at 128 rows: 18), 8×8
 *     threads compute 64×64 tiles the same way;
 *   - both operands are staged in workgroup memory k-major ([k][m] and [k][n]), `tileK` (8 or 16) deep, in two
 *     buffers: the next K slice is read from global memory into registers while the current one is multiplied,
 *     then stored to the other buffer, so one barrier per K slice suffices;
 *   - global reads are vec4 when the operand's rows are a multiple of 4 floats (then a vec4 is wholly inside or
 *     wholly outside the matrix), else four bounds-checked scalar reads; out-of-range elements read as 0, so any
 *     M, N, K work, and the output write is bounds-checked (vec4 when N is a multiple of 4);
 *   - transposeA / transposeB only change how a slice is read (a transposed operand is read along its rows), not
 *     the inner loop;
 *   - a batch of products is the grid's z; an operand whose batch is broadcast (tfjs' BatchMatMul broadcasting of
 *     the leading dimensions) is read at `batch % its batch size`, which is exact whenever its leading dimensions,
 *     padded with 1s on the left, are all 1 up to a suffix equal to the output's; other broadcasts are delegated;
 *   - _FusedMatMul's bias (N values, broadcast over rows) and a linear or relu activation are applied in the
 *     epilogue; other activations and PReLU weights are delegated.
 * Subgroup operations are not used: tfjs 4.22 requests no 'subgroups' feature for its device, so its shaders
 * cannot enable them, and a register-blocked tile needs no cross-lane exchange.
 *
 * Integration: `registerTiledMatMul()` (called by initBackend when webgpu starts) replaces the webgpu backend's
 * BatchMatMul and _FusedMatMul kernels with wrappers that run this program for the products it handles and call
 * the kernels registered before them for everything else: fewer than `minRows` output rows (decoding steps, small
 * batches: tfjs' small-output programs, or another headlens kernel, handle those), non-float32 inputs, activations
 * other than linear/relu, and broadcasts or grid sizes outside the limits above. `webgpuMatMul.tiled = false`
 * sends every call to the earlier kernels, so `headlens bench --ablate` and `headlens bench --matmul` can time
 * both in one run. Products of at most `gemvMaxRows` rows (decoding steps) are first offered to the decode matmul
 * (matmul_gemv.ts), which the same switch turns off.
 */
import * as tf from '@tensorflow/tfjs';
import { planGemv, runGemv } from './matmul_gemv.js';
import { reshapeView } from './program.js';

/** Switches read at each call: `tiled` off delegates every product to tfjs' kernels (the decode matmul's too). */
export const webgpuMatMul = {
  tiled: true,
  /**
   * Products with fewer output rows (M) than this go to tfjs' kernels, unless they are at least 64 rows and `wideN`
   * columns. Measured on an H100 (bench/results/h100-2026-12-07-s3/matmul.log): at 128 rows (GPT-2 at 8 × 16) the
   * tiled kernel lost on three of GPT-2's four projections (down to 0.67× tfjs on the MLP's output) and won only on
   * the unembedding (1.77×); from 1,024 rows on it won on every projection (1.26–1.41×).
   */
  minRows: 256,
  /** Products of at least 64 rows and this many columns (an unembedding) take the tiled kernel below minRows. */
  wideN: 16384,
  /** K slice staged per step: 8 or 16 (twice the workgroup memory; 8 where the device does not allow it). */
  tileK: 8 as 8 | 16,
  /**
   * Output tile per workgroup: 128 (16×16 threads) or 64 (8×8 threads), each thread 8×8 outputs. 'auto' takes 64
   * when 128-tiles would give fewer than `smallTileBelow` workgroups (a GPU of 132 multiprocessors left mostly idle)
   * or would pad the output by a quarter more (autoTile).
   */
  tile: 'auto' as 'auto' | 64 | 128,
  smallTileBelow: 256,
  /**
   * Products of at most this many output rows (decoding steps) run in the decode matmul (matmul_gemv.ts), which
   * reads W once per 8 rows with coalesced vec4 loads; 0 turns it off. Its GPU speed is measured by
   * `headlens bench --matmul` (the llama-7b decode shapes).
   */
  gemvMaxRows: 8,
  /** The decode matmul's lanes of 4 columns a workgroup (4, 8 or 16; its 256 threads split K in 256 / lanes slices). */
  gemvLanes: 4 as 4 | 8 | 16,
  /** The decode matmul's vec4 column groups a thread (1 or 2: twice the columns a workgroup, x read once for both). */
  gemvGroups: 1 as 1 | 2,
};

type KernelFunc = (args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }) => tf.TensorInfo | tf.TensorInfo[];

/** The parts of tfjs-backend-webgpu 4.22's WebGPUBackend this uses. */
interface WebGPUBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  device: { limits: { maxComputeWorkgroupsPerDimension: number; maxComputeWorkgroupStorageSize: number } };
}

/** What one product needs: shapes folded to [batch, rows, cols] as tfjs' batchMatMulImpl folds them. */
export interface TiledPlan {
  m: number;
  n: number;
  k: number;
  batch: number;
  a3d: number[];
  b3d: number[];
  outShape: number[];
  transposeA: boolean;
  transposeB: boolean;
  bias?: tf.TensorInfo;
  relu: boolean;
  tileK: 8 | 16;
  /** Output tile side (64 or 128): 8 outputs a thread, so tile / 8 threads a side. */
  tile: 64 | 128;
}

const size = (shape: number[]) => shape.reduce((s, d) => s * d, 1);

/**
 * Whether an operand of leading dimensions `dims` is read exactly at `batch % size(dims)` in an output of leading
 * dimensions `out`: padded with 1s on the left, it must be all 1s and then a suffix equal to the output's.
 */
function modBroadcastable(dims: number[], out: number[]): boolean {
  const padded = [...Array(out.length - dims.length).fill(1), ...dims];
  let i = 0;
  while (i < padded.length && padded[i] === 1) i++;
  for (let j = i; j < padded.length; j++) if (padded[j] !== out[j]) return false;
  return true;
}

/**
 * 64×64 tiles where 128×128 ones would be few (fewer than `smallTileBelow` workgroups) or would pad the output by a
 * quarter more than 64×64 ones (e.g. N = 64: half of every 128-wide tile idle).
 */
export function autoTile(batch: number, m: number, n: number): 64 | 128 {
  const padded = (t: number) => Math.ceil(m / t) * t * Math.ceil(n / t) * t;
  const big = batch * Math.ceil(m / 128) * Math.ceil(n / 128);
  return big < webgpuMatMul.smallTileBelow || padded(128) > 1.25 * padded(64) ? 64 : 128;
}

/** The plan for a product this program runs, or undefined to delegate (the reason is not needed: tfjs runs it). */
export function planTiled(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: { transposeA?: boolean; transposeB?: boolean; activation?: string | null },
  extra: { bias?: tf.TensorInfo | null; preluActivationWeights?: tf.TensorInfo | null },
  limits: { maxComputeWorkgroupsPerDimension: number; maxComputeWorkgroupStorageSize: number },
): TiledPlan | undefined {
  if (!webgpuMatMul.tiled) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const activation = attrs.activation ?? 'linear';
  if (activation !== 'linear' && activation !== 'relu') return undefined;
  if (extra.preluActivationWeights) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const transposeA = !!attrs.transposeA;
  const transposeB = !!attrs.transposeB;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return undefined; // tfjs' kernel raises its own error
  if (m < 64 || (m < webgpuMatMul.minRows && n < webgpuMatMul.wideN) || n === 0 || k === 0) return undefined;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  if (!modBroadcastable(outerA, outer) || !modBroadcastable(outerB, outer)) return undefined;
  const batch = size(outer);
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  const tile = webgpuMatMul.tile === 'auto' ? autoTile(batch, m, n) : webgpuMatMul.tile;
  if (batch > maxGrid || Math.ceil(m / tile) > maxGrid || Math.ceil(n / tile) > maxGrid) return undefined;
  // workgroup memory: 2 operands × 2 buffers × tileK × tile floats
  const bytes = (bk: number) => 16 * bk * tile;
  const tileK = webgpuMatMul.tileK === 16 && limits.maxComputeWorkgroupStorageSize >= bytes(16) ? 16 : 8;
  if (limits.maxComputeWorkgroupStorageSize < bytes(tileK)) return undefined;
  let bias: tf.TensorInfo | undefined;
  if (extra.bias) {
    const s = extra.bias.shape;
    // N values broadcast over every row: [N], [1, N], …; any other bias shape goes to tfjs
    if (extra.bias.dtype !== 'float32' || size(s) !== n || (s.length > 0 && s[s.length - 1] !== n)) return undefined;
    bias = extra.bias;
  }
  const batchA = size(outerA);
  const batchB = size(outerB);
  return {
    m,
    n,
    k,
    batch,
    a3d: transposeA ? [batchA, k, m] : [batchA, m, k],
    b3d: transposeB ? [batchB, n, k] : [batchB, k, n],
    outShape: [...outer, m, n],
    transposeA,
    transposeB,
    bias,
    relu: activation === 'relu',
    tileK,
    tile,
  };
}

/** The WGSL program, in tfjs-backend-webgpu's program interface (webgpu_program.ts). */
export class TiledMatMulProgram {
  variableNames: string[] = ['A', 'B'];
  variableComponents: number[];
  outputComponent: number;
  outputShape: number[];
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = 'dimM : i32, dimN : i32, dimK : i32,';
  shaderKey: string;
  private readonly p: TiledPlan;
  private readonly vecA: boolean;
  private readonly vecB: boolean;
  private readonly vecOut: boolean;

  constructor(p: TiledPlan) {
    this.p = p;
    // an operand is read as vec4 when its rows (its last dimension) are a multiple of 4 floats
    this.vecA = (p.transposeA ? p.m : p.k) % 4 === 0;
    this.vecB = (p.transposeB ? p.k : p.n) % 4 === 0;
    this.vecOut = p.n % 4 === 0;
    this.variableComponents = [this.vecA ? 4 : 1, this.vecB ? 4 : 1];
    if (p.bias) {
      this.variableNames.push('bias');
      this.variableComponents.push(1);
    }
    this.outputComponent = this.vecOut ? 4 : 1;
    this.outputShape = [p.batch, p.m, p.n];
    this.workgroupSize = [p.tile / 8, p.tile / 8, 1];
    this.dispatch = [Math.ceil(p.n / p.tile), Math.ceil(p.m / p.tile), p.batch];
    const fit = [p.m % p.tile === 0, p.n % p.tile === 0, p.k % p.tileK === 0].map(Number).join('');
    this.shaderKey = `headlensTiledMatMul_${p.tile}_${p.transposeA}_${p.transposeB}_${this.variableComponents.join('')}_${this.outputComponent}_${!!p.bias}_${p.relu}_${p.tileK}_${fit}`;
  }

  getUserCode(): string {
    const { transposeA, transposeB, tileK: BK, bias, relu } = this.p;
    const T = this.p.tile; // output tile side
    const W = T / 8; // threads a side
    const HALF = T / 2; // a thread's second 4 rows (columns) start here
    const V = T / 4; // vec4s in one k-row of a staged slice
    const fitM = this.p.m % T === 0;
    const fitN = this.p.n % T === 0;
    const fitK = this.p.k % BK === 0;
    const slice = BK * V; // vec4s in one staged slice of A (and of B)
    const perThread = slice / (W * W); // vec4s of A (and of B) each thread moves per slice
    const ROWS = 8;

    // one vec4 of the operand `X` (A or B) from global memory: `outer` indexes its rows in the tile (m or n),
    // `inner` the K position; `kMajor`: the operand is stored [k][outer] (A transposed, B not)
    const globalRead = (X: 'A' | 'B', kMajor: boolean, vec: boolean, fitOuter: boolean): string => {
      const dimOuter = X === 'A' ? 'uniforms.dimM' : 'uniforms.dimN';
      const rowLen = kMajor ? dimOuter : 'uniforms.dimK';
      const bx = X === 'A' ? 'bA' : 'bB';
      // element (r, c) of the stored [rows, rowLen] matrix, r = k if kMajor else outer
      const inRange = (r: string, c: string) => {
        const conds: string[] = [];
        if (kMajor) {
          if (!fitK) conds.push(`${r} < uniforms.dimK`);
          if (!fitOuter) conds.push(`${c} < ${dimOuter}`);
        } else {
          if (!fitOuter) conds.push(`${r} < ${dimOuter}`);
          if (!fitK) conds.push(`${c} < uniforms.dimK`);
        }
        return conds.length ? conds.join(' && ') : 'true';
      };
      const rows = kMajor ? 'uniforms.dimK' : dimOuter;
      if (vec) {
        return `
  fn read${X}(${bx}: i32, r: i32, c: i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (${inRange('r', 'c')}) {
      v = ${X}[((${bx} * ${rows} + r) * ${rowLen} + c) / 4];
    }
    return v;
  }`;
      }
      return `
  fn read${X}(${bx}: i32, r: i32, c: i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    let base = (${bx} * ${rows} + r) * ${rowLen} + c;
    for (var i = 0; i < 4; i++) {
      if (${inRange('r', 'c + i')}) {
        v[i] = ${X}[base + i];
      }
    }
    return v;
  }`;
    };
    // which vec4 of the slice a thread moves: q in [0, BK·V); kMajor: (k = q / V, outer = 4·(q % V)),
    // else (outer = q / (BK/4), k = 4·(q % (BK/4)))
    const load = (X: 'A' | 'B', kMajor: boolean, tileStart: string) => {
      const lines: string[] = [];
      for (let j = 0; j < perThread; j++) {
        const q = `(tid + ${j * W * W})`;
        if (kMajor) lines.push(`    reg${X}${j} = read${X}(b${X}, kBase + ${q} / ${V}, ${tileStart} + 4 * (${q} % ${V}));`);
        else lines.push(`    reg${X}${j} = read${X}(b${X}, ${tileStart} + ${q} / ${BK / 4}, kBase + 4 * (${q} % ${BK / 4}));`);
      }
      return lines.join('\n');
    };
    const store = (X: 'A' | 'B', kMajor: boolean) => {
      const lines: string[] = [];
      for (let j = 0; j < perThread; j++) {
        const q = `(tid + ${j * W * W})`;
        if (kMajor) lines.push(`    ${X}s[buf + ${q}] = reg${X}${j};`);
        else {
          // transposed into k-major: the 4 K values of one outer index go to 4 rows of the slice
          lines.push(`    {
      let o = ${q} / ${BK / 4};
      let kk = 4 * (${q} % ${BK / 4});
      for (var i = 0; i < 4; i++) {
        ${X}s[buf + (kk + i) * ${V} + o / 4][o % 4] = reg${X}${j}[i];
      }
    }`);
        }
      }
      return lines.join('\n');
    };
    const aKMajor = transposeA; // A is [k, m] when transposed
    const bKMajor = !transposeB; // B is [k, n] unless transposed

    const accDecl: string[] = [];
    const fmas: string[] = [];
    for (let r = 0; r < ROWS; r++) for (let h = 0; h < 2; h++) accDecl.push(`var acc${r}${h} = vec4<f32>(0.0);`);
    const comps = ['x', 'y', 'z', 'w'];
    for (let r = 0; r < ROWS; r++) {
      const a = r < 4 ? `a0.${comps[r]}` : `a1.${comps[r - 4]}`;
      for (let h = 0; h < 2; h++) fmas.push(`acc${r}${h} = fma(vec4<f32>(${a}), b${h}, acc${r}${h});`);
    }
    const writes: string[] = [];
    for (let r = 0; r < ROWS; r++) {
      const row = r < 4 ? `rowBase + ${r}` : `rowBase + ${HALF - 4 + r}`; // rows 4ty+r and HALF+4ty+(r-4)
      writes.push(`  {
    let row = ${row};
    ${fitM ? '' : 'if (row < uniforms.dimM) {'}
      writeOut(batch, row, colBase, acc${r}0);
      writeOut(batch, row, colBase + ${HALF}, acc${r}1);
    ${fitM ? '' : '}'}
  }`);
    }
    const epilogue = (v: string, col: string) => {
      const lines: string[] = [];
      if (bias) {
        lines.push(
          fitN && this.vecOut
            ? `${v} = ${v} + vec4<f32>(bias[${col}], bias[${col} + 1], bias[${col} + 2], bias[${col} + 3]);`
            : `for (var i = 0; i < 4; i++) { if (${col} + i < uniforms.dimN) { ${v}[i] = ${v}[i] + bias[${col} + i]; } }`,
        );
      }
      if (relu) lines.push(`${v} = max(${v}, vec4<f32>(0.0));`);
      return lines.join('\n    ');
    };
    const writeOut = this.vecOut
      ? `
  fn writeOut(batch: i32, row: i32, col: i32, value: vec4<f32>) {
    ${fitN ? '' : 'if (col >= uniforms.dimN) { return; }'}
    var v = value;
    ${epilogue('v', 'col')}
    result[((batch * uniforms.dimM + row) * uniforms.dimN + col) / 4] = v;
  }`
      : `
  fn writeOut(batch: i32, row: i32, col: i32, value: vec4<f32>) {
    var v = value;
    ${epilogue('v', 'col')}
    let base = (batch * uniforms.dimM + row) * uniforms.dimN + col;
    for (var i = 0; i < 4; i++) {
      if (col + i < uniforms.dimN) { result[base + i] = v[i]; }
    }
  }`;

    return `
  // two staged slices of each operand, k-major: [buffer][k][tile / 4] vec4
  var<workgroup> As : array<vec4<f32>, ${2 * slice}>;
  var<workgroup> Bs : array<vec4<f32>, ${2 * slice}>;
${globalRead('A', aKMajor, this.vecA, fitM)}
${globalRead('B', bKMajor, this.vecB, fitN)}
${writeOut}

  fn main() {
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let tid = i32(localIndex);
    let batch = i32(workgroupId.z);
    let bA = batch % uniforms.aShape[0];
    let bB = batch % uniforms.bShape[0];
    let mStart = i32(workgroupId.y) * ${T};
    let nStart = i32(workgroupId.x) * ${T};
    let numTiles = (uniforms.dimK + ${BK - 1}) / ${BK};
    ${accDecl.join('\n    ')}
    ${Array.from({ length: perThread }, (_, j) => `var regA${j}: vec4<f32>; var regB${j}: vec4<f32>;`).join('\n    ')}

    var kBase = 0;
${load('A', aKMajor, 'mStart')}
${load('B', bKMajor, 'nStart')}
    var buf = 0;
${store('A', aKMajor)}
${store('B', bKMajor)}
    workgroupBarrier();

    for (var t = 0; t < numTiles; t++) {
      let cur = (t & 1) * ${slice};
      let hasNext = t + 1 < numTiles;
      if (hasNext) {
        kBase = (t + 1) * ${BK};
${load('A', aKMajor, 'mStart')}
${load('B', bKMajor, 'nStart')}
      }
${Array.from({ length: BK }, (_, k) => `      {
        let a0 = As[cur + ${k * V} + ty];
        let a1 = As[cur + ${k * V + W} + ty];
        let b0 = Bs[cur + ${k * V} + tx];
        let b1 = Bs[cur + ${k * V + W} + tx];
        ${fmas.join('\n        ')}
      }`).join('\n')}
      if (hasNext) {
        buf = ${slice} - cur;
${store('A', aKMajor)}
${store('B', bKMajor)}
      }
      workgroupBarrier();
    }

    let rowBase = mStart + 4 * ty;
    let colBase = nStart + 4 * tx;
${writes.join('\n')}
  }
`;
  }
}

let registered = false;

/** Runs a planned product; returns the output in the shape tfjs' kernel would give. */
export function runTiled(p: TiledPlan, a: tf.TensorInfo, b: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const be = backend as WebGPUBackendLike;
  const a3 = reshapeView(a, p.a3d, backend);
  const b3 = reshapeView(b, p.b3d, backend);
  const inputs = [a3, b3];
  if (p.bias) inputs.push(p.bias);
  const program = new TiledMatMulProgram(p);
  const dims = [
    { type: 'int32', data: [p.m] },
    { type: 'int32', data: [p.n] },
    { type: 'int32', data: [p.k] },
  ];
  const out = be.runWebGPUProgram(program, inputs, 'float32', dims);
  const shaped = reshapeView(out, p.outShape, backend);
  for (const t of [a3, b3, out]) be.disposeData(t.dataId);
  return shaped;
}

/**
 * Replaces the webgpu backend's BatchMatMul and _FusedMatMul with wrappers that run the tiled program where it
 * applies and the previously registered kernel elsewhere. Once per process; a no-op without the webgpu kernels.
 */
export function registerTiledMatMul(): boolean {
  if (registered) return true;
  const batchMatMul = tf.getKernel('BatchMatMul', 'webgpu');
  const fusedMatMul = tf.getKernel('_FusedMatMul', 'webgpu');
  if (!batchMatMul || !fusedMatMul || !tf.getKernel('Reshape', 'webgpu')) return false;
  registered = true;
  const origBatch = batchMatMul.kernelFunc as KernelFunc;
  const origFused = fusedMatMul.kernelFunc as KernelFunc;
  const limitsOf = (backend: unknown) => (backend as WebGPUBackendLike).device.limits;
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  tf.registerKernel({
    ...batchMatMul,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      const gemv = webgpuMatMul.tiled ? planGemv(a, b, attrs, {}, webgpuMatMul, limitsOf(args.backend)) : undefined;
      if (gemv) return runGemv(gemv, a, b, args.backend);
      const plan = planTiled(a, b, attrs, {}, limitsOf(args.backend));
      return plan ? runTiled(plan, a, b, args.backend) : origBatch(args as Parameters<KernelFunc>[0]);
    },
  });
  tf.unregisterKernel('_FusedMatMul', 'webgpu');
  tf.registerKernel({
    ...fusedMatMul,
    kernelFunc: (args) => {
      const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
      const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string | null; leakyreluAlpha?: number };
      const gemv = webgpuMatMul.tiled ? planGemv(a!, b!, attrs, { bias, preluActivationWeights }, webgpuMatMul, limitsOf(args.backend)) : undefined;
      if (gemv) return runGemv(gemv, a!, b!, args.backend);
      const plan = planTiled(a!, b!, attrs, { bias, preluActivationWeights }, limitsOf(args.backend));
      return plan ? runTiled(plan, a!, b!, args.backend) : origFused(args as Parameters<KernelFunc>[0]);
    },
  });
  return true;
}
