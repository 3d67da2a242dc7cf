/**
 * What the fused WebGPU kernels share: the shape of a tfjs WebGPU program, running one through the backend
 * as a registered kernel (so tidy, tf.memory(), tf.profile and tf.time see it like any other op), and the test
 * that says whether the fused path may run at all.
 *
 * A program here follows @tensorflow/tfjs-backend-webgpu's WebGPUProgram: tfjs writes the WGSL header (a
 * storage binding per input named after `variableNames`, `result` for the output, a `uniforms` struct holding
 * every input's shape and strides and then the program's own `uniforms` fields) and the `_start` entry point,
 * which calls `main(index)` (flat dispatch layout). The program supplies `main`. Nothing here imports the webgpu
 * package itself: the backend instance is reached through tf.backend(), so wasm and cpu users never load it.
 */
import * as tf from '@tensorflow/tfjs';
import { multiOutputReady } from '../webgpu_dispatch.js';

/** The fields of tfjs-backend-webgpu's WebGPUProgram that these kernels use. */
export interface WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  /** Part of the pipeline cache key: everything baked into getUserCode() (not uniforms) must be in it. */
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** WGSL struct fields appended to tfjs' uniforms, e.g. 'rows : i32, eps : f32,'. */
  uniforms?: string;
  getUserCode(): string;
}

/** One value per field of `WebGPUProgram.uniforms`, in the same order. */
export type UniformData = { type: 'int32' | 'float32'; data: number[] }[];

interface WebGPUBackend {
  runWebGPUProgram(program: WebGPUProgram, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: UniformData, output?: tf.TensorInfo): tf.TensorInfo;
  device: { limits: { maxComputeWorkgroupsPerDimension: number } };
}

/** Workgroup-count of a one-dimensional dispatch; tfjs folds it into y and z past the per-dimension limit. */
export function dispatch1d(workgroups: number): [number, number, number] {
  return [workgroups, 1, 1];
}

/**
 * WGSL for the index of this invocation's workgroup along a flattened dispatch: tfjs' reshapeDispatch may spread
 * a long x over y and z (then a few workgroups past the end run too; the programs guard for it).
 */
export const WORKGROUP_INDEX = 'i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x)';

/** WGSL: exp that tfjs' own kernels use, written here once for the programs that need tanh / sigmoid / erf. */
export const WGSL_MATH = `
fn hlTanh(a : f32) -> f32 {
  let e2x = exp(-2.0 * abs(a));
  return sign(a) * (1.0 - e2x) / (1.0 + e2x);
}
fn hlSigmoid(a : f32) -> f32 {
  return 1.0 / (1.0 + exp(-1.0 * a));
}
// Abramowitz and Stegun 7.1.26, the approximation tfjs' Erf kernels use (error below 1.5e-7)
fn hlErf(a : f32) -> f32 {
  let p = 0.3275911;
  let a1 = 0.254829592;
  let a2 = -0.284496736;
  let a3 = 1.421413741;
  let a4 = -1.453152027;
  let a5 = 1.061405429;
  let s = sign(a);
  let absA = abs(a);
  let t = 1.0 / (1.0 + p * absA);
  return s * (1.0 - (((((a5 * t + a4) * t) + a3) * t + a2) * t + a1) * t * exp(-absA * absA));
}
`;

const registered = new Set<string>();
/** One class per kernel, so tf.time / tf.profile (which name a program by its constructor) tell them apart. */
const classes = new Map<string, new () => object>();

function withClassName(name: string, program: WebGPUProgram): WebGPUProgram {
  let C = classes.get(name);
  if (!C) {
    C = { [name]: class {} }[name];
    classes.set(name, C);
  }
  return Object.assign(new C(), program);
}

/**
 * Runs `program` on the webgpu backend as the kernel `name` (registered on first use), so the engine tracks its
 * output like any op's. Only called when fusedKernelsActive() is true.
 */
export function runProgram(name: string, program: WebGPUProgram, inputs: tf.Tensor[], uniforms: UniformData = []): tf.Tensor {
  if (!registered.has(name)) {
    tf.registerKernel({
      kernelName: name,
      backendName: 'webgpu',
      kernelFunc: ({ inputs: ins, backend, attrs }) => {
        const a = attrs as unknown as { program: WebGPUProgram; uniforms: UniformData; order: string[] };
        const list = a.order.map((k) => (ins as Record<string, tf.TensorInfo>)[k]);
        return (backend as unknown as WebGPUBackend).runWebGPUProgram(a.program, list, 'float32', a.uniforms);
      },
    });
    registered.add(name);
  }
  const named: Record<string, tf.Tensor> = {};
  program.variableNames.forEach((v, i) => (named[v] = inputs[i]));
  const attrs = { program: withClassName(name, program), uniforms, order: program.variableNames } as unknown as tf.NamedAttrMap;
  return tf.engine().runKernel(name, named, attrs) as tf.Tensor;
}

/**
 * Whether kernels with several outputs (runProgramMulti) can run now: on the webgpu backend with headlens' lean
 * dispatch path (src/backend/webgpu_dispatch.ts) on, and not while tf.time times programs one by one.
 */
export function multiOutputActive(): boolean {
  return tf.getBackend() === 'webgpu' && multiOutputReady(tf.backend());
}

/**
 * WGSL declaring `names` as writable float32 storage for a program of `inputs` inputs: tfjs binds `result` at 0,
 * the inputs at 1…inputs and the uniforms after them, so the extra outputs follow at inputs + 2, …
 */
export function wgslExtraOutputs(inputs: number, names: string[]): string {
  return names.map((n, i) => `@group(0) @binding(${inputs + 2 + i}) var<storage, read_write> ${n} : array<f32>;`).join('\n');
}

/**
 * Runs a program that writes `result` and, through storage it declares with wgslExtraOutputs, one float32 tensor
 * per shape of `extraShapes`: [result, ...extras], each a tensor the engine tracks like any op's output. Only when
 * multiOutputActive() is true (the caller runs the single-output kernels otherwise).
 */
export function runProgramMulti(name: string, program: WebGPUProgram, inputs: tf.Tensor[], uniforms: UniformData, extraShapes: number[][]): tf.Tensor[] {
  if (!multiOutputActive()) throw new Error(`${name}: kernels with several outputs need the lean dispatch path (webgpuHostTuning.leanDispatch) and no tf.time around them`);
  const extras = extraShapes.map((s) => uninitialised(s));
  try {
    const main = runProgram(name, { ...program, extraOutputs: extras } as WebGPUProgram, inputs, uniforms);
    return [main, ...extras];
  } catch (e) {
    tf.dispose(extras);
    throw e;
  }
}

/** A float32 tensor whose buffer is made but not written: a program fills it (runProgramMulti, the KV slab). */
export function uninitialised(shape: number[]): tf.Tensor {
  const backend = tf.backend() as unknown as { makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo; uploadToGPU(dataId: object): void };
  const info = backend.makeTensorInfo(shape, 'float32');
  backend.uploadToGPU(info.dataId);
  return (tf.engine() as unknown as { makeTensorFromTensorInfo(info: tf.TensorInfo): tf.Tensor }).makeTensorFromTensorInfo(info);
}

/**
 * Runs `program` with `target` (an existing float32 tensor of the program's output shape) as its output buffer:
 * what the program writes changes `target` in place, and what it does not write keeps its values. Outside the
 * engine's kernel registry (no new tensor is made), so tf.profile does not list it. Only for buffers one owner
 * keeps to itself (the KV cache's slab, kv_append.ts).
 */
export function runProgramInto(name: string, program: WebGPUProgram, inputs: tf.Tensor[], uniforms: UniformData, target: tf.Tensor): void {
  if (tf.getBackend() !== 'webgpu') throw new Error(`${name}: in-place programs run on the webgpu backend only (running: ${tf.getBackend()})`);
  if (target.dtype !== 'float32' || target.shape.join() !== program.outputShape.join()) {
    throw new Error(`${name}: the target must be float32 [${program.outputShape}], got ${target.dtype} [${target.shape}]`);
  }
  (tf.backend() as unknown as WebGPUBackend).runWebGPUProgram(withClassName(name, program), inputs, 'float32', uniforms, target);
}

/**
 * Whether a forward may take the fused path now: the webgpu backend is running, and no gradient is being
 * recorded. The fused kernels have no gradients of their own, so under tf.grad / tf.variableGrads (the trainer,
 * attribution patching, EAP) the forward runs the plain ops, whose gradients tfjs knows. The test reads the
 * engine's tape depth, which tfjs raises for the whole of a gradient's function.
 */
export function fusedKernelsActive(): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const state = (tf.engine() as unknown as { state: { gradientDepth: number } }).state;
  return state.gradientDepth === 0;
}

/** Float32 input of a program: every kernel here reads f32 storage (ints are not expected). */
export function assertFloat(t: tf.Tensor, what: string): void {
  if (t.dtype !== 'float32') throw new Error(`fused kernel: ${what} must be float32, got ${t.dtype}`);
}

/**
 * WGSL for a workgroup-wide reduction over `red` (a `var<workgroup> red : array<f32, WG>` the shader declares; another
 * name where the shader's `red` is taken, as by wgslSliceSum): `fn NAME(v, tid)` combines every invocation's v with
 * `op` (a WGSL expression of `a` and `b`) and returns the result to all of them. Every invocation must call it: it
 * holds barriers.
 */
export function wgslWorkgroupReduce(name: string, wg: number, op: string, red = 'red'): string {
  const combine = op.replace(/\ba\b/g, `${red}[tid]`).replace(/\bb\b/g, `${red}[tid + s]`);
  return `fn ${name}(v : f32, tid : i32) -> f32 {
  ${red}[tid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}; s > 0; s = s >> 1) {
    if (tid < s) { ${red}[tid] = ${combine}; }
    workgroupBarrier();
  }
  let total = ${red}[0];
  workgroupBarrier();
  return total;
}`;
}

/**
 * WGSL that sums per-thread partials over the slices of a workgroup of `lanes` × `slices` threads (the decode
 * matmuls: lanes own columns, slices split K). Each thread holds `acc : array<TYPE, rows>` and knows `lane` and
 * `slice`; afterwards the threads of slice 0 hold, in acc, the sums over all slices of their lane. Halving steps:
 * the upper half of the remaining slices hands its partials to the lower half through `red`, as many rows at once as
 * `red` holds (`cap` entries or one row's, declared by `decl`), so 8 rows on 256 threads take 7 barrier pairs rather than 8 serial
 * sums. Unrolled here, so every index into acc is a constant (a dynamically indexed array may leave registers).
 * Every thread must run it (it holds barriers). `slices` is a power of two.
 */
export function wgslSliceSum(type: string, lanes: number, slices: number, rows: number, cap: number): { decl: string; code: string } {
  if (slices & (slices - 1)) throw new Error(`wgslSliceSum: ${slices} slices is not a power of two`);
  const lines: string[] = [];
  let size = 1;
  for (let half = slices / 2; half >= 1; half /= 2) {
    const perRound = Math.max(1, Math.min(rows, Math.floor(cap / (half * lanes))));
    size = Math.max(size, perRound * half * lanes);
    for (let r0 = 0; r0 < rows; r0 += perRound) {
      const rs = Array.from({ length: Math.min(perRound, rows - r0) }, (_, i) => i);
      lines.push(`if (slice >= ${half} && slice < ${2 * half}) {
    ${rs.map((i) => `red[${i * half * lanes} + (slice - ${half}) * ${lanes} + lane] = acc[${r0 + i}];`).join('\n    ')}
  }
  workgroupBarrier();
  if (slice < ${half}) {
    ${rs.map((i) => `acc[${r0 + i}] += red[${i * half * lanes} + slice * ${lanes} + lane];`).join('\n    ')}
  }
  workgroupBarrier();`);
    }
  }
  return { decl: `var<workgroup> red : array<${type}, ${size}>;`, code: lines.join('\n  ') };
}

type ReshapeKernel = (args: { inputs: { x: tf.TensorInfo }; attrs: { shape: number[] }; backend: unknown }) => tf.TensorInfo;

/** A tensor seen in another shape through the webgpu Reshape kernel (a view, no copy); inside kernel functions. */
export function reshapeView(x: tf.TensorInfo, shape: number[], backend: unknown): tf.TensorInfo {
  const reshape = tf.getKernel('Reshape', 'webgpu')!.kernelFunc as unknown as ReshapeKernel;
  return reshape({ inputs: { x }, attrs: { shape }, backend });
}
