/**
 * The KV cache's new keys and values in one dispatch: [past | new] along key_pos, keys and values in one tensor
 * [2, batch, kv_head, key_pos, d_head] (kv_cache.ts holds it as it is), reading the new positions through strides
 * wherever they lie (the fused QKV matmul's output, the rotary kernel's output, or [batch, pos, kv_head, d_head]
 * tensors), rotating new keys on the way when asked. The unfused path takes a transpose and a concat for each.
 */
import * as tf from '@tensorflow/tfjs';
import { rotateSnippet, tableUniforms, type HeadView, type InlineRotary } from './attention.js';
import { assertFloat, runProgram, type WebGPUProgram } from './program.js';

const WG = 64;

type PastForm = 'none' | 'combined' | 'split';

function appendBothProgram(outputShape: number[], past: PastForm, rot: boolean): WebGPUProgram {
  const size = outputShape.reduce((a, c) => a * c, 1);
  const pastInputs = past === 'combined' ? ['pastKV'] : past === 'split' ? ['pastK', 'pastV'] : [];
  const readPast =
    past === 'combined'
      ? 'result[index] = pastKV[(((which * uniforms.batch + bt) * uniforms.heads + h) * uniforms.pastKeys + t) * uniforms.dHead + e];'
      : past === 'split'
        ? `let at = ((bt * uniforms.heads + h) * uniforms.pastKeys + t) * uniforms.dHead + e;
    if (which == 0) { result[index] = pastK[at]; } else { result[index] = pastV[at]; }`
        : '';
  return {
    variableNames: [...pastInputs, 'freshK', 'freshV', ...(rot ? ['cosT', 'sinT'] : [])],
    outputShape,
    shaderKey: `hlKVAppendBoth_${past}_${rot ? 'rot' : 'norot'}`,
    dispatchLayout: { x: [0, 1, 2, 3, 4] },
    dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms:
      'total : i32, batch : i32, heads : i32, keys : i32, dHead : i32, pastKeys : i32, ' +
      'kOff : i32, kSb : i32, kSp : i32, kSh : i32, vOff : i32, vSb : i32, vSp : i32, vSh : i32, rotaryDim : i32, tableSb : i32,',
    getUserCode: () => `
${rot ? rotateSnippet('rotK', 'freshK') : ''}
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  let e = index % uniforms.dHead;
  let t = (index / uniforms.dHead) % uniforms.keys;
  let h = (index / (uniforms.dHead * uniforms.keys)) % uniforms.heads;
  let bt = (index / (uniforms.dHead * uniforms.keys * uniforms.heads)) % uniforms.batch;
  let which = index / (uniforms.dHead * uniforms.keys * uniforms.heads * uniforms.batch); // 0 keys, 1 values
  if (t < uniforms.pastKeys) {
    ${readPast}
    return;
  }
  let p = t - uniforms.pastKeys;
  if (which == 0) {
    ${rot ? 'result[index] = rotK(uniforms.kOff + bt * uniforms.kSb + p * uniforms.kSp + h * uniforms.kSh, e, bt * uniforms.tableSb + p);' : 'result[index] = freshK[uniforms.kOff + bt * uniforms.kSb + p * uniforms.kSp + h * uniforms.kSh + e];'}
  } else {
    result[index] = freshV[uniforms.vOff + bt * uniforms.vSb + p * uniforms.vSp + h * uniforms.vSh + e];
  }
}
`,
  };
}

/**
 * The KV cache's keys and values extended by `newPos` positions in one dispatch: [2, batch, kv_head, past_pos +
 * new_pos, d_head], keys then values. `past` is the cache's layer as held (one combined tensor, or k and v, or
 * nothing yet); new keys are rotated on the way with `rotary` if given.
 */
export function fusedKVAppendBoth(
  past: { k?: tf.Tensor; v?: tf.Tensor; kv?: tf.Tensor } | undefined,
  freshK: HeadView,
  freshV: HeadView,
  batch: number,
  kvHeads: number,
  newPos: number,
  dHead: number,
  rotary?: InlineRotary,
): tf.Tensor {
  assertFloat(freshK.tensor, 'new keys');
  assertFloat(freshV.tensor, 'new values');
  const form: PastForm = !past ? 'none' : past.kv ? 'combined' : 'split';
  const pastInputs = form === 'combined' ? [past!.kv!] : form === 'split' ? [past!.k!, past!.v!] : [];
  const pastKeys: number = form === 'combined' ? past!.kv!.shape[3]! : form === 'split' ? past!.k!.shape[2]! : 0;
  const shape = [2, batch, kvHeads, pastKeys + newPos, dHead];
  const total = shape.reduce((a, c) => a * c, 1);
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const uniforms = [
    i(total), i(batch), i(kvHeads), i(pastKeys + newPos), i(dHead), i(pastKeys),
    ...[freshK, freshV].flatMap((x) => [i(x.offset), ...x.strides.map(i)]),
    ...tableUniforms(rotary, newPos),
  ];
  const inputs = [...pastInputs, freshK.tensor, freshV.tensor, ...(rotary ? [rotary.cos, rotary.sin] : [])];
  return runProgram('HeadlensKVAppend', appendBothProgram(shape, form, !!rotary), inputs, uniforms);
}
