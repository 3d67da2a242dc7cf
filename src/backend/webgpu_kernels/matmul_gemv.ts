/**
 * A float32 matrix product for decoding steps on tfjs-backend-webgpu: x [M, K] · W [K, N] (+ bias, activation) for
 * M of a few rows (batch × new positions), the float32 sibling of matMul16 (matmul16.ts).
 *
 * Why: such a product reads each weight once and does 2·M flops with it, so it is bound by reading W (ideal about
 * bytes(W) / 3 TB/s on an H100). tfjs 4.22's MatMulPackedProgram tiles the output 32×32 with 4×4 outputs a thread,
 * which at M ≤ 8 leaves most threads idle; on an H100 the 225 MatMulPackedProgram runs of a llama-7b decode step took
 * 35.7 ms of GPU time (bench/results/h100-2026-12-07-s3/dprof-llama-7b.log) for its 27 GB of float32 weights: about
 * 0.75 TB/s, a quarter of the card's bandwidth.
 *
 * Layout (W row-major [K, N]): a workgroup of `lanes` × `slices` = 256 threads owns 4·lanes consecutive columns
 * (8·lanes with `gemvGroups` 2: a lane then owns two vec4 groups, lanes apart, and reads x once for both).
 * Each lane owns 4 columns; the slices split K in quads (slice s takes k = 4q … 4q+3 for q ≡ s mod slices). Per
 * quad a thread reads 4 vec4 of W (rows k … k+3 of its 4 columns: the lanes of one slice read 16·lanes consecutive
 * bytes of each row) and one vec4 of x per row, then does 16 multiply-adds a row. Partial sums meet in workgroup
 * memory (wgslSliceSum, program.ts, shared with matMul16); slice 0 adds the bias, applies the activation and
 * writes. Rows of x come in blocks of up to 8 (the shader specialised to 1, 2, 4 or 8 rows, as matMul16's), each
 * block one workgroup row of the dispatch, so W is read once per 8 rows. N not a multiple of 4 reads and writes
 * scalars with bounds; K not a multiple of 4 zero-fills the last quad.
 *
 * Integration: the BatchMatMul / _FusedMatMul wrappers of registerTiledMatMul (matmul_tiled.ts) ask planGemv first:
 * float32 products of at most `webgpuMatMul.gemvMaxRows` output rows (0 turns it off), W not transposed and not
 * batched (x may carry leading dimensions: they fold into rows; transposeA only without them), bias of N values,
 * activation linear, relu, relu6, elu, sigmoid or leakyrelu (tfjs' formulas). Everything else — transposeB (the
 * model's weights are never transposed: mlp.ts `linear`, the attention projections and the unembedding all call
 * x·W; the attention's q·kᵀ is a batched product), PReLU, a batched W, non-float32 — goes on to the tiled kernel's
 * checks and then tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { rowsPerWorkgroup } from './matmul16.js';
import { reshapeView, wgslSliceSum } from './program.js';

/** The activations of _FusedMatMul this program applies (prelu, which needs a weights tensor, goes to tfjs). */
export type GemvActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';
const ACTIVATIONS: readonly string[] = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'];

/** What one product needs. */
export interface GemvPlan {
  /** output rows: x's leading dimensions folded into its rows */
  m: number;
  k: number;
  n: number;
  /** x stored [K, M] (then x has no leading dimensions) */
  transposeA: boolean;
  outShape: number[];
  bias?: tf.TensorInfo;
  activation: GemvActivation;
  alpha: number;
  /** lanes of 4 columns a workgroup (its slices: 256 / lanes) */
  lanes: 4 | 8 | 16;
  /** vec4 column groups a thread: 1, or 2 (lane l also takes group l + lanes: x read once for 8 columns) */
  groups: 1 | 2;
}

/** The settings planGemv reads (webgpuMatMul's fields of the same names). */
export interface GemvSettings {
  gemvMaxRows: number;
  gemvLanes: 4 | 8 | 16;
  gemvGroups: 1 | 2;
}

const size = (shape: number[]) => shape.reduce((s, d) => s * d, 1);
const THREADS = 256;
/** Workgroup memory for the slice sums: 512 vec4 (8 KiB), half of WebGPU's guaranteed 16 KiB. */
const RED_CAP = 512;

/** The plan for a product this program runs, or undefined to leave it to the tiled kernel's checks and tfjs. */
export function planGemv(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: { transposeA?: boolean; transposeB?: boolean; activation?: string | null; leakyreluAlpha?: number },
  extra: { bias?: tf.TensorInfo | null; preluActivationWeights?: tf.TensorInfo | null },
  settings: GemvSettings,
  limits: { maxComputeWorkgroupsPerDimension: number },
): GemvPlan | undefined {
  if (settings.gemvMaxRows <= 0) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const activation = attrs.activation ?? 'linear';
  if (!ACTIVATIONS.includes(activation) || extra.preluActivationWeights) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2 || attrs.transposeB) return undefined;
  const transposeA = !!attrs.transposeA;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  if (size(outerB) !== 1 || (transposeA && size(outerA) !== 1)) return undefined;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const m = size(outerA) * (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]);
  const [kb, n] = b.shape.slice(-2);
  if (k !== kb || m === 0 || n === 0 || k === 0 || m > settings.gemvMaxRows) return undefined;
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined;
  }
  const lanes = settings.gemvLanes;
  if (![4, 8, 16].includes(lanes)) throw new HeadlensError(`webgpuMatMul.gemvLanes must be 4, 8 or 16, got ${lanes}`, 'set it to 4 (the default), 8 or 16');
  const groups = settings.gemvGroups;
  if (groups !== 1 && groups !== 2) throw new HeadlensError(`webgpuMatMul.gemvGroups must be 1 or 2, got ${groups}`, 'set it to 1 (the default) or 2');
  const max = limits.maxComputeWorkgroupsPerDimension;
  if (Math.ceil(n / (4 * lanes * groups)) > max || Math.ceil(m / 8) > max) return undefined;
  let bias: tf.TensorInfo | undefined;
  if (extra.bias) {
    const s = extra.bias.shape;
    if (extra.bias.dtype !== 'float32' || size(s) !== n || (s.length > 0 && s[s.length - 1] !== n)) return undefined;
    bias = extra.bias;
  }
  const mOut = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  return { m, k, n, transposeA, outShape: [...outer, mOut, n], bias, activation: activation as GemvActivation, alpha: attrs.leakyreluAlpha ?? 0, lanes, groups };
}

/** WGSL: tfjs 4.22's formula for each activation (unary_op_util.ts), on a vec4. */
function activationFn(activation: GemvActivation): string {
  const v0 = 'vec4<f32>(0.0)';
  const body: Record<GemvActivation, string> = {
    linear: 'a',
    relu: `select(a, ${v0}, a < ${v0})`,
    relu6: `clamp(a, ${v0}, vec4<f32>(6.0))`,
    elu: `select(exp(a) - vec4<f32>(1.0), a, a >= ${v0})`,
    sigmoid: '1.0 / (1.0 + exp(-1.0 * a))',
    leakyrelu: `select(a, uniforms.alpha * a, a < ${v0})`,
  };
  return `fn act(a : vec4<f32>) -> vec4<f32> { return ${body[activation]}; }`;
}

/** The WGSL program, in tfjs-backend-webgpu's program interface; its class name tells it apart in counts. */
export class GemvMatMulProgram {
  variableNames: string[] = ['X', 'W'];
  variableComponents: number[];
  outputComponent: number;
  outputShape: number[];
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = 'M : i32, K : i32, N : i32, alpha : f32,';
  shaderKey: string;
  private readonly p: GemvPlan;
  private readonly rows: number;
  private readonly vecX: boolean;
  private readonly vecW: boolean;
  private readonly fitK: boolean;

  constructor(p: GemvPlan) {
    this.p = p;
    this.rows = rowsPerWorkgroup(Math.min(p.m, 8));
    this.vecX = !p.transposeA && p.k % 4 === 0;
    this.vecW = p.n % 4 === 0;
    this.fitK = p.k % 4 === 0;
    this.variableComponents = [this.vecX ? 4 : 1, this.vecW ? 4 : 1];
    if (p.bias) {
      this.variableNames.push('bias');
      this.variableComponents.push(1);
    }
    this.outputComponent = this.vecW ? 4 : 1;
    this.outputShape = [p.m, p.n];
    this.workgroupSize = [p.lanes, THREADS / p.lanes, 1];
    this.dispatch = [Math.ceil(p.n / (4 * p.lanes * p.groups)), Math.ceil(p.m / this.rows), 1];
    this.shaderKey = `headlensGemv_${p.lanes}_${p.groups}_${this.rows}_${this.vecX}_${this.vecW}_${this.fitK}_${p.transposeA}_${!!p.bias}_${p.activation}`;
  }

  getUserCode(): string {
    const { lanes, bias, activation, transposeA } = this.p;
    const slices = THREADS / lanes;
    const ROWS = this.rows;
    const { vecX, vecW, fitK } = this;
    // x[row, 4q … 4q+3], zero past K
    const xQuad = vecX
      ? `fn xQuad(row : i32, q : i32) -> vec4<f32> { return X[row * (uniforms.K / 4) + q]; }`
      : `fn xQuad(row : i32, q : i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var i = 0; i < 4; i++) {
      let k = 4 * q + i;
      if (k < uniforms.K) { v[i] = X[${transposeA ? 'k * uniforms.M + row' : 'row * uniforms.K + k'}]; }
    }
    return v;
  }`;
    // W[k, 4j … 4j+3], zero past K and N
    const wRow = vecW
      ? `fn wRow(k : i32, j : i32) -> vec4<f32> {
    ${fitK ? '' : 'if (k >= uniforms.K) { return vec4<f32>(0.0); }'}
    return W[k * (uniforms.N / 4) + j];
  }`
      : `fn wRow(k : i32, j : i32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k < uniforms.K) {
      for (var i = 0; i < 4; i++) {
        if (4 * j + i < uniforms.N) { v[i] = W[k * uniforms.N + 4 * j + i]; }
      }
    }
    return v;
  }`;
    const biasAdd = !bias
      ? ''
      : vecW
        ? 'v = v + vec4<f32>(bias[c], bias[c + 1], bias[c + 2], bias[c + 3]);'
        : 'for (var i = 0; i < 4; i++) { if (c + i < uniforms.N) { v[i] = v[i] + bias[c + i]; } }';
    const write = vecW ? 'result[row * (uniforms.N / 4) + j] = v;' : 'for (var i = 0; i < 4; i++) { if (c + i < uniforms.N) { result[row * uniforms.N + c + i] = v[i]; } }';
    const G = this.p.groups;
    // acc[g·ROWS + r]: row r of the thread's column group g (groups j + g·lanes)
    const loads: string[] = [];
    for (let g = 0; g < G; g++) for (let u = 0; u < 4; u++) loads.push(`let w${g}${u} = wRow(k + ${u}, jr${g});`);
    const fmas: string[] = [];
    for (let r = 0; r < ROWS; r++) {
      const chain = (g: number) => {
        const a = `acc[${g * ROWS + r}]`;
        return `${a} = fma(vec4<f32>(x.x), w${g}0, fma(vec4<f32>(x.y), w${g}1, fma(vec4<f32>(x.z), w${g}2, fma(vec4<f32>(x.w), w${g}3, ${a}))));`;
      };
      fmas.push(`{
        let x = xQuad(xr${r}, q);
        ${Array.from({ length: G }, (_, g) => chain(g)).join('\n        ')}
      }`);
    }
    const sum = wgslSliceSum('vec4<f32>', lanes, slices, G * ROWS, RED_CAP);
    const epilogue = (g: number) => `{
      let j = j${g};
      let c = 4 * j;
      if (j < groups) {
        ${Array.from({ length: ROWS }, (_, r) => `if (row0 + ${r} < uniforms.M) {
          let row = row0 + ${r};
          var v = acc[${g * ROWS + r}];
          ${biasAdd}
          v = act(v);
          ${write}
        }`).join('\n        ')}
      }
    }`;
    return `
  ${sum.decl}
  ${xQuad}
  ${wRow}
  ${activationFn(activation)}

  fn main() {
    let lane = i32(localId.x);
    let slice = i32(localId.y);
    let groups = (uniforms.N + 3) / 4; // vec4 column groups
    // past the last column a lane reads the last group again (jr) and writes nothing
    ${Array.from({ length: G }, (_, g) => `let j${g} = i32(workgroupId.x) * ${lanes * G} + ${g * lanes} + lane;
    let jr${g} = min(j${g}, groups - 1);`).join('\n    ')}
    let row0 = i32(workgroupId.y) * ${ROWS};
    ${Array.from({ length: ROWS }, (_, r) => `let xr${r} = min(row0 + ${r}, uniforms.M - 1);`).join('\n    ')}
    var acc : array<vec4<f32>, ${G * ROWS}>; // zero-initialised
    let quads = (uniforms.K + 3) / 4;
    for (var q = slice; q < quads; q += ${slices}) {
      let k = 4 * q;
      ${loads.join('\n      ')}
      ${fmas.join('\n      ')}
    }
    ${sum.code}
    if (slice == 0) {
      ${Array.from({ length: G }, (_, g) => epilogue(g)).join('\n      ')}
    }
  }
`;
  }
}

interface WebGPUBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Runs a planned product; returns the output in the shape tfjs' kernel would give. */
export function runGemv(p: GemvPlan, a: tf.TensorInfo, b: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const be = backend as WebGPUBackendLike;
  const x = reshapeView(a, p.transposeA ? [p.k, p.m] : [p.m, p.k], backend);
  const w = reshapeView(b, [p.k, p.n], backend);
  const inputs = [x, w];
  if (p.bias) inputs.push(p.bias);
  const uniforms = [
    { type: 'int32', data: [p.m] },
    { type: 'int32', data: [p.k] },
    { type: 'int32', data: [p.n] },
    { type: 'float32', data: [p.alpha] },
  ];
  const out = be.runWebGPUProgram(new GemvMatMulProgram(p), inputs, 'float32', uniforms);
  const shaped = reshapeView(out, p.outShape, backend);
  for (const t of [x, w, out]) be.disposeData(t.dataId);
  return shaped;
}
