/**
 * The KV cache's new keys (or values) in one dispatch: [past | new] along key_pos in the cache's layout
 * [batch, kv_head, key_pos, d_head], reading the new positions through strides wherever they lie (the fused QKV
 * matmul's output, the rotary kernel's output, or a [batch, pos, kv_head, d_head] tensor), rotating new keys on the
 * way when asked. The unfused path takes a transpose and a concat for each.
 */
import * as tf from '@tensorflow/tfjs';
import { rotateSnippet, tableUniforms, type HeadView, type InlineRotary } from './attention.js';
import { assertFloat, runProgram, type WebGPUProgram } from './program.js';

const WG = 64;

function appendProgram(outputShape: number[], hasPast: boolean, rot: boolean): WebGPUProgram {
  const size = outputShape.reduce((a, c) => a * c, 1);
  return {
    variableNames: [...(hasPast ? ['past'] : []), 'fresh', ...(rot ? ['cosT', 'sinT'] : [])],
    outputShape,
    shaderKey: `hlKVAppend_${hasPast ? 'past' : 'first'}_${rot ? 'rot' : 'norot'}`,
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: 'total : i32, heads : i32, keys : i32, dHead : i32, pastKeys : i32, off : i32, sb : i32, sp : i32, sh : i32, rotaryDim : i32, tableSb : i32,',
    getUserCode: () => `
${rot ? rotateSnippet('rotK', 'fresh') : ''}
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  let e = index % uniforms.dHead;
  let t = (index / uniforms.dHead) % uniforms.keys;
  let h = (index / (uniforms.dHead * uniforms.keys)) % uniforms.heads;
  let bt = index / (uniforms.dHead * uniforms.keys * uniforms.heads);
  if (t < uniforms.pastKeys) {
    ${hasPast ? 'result[index] = past[((bt * uniforms.heads + h) * uniforms.pastKeys + t) * uniforms.dHead + e];' : ''}
    return;
  }
  let p = t - uniforms.pastKeys;
  ${rot ? 'result[index] = rotK(uniforms.off + bt * uniforms.sb + p * uniforms.sp + h * uniforms.sh, e, bt * uniforms.tableSb + p);' : 'result[index] = fresh[uniforms.off + bt * uniforms.sb + p * uniforms.sp + h * uniforms.sh + e];'}
}
`,
  };
}

/**
 * [batch, kv_head, past_pos + new_pos, d_head]: `past` (or nothing) followed by the `newPos` positions of `fresh`,
 * rotated on the way with `rotary`'s tables ([new_pos, rotary_dim] or [batch, new_pos, rotary_dim]) if given.
 */
export function fusedKVAppend(past: tf.Tensor4D | undefined, fresh: HeadView, batch: number, kvHeads: number, newPos: number, dHead: number, rotary?: InlineRotary): tf.Tensor4D {
  assertFloat(fresh.tensor, 'new keys/values');
  const pastKeys = past ? past.shape[2] : 0;
  const shape = [batch, kvHeads, pastKeys + newPos, dHead];
  const total = shape.reduce((a, c) => a * c, 1);
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const uniforms = [i(total), i(kvHeads), i(pastKeys + newPos), i(dHead), i(pastKeys), i(fresh.offset), ...fresh.strides.map(i), ...tableUniforms(rotary, newPos)];
  const inputs = [...(past ? [past] : []), fresh.tensor, ...(rotary ? [rotary.cos, rotary.sin] : [])];
  return runProgram('HeadlensKVAppend', appendProgram(shape, !!past, !!rotary), inputs, uniforms) as tf.Tensor4D;
}
