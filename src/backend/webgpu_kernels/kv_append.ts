/**
 * The KV cache's new keys and values written in place into a preallocated slab [2, batch, kv_head, capacity, d_head]
 * (keys, then values; kv_cache.ts owns it), at key positions `at` … `at + new_pos − 1`, in one dispatch. The new
 * positions are read through strides wherever they lie (the fused QKV matmul's output, the rotary kernel's output,
 * [batch, pos, kv_head, d_head] tensors, or an older slab's rows when the cache grows), the keys rotated on the way
 * when asked. Nothing else of the slab is touched, so a decoding step costs the new rows, not a copy of the cache.
 *
 * tfjs tensors are immutable; this one program breaks that on purpose: tfjs-backend-webgpu's runWebGPUProgram takes
 * an existing output, and the slab is passed as it. The slab never leaves the cache (readers get copies or views
 * inside a forward), so nothing outside sees it change.
 */
import * as tf from '@tensorflow/tfjs';
import { rotateSnippet, tableUniforms, type HeadView, type InlineRotary } from './attention.js';
import { assertFloat, dispatch1d, runProgramInto, uninitialised, type WebGPUProgram } from './program.js';

const WG = 64;

function writeProgram(slabShape: number[], rows: number, rot: boolean): WebGPUProgram {
  const [, batch, heads, , dHead] = slabShape;
  const total = 2 * batch * heads * rows * dHead;
  return {
    variableNames: ['freshK', 'freshV', ...(rot ? ['cosT', 'sinT'] : [])],
    outputShape: slabShape,
    shaderKey: `hlKVWrite_${rot ? 'rot' : 'norot'}`,
    dispatchLayout: { x: [0, 1, 2, 3, 4] },
    dispatch: dispatch1d(Math.ceil(total / WG)),
    workgroupSize: [WG, 1, 1],
    uniforms:
      'total : i32, batch : i32, heads : i32, rows : i32, dHead : i32, capacity : i32, at : i32, ' +
      'kOff : i32, kSb : i32, kSp : i32, kSh : i32, vOff : i32, vSb : i32, vSp : i32, vSh : i32, rotaryDim : i32, tableSb : i32,',
    getUserCode: () => `
${rot ? rotateSnippet('rotK', 'freshK') : ''}
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  let e = index % uniforms.dHead;
  let p = (index / uniforms.dHead) % uniforms.rows;
  let h = (index / (uniforms.dHead * uniforms.rows)) % uniforms.heads;
  let bt = (index / (uniforms.dHead * uniforms.rows * uniforms.heads)) % uniforms.batch;
  let which = index / (uniforms.dHead * uniforms.rows * uniforms.heads * uniforms.batch); // 0 keys, 1 values
  let dst = (((which * uniforms.batch + bt) * uniforms.heads + h) * uniforms.capacity + uniforms.at + p) * uniforms.dHead + e;
  if (which == 0) {
    ${rot ? 'result[dst] = rotK(uniforms.kOff + bt * uniforms.kSb + p * uniforms.kSp + h * uniforms.kSh, e, bt * uniforms.tableSb + p);' : 'result[dst] = freshK[uniforms.kOff + bt * uniforms.kSb + p * uniforms.kSp + h * uniforms.kSh + e];'}
  } else {
    result[dst] = freshV[uniforms.vOff + bt * uniforms.vSb + p * uniforms.vSp + h * uniforms.vSh + e];
  }
}
`,
  };
}

/**
 * Writes `rows` positions of keys and values (read through `freshK`, `freshV`; keys rotated with `rotary` if given)
 * into `slab` [2, batch, kv_head, capacity, d_head] at key positions at … at + rows − 1, in place.
 */
export function writeKVInPlace(slab: tf.Tensor, at: number, freshK: HeadView, freshV: HeadView, rows: number, rotary?: InlineRotary): void {
  assertFloat(slab, 'KV slab');
  assertFloat(freshK.tensor, 'new keys');
  assertFloat(freshV.tensor, 'new values');
  const [two, batch, heads, capacity, dHead] = slab.shape;
  if (slab.rank !== 5 || two !== 2) throw new Error(`KV slab must be [2, batch, kv_head, capacity, d_head], got [${slab.shape}]`);
  if (!(at >= 0 && at + rows <= capacity!)) throw new Error(`KV write of ${rows} rows at ${at} does not fit a capacity of ${capacity}`);
  if (rows === 0) return;
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const uniforms = [
    i(2 * batch! * heads! * rows * dHead!), i(batch!), i(heads!), i(rows), i(dHead!), i(capacity!), i(at),
    ...[freshK, freshV].flatMap((x) => [i(x.offset), ...x.strides.map(i)]),
    ...tableUniforms(rotary, rows),
  ];
  const inputs = [freshK.tensor, freshV.tensor, ...(rotary ? [rotary.cos, rotary.sin] : [])];
  runProgramInto('HeadlensKVWrite', writeProgram(slab.shape, rows, !!rotary), inputs, uniforms, slab);
}

/**
 * A float32 tensor of `shape` on the webgpu backend whose buffer is made but not filled (its values are whatever
 * the pooled buffer held): for a slab that only writeKVInPlace writes and only its written rows are read.
 */
export const uninitialisedTensor = uninitialised;
