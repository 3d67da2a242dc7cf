/**
 * LayerNorm and RMSNorm in one dispatch: one workgroup per row reduces the mean (LayerNorm) and the mean square
 * of the centred row in workgroup memory, then writes (x − mean) / √(var + eps) · w + b. The arithmetic is the
 * unfused path's (src/model/norm.ts) in the same order; only the order of the sums differs.
 *
 * When a hook listens at `hook_scale` the norm runs as two dispatches instead: `normScale` writes the divisor
 * [rows] for the hook point, and `normApply` divides by whatever tensor the hook point returned (so a hook that
 * patches the scale changes the output exactly as it does on the unfused path).
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat, dispatch1d, runProgram, runProgramMulti, wgslExtraOutputs, wgslWorkgroupReduce, WORKGROUP_INDEX, type WebGPUProgram } from './program.js';

export type NormType = 'LN' | 'RMS';

const WG = 128;

type Mode = 'full' | 'scale' | 'apply';

/** Extra outputs of the 'full' mode (runProgramMulti): the divisor [rows] (hook_scale) and the sum x + addend. */
interface Extras {
  scale?: boolean;
  sum?: boolean;
}

function normProgram(shape: number[], type: NormType, mode: Mode, hasBias: boolean, summed = false, extras: Extras = {}): WebGPUProgram {
  const d = shape[shape.length - 1];
  const rows = sizeOf(shape) / d;
  const outputShape = mode === 'scale' ? [...shape.slice(0, -1), 1] : shape;
  const inputs = ['xIn', ...(summed ? ['addend'] : []), ...(mode === 'apply' ? ['scaleIn'] : []), ...(mode !== 'scale' ? ['w'] : []), ...(mode !== 'scale' && hasBias ? ['b'] : [])];
  const ln = type === 'LN';
  return {
    variableNames: inputs,
    outputShape,
    shaderKey: `hlNorm_${type}_${mode}_${hasBias ? 'b' : 'nb'}_${summed ? 'sum' : 'one'}${extras.scale ? '_oscale' : ''}${extras.sum ? '_osum' : ''}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: dispatch1d(rows),
    workgroupSize: [WG, 1, 1],
    uniforms: 'rows : i32, d : i32, eps : f32,',
    getUserCode: () => `
${wgslExtraOutputs(inputs.length, [...(extras.scale ? ['scaleOut'] : []), ...(extras.sum ? ['sumOut'] : [])])}
var<workgroup> red : array<f32, ${WG}>;
// the row's input: x, or (summed) x + addend as the unfused add would round it
fn xAt(i : i32) -> f32 {
  return ${summed ? 'xIn[i] + addend[i]' : 'xIn[i]'};
}
// the sum of v over the workgroup; every invocation must call it (it holds barriers)
${wgslWorkgroupReduce('wgSum', WG, 'a + b')}
fn main(index : i32) {
  let tid = i32(localId.x);
  let wg = ${WORKGROUP_INDEX};
  let valid = wg < uniforms.rows;
  let row = min(wg, uniforms.rows - 1);
  let d = uniforms.d;
  let base = row * d;
  var mean = 0.0;
  ${ln ? `var acc = 0.0;
  for (var i = tid; i < d; i += ${WG}) { acc += xAt(base + i); }
  mean = wgSum(acc, tid) / f32(d);` : ''}
  ${mode === 'apply' ? 'let scale = scaleIn[row];' : `var sq = 0.0;
  for (var i = tid; i < d; i += ${WG}) { let c = xAt(base + i) - mean; sq += c * c; }
  let scale = sqrt(wgSum(sq, tid) / f32(d) + uniforms.eps);`}
  ${mode === 'scale' ? 'if (valid && tid == 0) { result[row] = scale; }' : `if (valid) {
    for (var i = tid; i < d; i += ${WG}) {
      result[base + i] = (xAt(base + i) - mean) / scale * w[i]${hasBias ? ' + b[i]' : ''};${extras.sum ? '\n      sumOut[base + i] = xAt(base + i);' : ''}
    }${extras.scale ? '\n    if (tid == 0) { scaleOut[row] = scale; }' : ''}
  }`}
}
`,
  };
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, c) => a * c, 1);
}

function uniforms(shape: number[], eps: number) {
  const d = shape[shape.length - 1];
  return [
    { type: 'int32' as const, data: [sizeOf(shape) / d] },
    { type: 'int32' as const, data: [d] },
    { type: 'float32' as const, data: [eps] },
  ];
}

/** The norm of x [..., d]: (x − mean) / √(mean square + eps) · w (+ b); RMSNorm does not centre. Same shape as x. */
export function fusedNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, eps: number, type: NormType): tf.Tensor {
  assertFloat(x, 'x');
  return runProgram('HeadlensNorm', normProgram(x.shape, type, 'full', !!b), [x, w, ...(b ? [b] : [])], uniforms(x.shape, eps));
}

/** The divisor √(mean square of the (centred) row + eps) of x [..., d], shaped [..., 1] like hook_scale. */
export function fusedNormScale(x: tf.Tensor, eps: number, type: NormType): tf.Tensor {
  assertFloat(x, 'x');
  return runProgram('HeadlensNormScale', normProgram(x.shape, type, 'scale', false), [x], uniforms(x.shape, eps));
}

/** (x − mean) / scale · w (+ b) for a given scale [..., 1] (e.g. what a hook at hook_scale returned). */
export function fusedNormApply(x: tf.Tensor, scale: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, type: NormType): tf.Tensor {
  assertFloat(x, 'x');
  return runProgram('HeadlensNormApply', normProgram(x.shape, type, 'apply', !!b), [x, scale, w, ...(b ? [b] : [])], uniforms(x.shape, 0));
}

/** fusedNorm of x + addend (same shape) without making the sum: the residual add before a norm, folded into it. */
export function fusedNormOfSum(x: tf.Tensor, addend: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, eps: number, type: NormType): tf.Tensor {
  assertFloat(x, 'x');
  assertFloat(addend, 'addend');
  return runProgram('HeadlensNormOfSum', normProgram(x.shape, type, 'full', !!b, true), [x, addend, w, ...(b ? [b] : [])], uniforms(x.shape, eps));
}

/**
 * The norm of x (or of x + addend, never made apart unless asked) in one dispatch that also writes what a read-only
 * listener wants: the divisor [..., 1] (hook_scale) and the sum x + addend (the residual stream before the norm,
 * hook_resid_mid), each as the separate kernels round it. Needs multiOutputActive() (program.ts).
 */
export function fusedNormWith(
  x: tf.Tensor, addend: tf.Tensor | undefined, w: tf.Tensor, b: tf.Tensor | undefined, eps: number, type: NormType, want: Extras,
): { normalized: tf.Tensor; scale?: tf.Tensor; sum?: tf.Tensor } {
  assertFloat(x, 'x');
  if (addend) assertFloat(addend, 'addend');
  if (want.sum && !addend) throw new Error('fusedNormWith: the sum needs an addend');
  const inputs = [x, ...(addend ? [addend] : []), w, ...(b ? [b] : [])];
  const shapes = [...(want.scale ? [[...x.shape.slice(0, -1), 1]] : []), ...(want.sum ? [x.shape] : [])];
  const [normalized, ...rest] = runProgramMulti('HeadlensNormWith', normProgram(x.shape, type, 'full', !!b, !!addend, want), inputs, uniforms(x.shape, eps), shapes);
  return { normalized, scale: want.scale ? rest.shift() : undefined, sum: want.sum ? rest.shift() : undefined };
}
