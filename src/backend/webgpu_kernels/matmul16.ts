/**
 * 16-bit weights on WebGPU, computed in float32. tfjs has no float16 dtype, so a weight matrix W [K, N] is kept
 * as an int32 tensor [K, ⌈N/2⌉] whose element (k, j) holds W[k, 2j] in its low 16 bits and W[k, 2j+1] in its high
 * 16 bits (zero past an odd N): half the bytes of float32. Three programs of tfjs-backend-webgpu's program API:
 *   pack16      float32 [K, N] → packed; f16 through WGSL's pack2x16float, bf16 by rounding to nearest even
 *               (exact for values that already are f16 / bf16, as a 16-bit checkpoint's are);
 *   unpack16    packed → float32 [K, N] (unpack2x16float for f16; a 16-bit shift and bitcast for bf16), for
 *               prefill-sized products and for analyses that ask for a weight;
 *   matMul16    x [M, K] · W + bias [N] → [M, N] reading the packed weights directly. Made for decoding (M of
 *               1–8 rows), which is bound by reading the weights: half the bytes read. Two kernels:
 *               the vector kernel (N a multiple of 8, K of 4: every linear layer of the GPT-2, Pythia and Llama
 *               shapes), on the float32 decode matmul's pattern (matmul_gemv.ts): a lane reads a vec4 of packed
 *               pairs (8 columns) per row of W, the slices of a workgroup split K in quads; and the pair kernel
 *               for other shapes (a thread reads one u32, two columns, per row). Partial sums meet in workgroup
 *               memory (wgslSliceSum, program.ts). Each block of up to 8 rows of x is one workgroup row of the
 *               dispatch, the shader specialised to the block's row count.
 *               The vector kernel also takes what a decoding step would otherwise dispatch around the product
 *               (MatMul16Epilogue): a norm of x (or of x + addend) before it, a gated MLP's second weight and
 *               activation, or the residual stream's sum after it. The model uses them where no hook reads the
 *               activations they skip (mlp.ts, attention.ts, transformer.ts).
 * Neither f16 shader arithmetic (the shader-f16 feature) nor any adapter feature is needed: unpack2x16float and
 * bitcast are core WGSL, and all arithmetic is float32.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actExpr, type FusedActivation } from './activation.js';
import type { NormType } from './norm.js';
import { runProgram, WGSL_MATH, wgslSliceSum, wgslWorkgroupReduce, type WebGPUProgram } from './program.js';

export type Format16 = 'f16' | 'bf16';

/** The parts of tfjs-backend-webgpu 4.22's program interface (webgpu_program.d.ts) these programs fill in. */
interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  getUserCode(): string;
}

interface ProgramBackend {
  runWebGPUProgram(program: Program, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: { type: string; data: number[] }[]): tf.TensorInfo;
}

const MAX_WORKGROUPS = 65535;

function backend(what: string): ProgramBackend {
  if (tf.getBackend() !== 'webgpu') {
    throw new HeadlensError(`${what} runs on the webgpu backend only (running: ${tf.getBackend()})`, 'start the webgpu backend (initBackend({ backend: "webgpu" })), or keep float32 weights');
  }
  return tf.backend() as unknown as ProgramBackend;
}

function run(what: string, program: Program, inputs: tf.Tensor[], dtype: tf.DataType, uniforms: number[]): tf.Tensor {
  // one entry per scalar: tfjs lays an entry of 3 values out as a 16-byte-aligned vec3, not as 3 scalars
  const info = backend(what).runWebGPUProgram(program, inputs, dtype, uniforms.map((v) => ({ type: 'int32', data: [v] })));
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** WGSL: one packed u32 → its two values as float32. */
function unpackFn(format: Format16): string {
  return format === 'f16'
    ? 'fn unpackPair(u : u32) -> vec2<f32> { return unpack2x16float(u); }'
    : 'fn unpackPair(u : u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(u << 16u), bitcast<f32>(u & 0xffff0000u)); }';
}

/** WGSL: two float32 values → one packed u32. */
function packFn(format: Format16): string {
  if (format === 'f16') return 'fn packPair(a : f32, b : f32) -> u32 { return pack2x16float(vec2<f32>(a, b)); }';
  // round to nearest, ties to even, on the bits; NaN stays NaN (its top mantissa bit set)
  return `
    fn bf16Bits(x : f32) -> u32 {
      let u = bitcast<u32>(x);
      if ((u & 0x7fffffffu) > 0x7f800000u) { return (u >> 16u) | 0x40u; }
      return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
    }
    fn packPair(a : f32, b : f32) -> u32 { return bf16Bits(a) | (bf16Bits(b) << 16u); }`;
}

/** A flat program: one thread per output element, tfjs' global index (tfjs reshapes a dispatch over 65,535). */
function flat(outputShape: number[], key: string, variableNames: string[], body: string): Program {
  const size = outputShape.reduce((a, b) => a * b, 1);
  const wg = 256;
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(size / wg), 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'K : i32, N : i32, Np : i32,',
    size: true,
    getUserCode: () => body,
  };
}

function checkMatrix(what: string, t: tf.Tensor, dtype: tf.DataType): void {
  if (t.rank !== 2 || t.dtype !== dtype) throw new HeadlensError(`${what}: expected a 2-d ${dtype} tensor, got ${t.dtype} [${t.shape}]`);
}

/** float32 [K, N] → packed int32 [K, ⌈N/2⌉]. Caller owns the result. */
export function pack16(W: tf.Tensor2D, format: Format16): tf.Tensor2D {
  checkMatrix('pack16', W, 'float32');
  const [K, N] = W.shape;
  const Np = Math.ceil(N / 2);
  const body = `
    ${packFn(format)}
    fn main(index : i32) {
      if (index < uniforms.size) {
        let k = index / uniforms.Np;
        let j = index - k * uniforms.Np;
        let c = 2 * j;
        let a = W[k * uniforms.N + c];
        var b = 0.0;
        if (c + 1 < uniforms.N) { b = W[k * uniforms.N + c + 1]; }
        result[index] = bitcast<i32>(packPair(a, b));
      }
    }`;
  return run('16-bit weights', flat([K, Np], `headlensPack16_${format}`, ['W'], body), [W], 'int32', [K, N, Np]) as tf.Tensor2D;
}

/** packed int32 [K, ⌈N/2⌉] → float32 [K, N]. Caller owns the result. */
export function unpack16(P: tf.Tensor2D, N: number, format: Format16): tf.Tensor2D {
  checkMatrix('unpack16', P, 'int32');
  const [K, Np] = P.shape;
  if (Np !== Math.ceil(N / 2)) throw new HeadlensError(`unpack16: ${N} columns need ${Math.ceil(N / 2)} packed pairs, got [${P.shape}]`);
  const body = `
    ${unpackFn(format)}
    fn main(index : i32) {
      if (index < uniforms.size) {
        let k = index / uniforms.N;
        let c = index - k * uniforms.N;
        let pair = unpackPair(bitcast<u32>(P[k * uniforms.Np + c / 2]));
        result[index] = select(pair.x, pair.y, (c & 1) == 1);
      }
    }`;
  return run('16-bit weights', flat([K, N], `headlensUnpack16_${format}`, ['P'], body), [P], 'float32', [K, N, Np]) as tf.Tensor2D;
}

/**
 * Threads of a workgroup of the pair kernel: 16 column pairs × 16 slices of K. A warp of 32 then reads two 64-byte
 * runs of W (whole 32-byte sectors), and a 4096-wide output has 128 workgroups, enough to occupy every
 * multiprocessor of an H100 (132), where 32 pairs a workgroup would leave half of them idle at one row.
 */
const PAIRS = 16;
const SLICES = 16;
/** Threads of a workgroup of the vector kernel (lanes × slices). */
const THREADS = 256;
/** Workgroup memory for the vector kernel's slice sums: 512 vec4 (8 KiB), as the float32 decode matmul's. */
const RED_CAP = 512;

/**
 * Settings of the packed decode matmul. `lanes`: lanes of 8 columns a workgroup in the vector kernel (its slices:
 * 256 / lanes); 0 runs the pair kernel for every shape. The vector kernel takes N a multiple of 8 and K a multiple
 * of 4 (every linear layer of GPT-2, Pythia and Llama shapes); other shapes take the pair kernel.
 */
export const matmul16Options: { lanes: 0 | 4 | 8 | 16 } = { lanes: 4 };

/** Rows of x a workgroup row computes: the shader is specialised to 1, 2, 4 or 8, so one row wastes no arithmetic. */
export function rowsPerWorkgroup(M: number): number {
  return M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
}

/** What a product's epilogue adds to x·W + bias (vector kernel only: see vectorKernelTakes). */
export interface MatMul16Epilogue {
  /**
   * A gated MLP's two products in one pass over x: the output is act(x·W + bias) ⊙ (x·up + upBias), W the gate's
   * packed weights and `up` the linear half's (same shape and format), rounded as the two products and
   * fusedGatedActivation would round them.
   */
  gated?: { act: FusedActivation; up: tf.Tensor2D; upBias: tf.Tensor };
  /** The residual stream's sum: the output is (add[0] + add[1]) + (x·W + bias), [M, N] each, rounded as fusedAdd3. */
  add?: [tf.Tensor, tf.Tensor];
  /**
   * A norm before the product: its input is norm(x + addend) rather than x, the norm fusedNorm / fusedNormOfSum
   * computes ((x − mean) / √(mean square + eps) · w + b; RMSNorm does not centre), each workgroup reducing its
   * rows' sums itself (x is read once more: 4·K bytes a row against the weights' 2·K·N).
   */
  norm?: { type: NormType; w: tf.Tensor; b?: tf.Tensor; eps: number; addend?: tf.Tensor };
}

/** Storage buffers a shader stage may bind on every WebGPU device (maxStorageBuffersPerShaderStage's default). */
const MAX_STORAGE_BUFFERS = 8;

/** Storage buffers the vector kernel binds for an epilogue: x, W, bias, the output, and what the epilogue reads. */
function storageBuffers(e: MatMul16Epilogue): number {
  return 4 + (e.gated ? 2 : 0) + (e.add ? 2 : 0) + (e.norm ? 1 + (e.norm.addend ? 1 : 0) + (e.norm.b ? 1 : 0) : 0);
}

/**
 * Whether the vector kernel takes a product of K inputs and N outputs with `epilogue` under the current settings:
 * N a multiple of 8, K of 4, and at most 8 storage buffers bound (a gated product after a LayerNorm of a sum, with
 * its bias, would need 9).
 */
export function vectorKernelTakes(K: number, N: number, epilogue: MatMul16Epilogue = {}): boolean {
  return matmul16Options.lanes > 0 && N % 8 === 0 && K % 4 === 0 && storageBuffers(epilogue) <= MAX_STORAGE_BUFFERS;
}

/**
 * x [M, K] · W + bias → [M, N], W packed ([K, ⌈N/2⌉], see pack16), bias float32 [N]; with an epilogue (which needs
 * vectorKernelTakes(K, N)), the gated product or the residual sum instead. Any M works; it is made for small M
 * (decoding), where it reads each weight once per 8 rows. Caller owns the result.
 */
export function matMul16(x: tf.Tensor2D, P: tf.Tensor2D, bias: tf.Tensor, N: number, format: Format16, epilogue: MatMul16Epilogue = {}): tf.Tensor2D {
  checkMatrix('matMul16 x', x, 'float32');
  checkMatrix('matMul16 weights', P, 'int32');
  const [M, K] = x.shape;
  const Np = Math.ceil(N / 2);
  if (P.shape[0] !== K || P.shape[1] !== Np) throw new HeadlensError(`matMul16: x is [${x.shape}], so the packed weights must be [${K}, ${Np}] for ${N} columns; got [${P.shape}]`);
  checkBias(bias, N);
  const { gated, add } = epilogue;
  if (gated) {
    if (gated.up.dtype !== 'int32' || gated.up.shape.join() !== P.shape.join()) throw new HeadlensError(`matMul16: the gated product's second packed weight must be int32 [${P.shape}] like the first, got ${gated.up.dtype} [${gated.up.shape}]`);
    checkBias(gated.upBias, N);
  }
  for (const t of add ?? []) {
    if (t.dtype !== 'float32' || t.size !== M * N) throw new HeadlensError(`matMul16: a residual addend must be float32 with ${M}·${N} values, got ${t.dtype} [${t.shape}]`);
  }
  const { norm } = epilogue;
  if (norm) {
    for (const [t, n, what] of [[norm.w, K, 'weight'], [norm.b, K, 'bias'], [norm.addend, M * K, 'addend']] as const) {
      if (t && (t.dtype !== 'float32' || t.size !== n)) throw new HeadlensError(`matMul16: the norm's ${what} must be float32 with ${n} values, got ${t.dtype} [${t.shape}]`);
    }
  }
  backend('16-bit matmul');
  if (!vectorKernelTakes(K, N, epilogue)) {
    if (gated || add || norm) {
      throw new HeadlensError(
        `matMul16: an epilogue needs the vector kernel, which takes N a multiple of 8, K of 4 and at most ${MAX_STORAGE_BUFFERS} storage buffers (got K ${K}, N ${N}, lanes ${matmul16Options.lanes}, ${storageBuffers(epilogue)} buffers)`,
        'ask vectorKernelTakes(K, N, epilogue) first and run the plain product (or the norm) apart otherwise',
      );
    }
    return pairProduct(x, P, bias, N, format);
  }
  return vectorProduct(x, P, bias, N, format, epilogue);
}

function checkBias(bias: tf.Tensor, N: number): void {
  if (bias.size !== N || bias.dtype !== 'float32') throw new HeadlensError(`matMul16: the bias must be ${N} float32 values, got ${bias.dtype} [${bias.shape}]`);
}

function checkDispatch(dispatch: [number, number, number], M: number, K: number, N: number): void {
  if (dispatch[0] > MAX_WORKGROUPS || dispatch[1] > MAX_WORKGROUPS) {
    throw new HeadlensError(`matMul16: [${M}, ${K}]·[${K}, ${N}] needs ${dispatch[0]} × ${dispatch[1]} workgroups, more than WebGPU's ${MAX_WORKGROUPS} a dimension`, 'split the rows into smaller batches');
  }
}

/**
 * Runs a matmul program as a kernel of its own name (tf.profile lists it by that name). The inputs after x and W
 * (biases, addends, norm parameters), which the kernels index flat, are seen as 1-d (views, no copies).
 */
function runNamed(name: string, program: WebGPUProgram, inputs: tf.Tensor[], uniforms: number[], floats: number[] = []): tf.Tensor2D {
  const views = inputs.map((t, i) => (i < 2 || t.rank === 1 ? t : t.reshape([t.size])));
  try {
    const data = [...uniforms.map((v) => ({ type: 'int32' as const, data: [v] })), ...floats.map((v) => ({ type: 'float32' as const, data: [v] }))];
    return runProgram(name, program, views, data) as tf.Tensor2D;
  } finally {
    views.forEach((t, i) => t !== inputs[i] && t.dispose());
  }
}

/** Layout for tfjs' shader header: a 2-d dispatch (main() without a flat index; the programs index by workgroup). */
const LAYOUT_2D = { x: [1], y: [0] } as unknown as { x: number[] };

/**
 * The pair kernel: a workgroup of 16 × 16 threads owns 16 column pairs; its 16 rows of threads split K (thread row
 * r takes k ≡ r mod 16), each thread reads one u32 of W per k, so the 16 threads of a row read 64 consecutive
 * bytes; partial sums meet in workgroup memory (wgslSliceSum). Each block of up to 8 rows of x is one workgroup row
 * of the dispatch, the shader specialised to the block's row count. Any K and N.
 */
function pairProduct(x: tf.Tensor2D, P: tf.Tensor2D, bias: tf.Tensor, N: number, format: Format16): tf.Tensor2D {
  const [M, K] = x.shape;
  const Np = Math.ceil(N / 2);
  const ROWS = rowsPerWorkgroup(M);
  const dispatch: [number, number, number] = [Math.ceil(Np / PAIRS), Math.ceil(M / ROWS), 1];
  checkDispatch(dispatch, M, K, N);
  // the WGSL is made only when tfjs compiles the pipeline (its key is the shaderKey): not on every call
  const body = () => {
    // partial sums over the slices (program.ts), in at most 8 KiB of workgroup memory
    const sum = wgslSliceSum('vec2<f32>', PAIRS, SLICES, ROWS, 1024);
    return `
    ${unpackFn(format)}
    ${sum.decl}
    fn main() {
      let lane = i32(localId.x);
      let slice = i32(localId.y);
      let j = i32(workgroupId.x) * ${PAIRS} + lane;
      let row0 = i32(workgroupId.y) * ${ROWS};
      var acc : array<vec2<f32>, ${ROWS}>;
      for (var r = 0; r < ${ROWS}; r++) { acc[r] = vec2<f32>(0.0); }
      if (j < uniforms.Np) {
        for (var k = slice; k < uniforms.K; k += ${SLICES}) {
          let w = unpackPair(bitcast<u32>(P[k * uniforms.Np + j]));
          for (var r = 0; r < ${ROWS}; r++) {
            let row = row0 + r;
            if (row < uniforms.M) { acc[r] += X[row * uniforms.K + k] * w; }
          }
        }
      }
      ${sum.code}
      if (slice == 0 && j < uniforms.Np) {
        let c = 2 * j;
        ${Array.from({ length: ROWS }, (_, r) => `if (row0 + ${r} < uniforms.M) {
          let row = row0 + ${r};
          result[row * uniforms.N + c] = acc[${r}].x + bias[c];
          if (c + 1 < uniforms.N) { result[row * uniforms.N + c + 1] = acc[${r}].y + bias[c + 1]; }
        }`).join('\n        ')}
      }
    }`;
  };
  const program: WebGPUProgram = {
    variableNames: ['X', 'P', 'bias'],
    outputShape: [M, N],
    shaderKey: `headlensMatMul16_${format}_${ROWS}`,
    dispatchLayout: LAYOUT_2D,
    dispatch,
    workgroupSize: [PAIRS, SLICES, 1],
    uniforms: 'M : i32, K : i32, N : i32, Np : i32,',
    getUserCode: body,
  };
  return runNamed('HeadlensMatMul16', program, [x, P, bias], [M, K, N, Np]);
}

/**
 * The vector kernel, the float32 decode matmul's pattern (matmul_gemv.ts) on packed weights: a workgroup of
 * `lanes` × 256/lanes threads owns 8·lanes consecutive columns; a lane owns 8 columns, read as one vec4 of packed
 * pairs (16 bytes) per row of W, so the lanes of one slice read 16·lanes consecutive bytes of each row. The slices
 * split K in quads (slice s takes rows 4q … 4q+3 for q ≡ s mod slices): per quad a thread reads 4 vec4 of W and one
 * vec4 of x per row of x, and does 32 multiply-adds a row. Partial sums meet in workgroup memory (wgslSliceSum);
 * slice 0 adds the bias, applies the epilogue and writes two vec4 a row. A gated product reads the second weight
 * at the same places and keeps a second set of sums, so x is read once for both.
 */
function vectorProduct(x: tf.Tensor2D, P: tf.Tensor2D, bias: tf.Tensor, N: number, format: Format16, epilogue: MatMul16Epilogue): tf.Tensor2D {
  const [M, K] = x.shape;
  const { gated, add, norm } = epilogue;
  const lanes = matmul16Options.lanes;
  const ROWS = rowsPerWorkgroup(M);
  const prologue = norm ? { type: norm.type, summed: !!norm.addend, bias: !!norm.b } : undefined;
  const dispatch: [number, number, number] = [Math.ceil(N / 8 / lanes), Math.ceil(M / ROWS), 1];
  checkDispatch(dispatch, M, K, N);
  const names = ['X', 'P', 'bias', ...(gated ? ['U', 'upBias'] : []), ...(add ? ['addA', 'addB'] : []), ...(norm?.addend ? ['X2'] : []), ...(norm ? ['nw'] : []), ...(norm?.b ? ['nb'] : [])];
  const program = {
    variableNames: names,
    variableComponents: names.map(() => 4),
    outputComponent: 4,
    outputShape: [M, N],
    shaderKey: `headlensMatMul16v_${format}_${lanes}_${ROWS}_${gated ? gated.act : 'plain'}_${add ? 'add' : ''}_${prologue ? `${prologue.type}${prologue.summed ? 's' : ''}${prologue.bias ? 'b' : ''}` : ''}`,
    dispatchLayout: LAYOUT_2D,
    dispatch,
    workgroupSize: [lanes, THREADS / lanes, 1] as [number, number, number],
    uniforms: 'M : i32, K : i32, N : i32, eps : f32,',
    // made only when tfjs compiles the pipeline (keyed by shaderKey), not on every call
    getUserCode: () => vectorSource(format, lanes, ROWS, gated?.act, !!add, prologue),
  };
  const normInputs = norm ? [...(norm.addend ? [norm.addend] : []), norm.w, ...(norm.b ? [norm.b] : [])] : [];
  const inputs = [x, P, bias, ...(gated ? [gated.up, gated.upBias] : []), ...(add ?? []), ...normInputs];
  const name = `HeadlensMatMul16${norm ? 'Norm' : ''}${gated ? 'Gated' : add ? 'Add' : ''}`;
  return runNamed(name, program, inputs, [M, K, N], [norm?.eps ?? 0]);
}

/** The vector kernel's WGSL for a format, lanes, rows a workgroup row, and epilogue (act: gated). */
function vectorSource(format: Format16, lanes: number, ROWS: number, act: FusedActivation | undefined, add: boolean, norm?: { type: NormType; summed: boolean; bias: boolean }): string {
  const gated = act !== undefined;
  const slices = THREADS / lanes;
  const W = gated ? 2 : 1; // weight matrices read
  // acc[(w · ROWS + r) · 2 + h]: weight w (0 the main one, 1 the gated product's up), row r, half h (columns 4h … 4h+3 of the lane's 8)
  const at = (w: number, r: number, h: number) => (w * ROWS + r) * 2 + h;
  const sum = wgslSliceSum('vec4<f32>', lanes, slices, 2 * ROWS * W, RED_CAP);
  const weights = gated ? ['P', 'U'] : ['P'];
  const loads = weights.flatMap((name, w) =>
    Array.from({ length: 4 }, (_, u) => `let p${w}${u} = bitcast<vec4<u32>>(${name}[(k + ${u}) * groups + jr]);
      let lo${w}${u} = vec4<f32>(unpackPair(p${w}${u}.x), unpackPair(p${w}${u}.y));
      let hi${w}${u} = vec4<f32>(unpackPair(p${w}${u}.z), unpackPair(p${w}${u}.w));`),
  );
  const chain = (a: string, v: string) => `${a} = fma(vec4<f32>(x.x), ${v}0, fma(vec4<f32>(x.y), ${v}1, fma(vec4<f32>(x.z), ${v}2, fma(vec4<f32>(x.w), ${v}3, ${a}))));`;
  // x as the product reads it: the row itself, or its norm (the prologue's mean and scale of the row)
  const xAt = (r: number) => (norm ? `(xRaw(xr${r}, q) - vec4<f32>(mean${r})) / scale${r} * nw[q]${norm.bias ? ' + nb[q]' : ''}` : `X[xr${r} * quads + q]`);
  const prologue = !norm
    ? ''
    : `let tid = slice * ${lanes} + lane;
      ${Array.from({ length: ROWS }, (_, r) => `var mean${r} = 0.0;
      ${norm.type === 'LN' ? `{
        var a = 0.0;
        for (var i = tid; i < quads; i += ${THREADS}) { let v = xRaw(xr${r}, i); a += v.x + v.y + v.z + v.w; }
        mean${r} = nSum(a, tid) / f32(uniforms.K);
      }` : ''}
      var scale${r} = 0.0;
      {
        var sq = 0.0;
        for (var i = tid; i < quads; i += ${THREADS}) { let c = xRaw(xr${r}, i) - vec4<f32>(mean${r}); sq += dot(c, c); }
        scale${r} = sqrt(nSum(sq, tid) / f32(uniforms.K) + uniforms.eps);
      }`).join('\n      ')}`;
  const normDecl = !norm
    ? ''
    : `var<workgroup> nred : array<f32, ${THREADS}>;
    // the sum of v over the workgroup (its own array: wgslSliceSum's is \`red\`)
    ${wgslWorkgroupReduce('nSum', THREADS, 'a + b', 'nred')}
    // a row of x as the norm reads it: x, or x + addend as the unfused add rounds it
    fn xRaw(row : i32, q : i32) -> vec4<f32> { return X[row * (uniforms.K / 4) + q]${norm.summed ? ' + X2[row * (uniforms.K / 4) + q]' : ''}; }`;
  const fmas = Array.from({ length: ROWS }, (_, r) => `{
        let x = ${xAt(r)};
        ${weights.flatMap((_, w) => [chain(`acc[${at(w, r, 0)}]`, `lo${w}`), chain(`acc[${at(w, r, 1)}]`, `hi${w}`)]).join('\n        ')}
      }`);
  const epilogueCode = (r: number, h: number) => {
    const g = `2 * j + ${h}`; // the vec4 of output columns
    const lines = [`var v = acc[${at(0, r, h)}] + bias[${g}];`];
    if (gated) lines.push(`let u = acc[${at(1, r, h)}] + upBias[${g}];`, 'v = vec4<f32>(act(v.x) * u.x, act(v.y) * u.y, act(v.z) * u.z, act(v.w) * u.w);');
    if (add) lines.push(`v = (addA[row * cols4 + ${g}] + addB[row * cols4 + ${g}]) + v;`);
    lines.push(`result[row * cols4 + ${g}] = v;`);
    return `{
            ${lines.join('\n            ')}
          }`;
  };
  return `
    ${unpackFn(format)}
    ${act ? `${WGSL_MATH}\n    fn act(a : f32) -> f32 { return ${actExpr(act, 'a')}; }` : ''}
    ${sum.decl}
    ${normDecl}
    fn main() {
      let lane = i32(localId.x);
      let slice = i32(localId.y);
      let groups = uniforms.N / 8; // vec4s of packed pairs a row of W
      let cols4 = uniforms.N / 4; // vec4s a row of the output
      let quads = uniforms.K / 4;
      // past the last column a lane reads the last group again (jr) and writes nothing
      let j = i32(workgroupId.x) * ${lanes} + lane;
      let jr = min(j, groups - 1);
      let row0 = i32(workgroupId.y) * ${ROWS};
      ${Array.from({ length: ROWS }, (_, r) => `let xr${r} = min(row0 + ${r}, uniforms.M - 1);`).join('\n      ')}
      ${prologue}
      var acc : array<vec4<f32>, ${2 * ROWS * W}>; // zero-initialised
      for (var q = slice; q < quads; q += ${slices}) {
        let k = 4 * q;
        ${loads.join('\n        ')}
        ${fmas.join('\n        ')}
      }
      ${sum.code}
      if (slice == 0 && j < groups) {
        ${Array.from({ length: ROWS }, (_, r) => `if (row0 + ${r} < uniforms.M) {
          let row = row0 + ${r};
          ${epilogueCode(r, 0)}
          ${epilogueCode(r, 1)}
        }`).join('\n        ')}
      }
    }`;
}
