/**
 * The MLP's nonlinearity in one dispatch: act(pre), or SwiGLU's act(gate)·up, for the activations of
 * src/model/activation.ts, each written with the unfused path's operations in the same order (GELU's tanh form
 * x·(tanh((x + x³·0.044715)·√(2/π)) + 1)·0.5, exact GELU with tfjs' erf approximation, SiLU x·sigmoid(x), ReLU).
 * The unfused path dispatches one program per tfjs op (nine for the tanh GELU). Also the residual stream's two adds
 * of a block as one (fusedAdd3).
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat, runProgram, WGSL_MATH, type WebGPUProgram } from './program.js';

export type FusedActivation = 'relu' | 'silu' | 'gelu' | 'gelu_new' | 'gelu_fast' | 'gelu_pytorch_tanh';

const WG = 64;

/** WGSL for act(a) on an f32 expression `a`, the unfused path's operations in its order (shared with matmul16's SwiGLU epilogue). */
export function actExpr(fn: FusedActivation, a: string): string {
  switch (fn) {
    case 'relu':
      return `max(${a}, 0.0)`;
    case 'silu':
      return `${a} * hlSigmoid(${a})`;
    case 'gelu':
      return `${a} * (hlErf(${a} * ${Math.SQRT1_2}) + 1.0) * 0.5`;
    case 'gelu_new':
    case 'gelu_fast':
    case 'gelu_pytorch_tanh':
      return `${a} * (hlTanh((${a} + ${a} * ${a} * ${a} * 0.044715) * ${Math.sqrt(2 / Math.PI)}) + 1.0) * 0.5`;
  }
}

function activationProgram(shape: number[], fn: FusedActivation, gated: boolean): WebGPUProgram {
  const size = shape.reduce((a, c) => a * c, 1);
  return {
    variableNames: gated ? ['gate', 'up'] : ['pre'],
    outputShape: shape,
    shaderKey: `hlActivation_${fn}_${gated ? 'gated' : 'plain'}`,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: 'total : i32,',
    getUserCode: () => `
${WGSL_MATH}
fn act(a : f32) -> f32 {
  return ${actExpr(fn, 'a')};
}
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  ${gated ? 'result[index] = act(gate[index]) * up[index];' : 'result[index] = act(pre[index]);'}
}
`,
  };
}

/** act(pre), same shape. */
export function fusedActivation(fn: FusedActivation, pre: tf.Tensor): tf.Tensor {
  assertFloat(pre, 'pre');
  return runProgram('HeadlensActivation', activationProgram(pre.shape, fn, false), [pre], [{ type: 'int32', data: [pre.size] }]);
}

/** act(gate)·up (SwiGLU for silu), gate and up of one shape. */
export function fusedGatedActivation(fn: FusedActivation, gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  assertFloat(gate, 'gate');
  if (gate.shape.join() !== up.shape.join()) throw new Error(`fused gated activation: gate [${gate.shape}] and up [${up.shape}] differ`);
  return runProgram('HeadlensGatedActivation', activationProgram(gate.shape, fn, true), [gate, up], [{ type: 'int32', data: [gate.size] }]);
}

/** (a + b) + c of three tensors of one shape, rounded as two adds would: the residual stream's two adds of a block. */
export function fusedAdd3(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor {
  for (const [t, n] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
    assertFloat(t, n);
    if (t.shape.join() !== a.shape.join()) throw new Error(`fused add: [${t.shape}] and [${a.shape}] differ`);
  }
  const size = a.size;
  const program: WebGPUProgram = {
    variableNames: ['a', 'b', 'c'],
    outputShape: a.shape,
    shaderKey: 'hlAdd3',
    dispatchLayout: { x: a.shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: 'total : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index < uniforms.total) { result[index] = (a[index] + b[index]) + c[index]; }
}
`,
  };
  return runProgram('HeadlensAdd3', program, [a, b, c], [{ type: 'int32', data: [size] }]);
}
