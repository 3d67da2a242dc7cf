/**
 * Rotary position embeddings in one dispatch, as src/model/rotary.ts applies them (transformers' rotate_half
 * layout): in each head the first `rotary_dim` dimensions, split in halves (x1, x2), become
 * (x1·cos − x2·sin, x2·cos + x1·sin); the rest are copied (partial rotary, Pythia's rotary_pct; an odd GPT-NeoX
 * r arrives here as its 2·⌈r/2⌉-wide tables, config.ts). The arithmetic is the unfused path's, x·cos + (±x')·sin.
 *
 * The input is read as rows of columns: `heads` heads of d_head starting at column `colOffset` of each row. So one
 * dispatch rotates q and k together straight out of the fused QKV matmul's output [batch·pos, (head + 2·kv_head)·d_head]
 * (they are its first head + kv_head heads), or one [batch, pos, head, d_head] tensor on its own.
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat, runProgram, type WebGPUProgram } from './program.js';

export interface RotaryOptions {
  batch: number;
  pos: number;
  /** Heads to rotate, each dHead wide, starting at column colOffset of every row. */
  heads: number;
  dHead: number;
  colOffset: number;
  /** Elements per row of the input (pos-major rows: batch·pos of them). */
  rowStride: number;
  rotaryDim: number;
}

const WG = 64;

function rotaryProgram(o: RotaryOptions, perRowTables: boolean): WebGPUProgram {
  const outputShape = [o.batch, o.pos, o.heads, o.dHead];
  const size = outputShape.reduce((a, c) => a * c, 1);
  return {
    variableNames: ['x', 'cosT', 'sinT'],
    outputShape,
    shaderKey: `hlRotary_${perRowTables ? 'rows' : 'pos'}`,
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: 'total : i32, pos : i32, heads : i32, dHead : i32, colOffset : i32, rowStride : i32, rotaryDim : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  let e = index % uniforms.dHead;
  let h = (index / uniforms.dHead) % uniforms.heads;
  let row = index / (uniforms.dHead * uniforms.heads); // batch·pos + pos
  let src = row * uniforms.rowStride + uniforms.colOffset + h * uniforms.dHead;
  let a = x[src + e];
  let rd = uniforms.rotaryDim;
  if (e >= rd) {
    result[index] = a;
    return;
  }
  let half = rd / 2;
  let t = ${perRowTables ? 'row' : 'row % uniforms.pos'} * rd + e;
  var other = 0.0;
  if (e < half) { other = -x[src + e + half]; } else { other = x[src + e - half]; }
  result[index] = a * cosT[t] + other * sinT[t];
}
`,
  };
}

/**
 * The rotated heads [batch, pos, heads, d_head] of x (see RotaryOptions for how x is read). cos and sin are the
 * tables of rotary.ts: [pos, rotary_dim], or [batch, pos, rotary_dim] when each row has its own positions.
 */
export function fusedRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, o: RotaryOptions): tf.Tensor4D {
  assertFloat(x, 'x');
  const total = o.batch * o.pos * o.heads * o.dHead;
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const uniforms = [i(total), i(o.pos), i(o.heads), i(o.dHead), i(o.colOffset), i(o.rowStride), i(o.rotaryDim)];
  return runProgram('HeadlensRotary', rotaryProgram(o, cos.rank === 3), [x, cos, sin], uniforms) as tf.Tensor4D;
}
