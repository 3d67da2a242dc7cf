/**
 * A matrix [rows, Σ widths] cut along its columns into one tensor [rows, width] per part, in one dispatch (tfjs'
 * split is one copy program per part). The forward's fused QKV output becomes q, k and v this way when their hook
 * points need them as tensors. A kernel with several outputs: needs multiOutputActive() (program.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat, dispatch1d, runProgramMulti, wgslExtraOutputs, type WebGPUProgram } from './program.js';

const WG = 256;

function splitProgram(rows: number, widths: number[]): WebGPUProgram {
  const total = widths.reduce((a, b) => a + b, 0);
  const extras = widths.slice(1).map((_, i) => `part${i + 1}`);
  // the part each column falls in, by comparing against the running bounds (a handful of parts: unrolled)
  const starts = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
  const branches = widths
    .map((w, i) => {
      const out = i === 0 ? 'result' : `part${i}`;
      const cond = i === widths.length - 1 ? '' : `if (c < ${starts[i] + w}) `;
      return `${i === 0 ? '' : 'else '}${cond}{ ${out}[r * ${w} + c - ${starts[i]}] = x[index]; }`;
    })
    .join('\n  ');
  return {
    variableNames: ['x'],
    outputShape: [rows, widths[0]],
    shaderKey: `hlSplitCols_${widths.join('_')}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: dispatch1d(Math.ceil((rows * total) / WG)),
    workgroupSize: [WG, 1, 1],
    uniforms: 'count : i32,',
    getUserCode: () => `
${wgslExtraOutputs(1, extras)}
fn main(index : i32) {
  if (index >= uniforms.count) { return; }
  let r = index / ${total};
  let c = index % ${total};
  ${branches}
}
`,
  };
}

/** x [rows, Σ widths] → [x[:, 0:w0], x[:, w0:w0+w1], …], each [rows, wᵢ], in one dispatch. */
export function fusedSplitColumns(x: tf.Tensor2D, widths: number[]): tf.Tensor2D[] {
  assertFloat(x, 'x');
  const [rows, cols] = x.shape;
  if (widths.reduce((a, b) => a + b, 0) !== cols || widths.some((w) => !(Number.isInteger(w) && w > 0))) {
    throw new Error(`fusedSplitColumns: widths [${widths}] do not cut ${cols} columns`);
  }
  const program = splitProgram(rows, widths);
  return runProgramMulti('HeadlensSplitColumns', program, [x], [{ type: 'int32', data: [rows * cols] }], widths.slice(1).map((w) => [rows, w])) as tf.Tensor2D[];
}
