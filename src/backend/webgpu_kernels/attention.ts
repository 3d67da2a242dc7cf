/**
 * Attention of a few query rows against every key in one dispatch: scores = q·k / scale, the causal /
 * sliding-window / padding mask, softmax over the keys and the ·V product, without writing the
 * [batch, head, query_pos, key_pos] scores or pattern anywhere. One workgroup per (batch, query row, head) walks
 * the keys in chunks of the workgroup's size with a running maximum and sum (the online softmax of Milakov &
 * Gimelshein 2018, "Online normalizer calculation for softmax", which flash attention builds on), so any number of
 * keys fits in a fixed amount of workgroup memory.
 *
 * Grouped-query attention reads key/value head ⌊head / (n_heads / n_kv_heads)⌋ directly (no repeated copies).
 * Queries, keys and values are read through strides, so the same program reads q out of the fused QKV matmul's
 * output, keys in the KV cache's layout [batch, kv_head, key_pos, d_head] or fresh ones [batch, pos, kv_head, d_head].
 *
 * The masks are those of src/model/transformer.ts: query row r sits at absolute position queryStart + r and sees
 * key t iff t ≤ queryStart + r, and (with a window W) queryStart + r − t < W, and (padded batches) key t of its row is
 * real. A query row that sees no key at all (a padding row) gets z = 0, as the unfused path's NaN → 0 pattern gives.
 */
import * as tf from '@tensorflow/tfjs';
import { assertFloat, dispatch1d, multiOutputActive, runProgram, runProgramMulti, wgslExtraOutputs, wgslWorkgroupReduce, WORKGROUP_INDEX, type WebGPUProgram } from './program.js';

/** A tensor read as [batch, pos, head, d_head] through strides (d_head contiguous), from a flat offset. */
export interface HeadView {
  tensor: tf.Tensor;
  offset: number;
  /** Element strides of batch, pos and head. */
  strides: [number, number, number];
}

/** A contiguous [batch, pos, head, d_head] tensor as a view. */
export function bphView(t: tf.Tensor): HeadView {
  const [, p, h, e] = t.shape;
  return { tensor: t, offset: 0, strides: [p * h * e, h * e, e] };
}

/** A contiguous [batch, head, pos, d_head] tensor (the KV cache's layout) as a view. */
export function bhpView(t: tf.Tensor): HeadView {
  const [, h, p, e] = t.shape;
  return { tensor: t, offset: 0, strides: [h * p * e, e, p * e] };
}

export interface DecodeAttentionOptions {
  batch: number;
  /** Query rows. */
  rows: number;
  heads: number;
  kvHeads: number;
  dHead: number;
  keys: number;
  /** Scores are divided by this. */
  scale: number;
  /** Absolute position of query row 0 (= keys − rows with a KV cache, 0 without). */
  queryStart: number;
  /** Sliding window (keys farther back than this are masked), or null. */
  window: number | null;
  /** [batch, keys], 1 for a real key and 0 for padding; absent: every key is real. */
  keyMask?: tf.Tensor;
  /**
   * Rotate q on the fly (src/backend/webgpu_kernels/rotary.ts's arithmetic) with these tables, [rows, rotary_dim]
   * or [batch, rows, rotary_dim]: for q read unrotated out of the QKV output (fusedAttention only).
   */
  rotary?: InlineRotary;
}

/** Rotary tables applied inside another kernel: cos and sin [pos, rotary_dim] or [batch, pos, rotary_dim]. */
export interface InlineRotary {
  cos: tf.Tensor;
  sin: tf.Tensor;
  rotaryDim: number;
}

/** WGSL: element i of a head (base: its first element in buffer X) rotated with table row tRow. */
export function rotateSnippet(fn: string, buffer: string): string {
  return `
fn ${fn}(base : i32, i : i32, tRow : i32) -> f32 {
  let a = ${buffer}[base + i];
  let rd = uniforms.rotaryDim;
  if (i >= rd) { return a; }
  let half = rd / 2;
  let t = tRow * rd + i;
  var other = 0.0;
  if (i < half) { other = -${buffer}[base + i + half]; } else { other = ${buffer}[base + i - half]; }
  return a * cosT[t] + other * sinT[t];
}`;
}

/**
 * What the per-row and the flash attention programs share: their inputs (q, k, v, the padding mask, the rotary
 * tables), the head of their uniforms (shapes, masks, scale, the three views' offsets and strides, the rotary
 * table's) and those uniforms' values; each program appends its own fields.
 */
export function attentionInputNames(o: DecodeAttentionOptions): string[] {
  return ['qIn', 'kIn', 'vIn', ...(o.keyMask ? ['keyMask'] : []), ...(o.rotary ? ['cosT', 'sinT'] : [])];
}

export const ATTENTION_UNIFORMS =
  'batch : i32, rows : i32, heads : i32, group : i32, keys : i32, queryStart : i32, window : i32, scale : f32, ' +
  'qOff : i32, qSb : i32, qSp : i32, qSh : i32, kOff : i32, kSb : i32, kSp : i32, kSh : i32, vOff : i32, vSb : i32, vSp : i32, vSh : i32, ' +
  'rotaryDim : i32, tableSb : i32, ';

export function attentionInputs(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): { inputs: tf.Tensor[]; uniforms: { type: 'int32' | 'float32'; data: number[] }[] } {
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  return {
    inputs: [q.tensor, k.tensor, v.tensor, ...(o.keyMask ? [o.keyMask] : []), ...(o.rotary ? [o.rotary.cos, o.rotary.sin] : [])],
    uniforms: [
      i(o.batch), i(o.rows), i(o.heads), i(o.heads / o.kvHeads), i(o.keys), i(o.queryStart), i(o.window ?? 0),
      { type: 'float32' as const, data: [o.scale] },
      ...[q, k, v].flatMap((x) => [i(x.offset), ...x.strides.map(i)]),
      ...tableUniforms(o.rotary, o.rows),
    ],
  };
}

const WG = 256;

/**
 * With `splits` > 1 each workgroup takes one of that many equal ranges of keys and writes its running maximum, sum
 * and unnormalised ·V ([batch·rows·heads, splits, 2 + d_head]); combineProgram merges them (flash-decoding:
 * a long cache is read by many workgroups at once, not by one per head).
 */
function attentionProgram(o: DecodeAttentionOptions, splits: number, withRows: false | 'both' | 'scores' = false): WebGPUProgram {
  if (withRows === 'both' && splits > 1) throw new Error('fused attention: the pattern only from an unsplit pass (a split pass writes the scores)');
  const E = o.dHead;
  const G = Math.floor(WG / E); // groups of E invocations that share the ·V sum of a chunk
  const padded = !!o.keyMask;
  const rot = !!o.rotary;
  const split = splits > 1;
  const outputShape = split ? [o.batch * o.rows * o.heads, splits, E + 2] : [o.batch, o.rows, o.heads, E];
  return {
    variableNames: attentionInputNames(o),
    outputShape,
    shaderKey: `hlDecodeAttention_${E}_${padded ? 'p' : 'np'}_${rot ? 'rot' : 'norot'}_${split ? 'split' : 'whole'}${withRows ? `_rows_${withRows}` : ''}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: dispatch1d(o.batch * o.rows * o.heads * splits),
    workgroupSize: [WG, 1, 1],
    uniforms: ATTENTION_UNIFORMS + 'splits : i32, splitKeys : i32, splitChunks : i32,',
    getUserCode: () => `
${withRows ? wgslExtraOutputs(attentionInputNames(o).length, withRows === 'both' ? ['scoresOut', 'patternOut'] : ['scoresOut']) : ''}
const E = ${E};
const G = ${G};
${rot ? rotateSnippet('rotQ', 'qIn') : ''}
const NONE = -3.0e38;
var<workgroup> qRow : array<f32, ${E}>;
var<workgroup> prob : array<f32, ${WG}>;
var<workgroup> red : array<f32, ${WG}>;

${wgslWorkgroupReduce('wgMax', WG, 'max(a, b)')}
${wgslWorkgroupReduce('wgSum', WG, 'a + b')}

fn main(index : i32) {
  let tid = i32(localId.x);
  let total = uniforms.batch * uniforms.rows * uniforms.heads * uniforms.splits;
  let wg = ${WORKGROUP_INDEX};
  let valid = wg < total;
  let ws = min(wg, total - 1);
  // the output ([batch, rows, heads, E], or per split) is laid out in workgroup order
  let w = ws / uniforms.splits;
  let part = ws % uniforms.splits;
  let keyStart = part * uniforms.splitKeys;
  let keyEnd = min(uniforms.keys, keyStart + uniforms.splitKeys);
  let h = w % uniforms.heads;
  let r = (w / uniforms.heads) % uniforms.rows;
  let bt = w / (uniforms.heads * uniforms.rows);
  let kvh = h / uniforms.group;
  if (tid < E) {
    ${rot ? 'qRow[tid] = rotQ(uniforms.qOff + bt * uniforms.qSb + r * uniforms.qSp + h * uniforms.qSh, tid, bt * uniforms.tableSb + r);' : 'qRow[tid] = qIn[uniforms.qOff + bt * uniforms.qSb + r * uniforms.qSp + h * uniforms.qSh + tid];'}
  }
  workgroupBarrier();
  let qAbs = uniforms.queryStart + r;
  let kBase = uniforms.kOff + bt * uniforms.kSb + kvh * uniforms.kSh;
  let vBase = uniforms.vOff + bt * uniforms.vSb + kvh * uniforms.vSh;
  let dim = tid % E;
  let grp = tid / E;
  let rowBase = ((bt * uniforms.heads + h) * uniforms.rows + r) * uniforms.keys;
  var m = NONE;
  var l = 0.0;
  var acc = 0.0;
  // a uniform trip count (the same for every split), so the barriers inside stay in uniform control flow
  for (var chunk = 0; chunk < uniforms.splitChunks; chunk++) {
    let c0 = keyStart + chunk * ${WG};
    let key = c0 + tid;
    var ok = key < keyEnd && key <= qAbs;
    if (uniforms.window > 0) { ok = ok && qAbs - key < uniforms.window; }
    ${padded ? 'if (ok) { ok = keyMask[bt * uniforms.keys + key] > 0.5; }' : ''}
    var s = NONE;
    if (ok) {
      let kRow = kBase + key * uniforms.kSp;
      var dot = 0.0;
      for (var i = 0; i < E; i++) { dot += qRow[i] * kIn[kRow + i]; }
      s = dot / uniforms.scale;
    }
    ${withRows ? `// hook_attn_scores [batch, head, row, key]: masked keys −Infinity (a split writes its own range of keys)
    if (valid && key < keyEnd) { if (ok) { scoresOut[rowBase + key] = s; } else { scoresOut[rowBase + key] = -uniforms.INFINITY; } }` : ''}
    let mNew = max(m, wgMax(s, tid));
    var p = 0.0;
    if (ok) { p = exp(s - mNew); }
    prob[tid] = p;
    let chunkSum = wgSum(p, tid);
    if (mNew > NONE) {
      var corr = 0.0;
      if (m > NONE) { corr = exp(m - mNew); }
      l = l * corr + chunkSum;
      acc = acc * corr;
      if (grp < G) {
        let n = min(${WG}, keyEnd - c0);
        for (var j = grp; j < n; j += G) {
          let pj = prob[j];
          if (pj != 0.0) { acc += pj * vIn[vBase + (c0 + j) * uniforms.vSp + dim]; }
        }
      }
      m = mNew;
    }
    workgroupBarrier();
  }
  red[tid] = acc;
  workgroupBarrier();
  if (valid && tid < E) {
    var sum = 0.0;
    for (var g = 0; g < G; g++) { sum += red[g * E + tid]; }
    ${split ? `result[ws * (E + 2) + 2 + tid] = sum;
    if (tid == 0) {
      result[ws * (E + 2)] = m;
      result[ws * (E + 2) + 1] = l;
    }` : `var out = 0.0;
    if (l > 0.0) { out = sum / l; }
    result[w * E + tid] = out;`}
  }
  ${withRows === 'both' ? `// hook_pattern from the scores this invocation wrote (the same keys as above), the row's final max and sum;
  // a row that sees no key is 0
  if (valid) {
    for (var key = tid; key < uniforms.keys; key += ${WG}) {
      let s = scoresOut[rowBase + key];
      var p = 0.0;
      if (s > NONE && l > 0.0) { p = exp(s - m) / l; }
      patternOut[rowBase + key] = p;
    }
  }` : ''}
}
`,
  };
}

/**
 * hook_z [batch, rows, head, d_head] of attention: softmax(q·kᵀ / scale + mask)·v for the query rows in `q`
 * against the `keys` keys and values, without the scores or pattern ever being written.
 */
export function fusedAttention(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): tf.Tensor4D {
  checkAttention(q, k, v, o);
  const splits = attentionSplitCount(o.keys);
  const { inputs, uniforms } = splitPassInputs(q, k, v, o, splits);
  if (splits === 1) return runProgram('HeadlensAttention', attentionProgram(o, 1), inputs, uniforms) as tf.Tensor4D;
  const parts = runProgram('HeadlensAttention', attentionProgram(o, splits), inputs, uniforms);
  try {
    return combine(parts, o, splits);
  } finally {
    parts.dispose();
  }
}

/** Key ranges the attention pass reads a cache of `keys` keys in: 1 below attentionSplits.minKeys, else at most attentionSplits.max. */
export function attentionSplitCount(keys: number): number {
  return keys >= attentionSplits.minKeys ? Math.min(attentionSplits.max, Math.ceil(keys / attentionSplits.keysPerSplit)) : 1;
}

/** The attention pass' inputs and uniforms for `splits` ranges of keys, each a whole number of WG-key chunks. */
function splitPassInputs(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions, splits: number) {
  const splitKeys = Math.ceil(o.keys / splits / WG) * WG;
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const shared = attentionInputs(q, k, v, o);
  return { inputs: shared.inputs, uniforms: [...shared.uniforms, i(splits), i(splitKeys), i(splitKeys / WG)] };
}

/** z [batch, rows, head, d_head] from a split pass' ranges (combineProgram). */
function combine(parts: tf.Tensor, o: DecodeAttentionOptions, splits: number): tf.Tensor4D {
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  return runProgram('HeadlensAttentionCombine', combineProgram(o, splits), [parts], [i(o.batch * o.rows * o.heads * o.dHead), i(splits), i(o.dHead)]) as tf.Tensor4D;
}

/** The inputs the per-row attention kernel takes: float32 views, d_head within a workgroup, whole GQA groups. */
function checkAttention(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): void {
  for (const [t, n] of [[q.tensor, 'q'], [k.tensor, 'k'], [v.tensor, 'v']] as const) assertFloat(t, n);
  if (o.dHead > WG) throw new Error(`fused attention: d_head ${o.dHead} is more than ${WG}`);
  if (o.heads % o.kvHeads !== 0) throw new Error(`fused attention: ${o.heads} heads are not a multiple of ${o.kvHeads} key/value heads`);
}

/**
 * fusedAttention that also writes hook_attn_scores and hook_pattern [batch, head, rows, keys] of every query row, for a
 * cache that keeps them (a kernel with three outputs: needs multiOutputActive(), program.ts). The pattern is the
 * softmax with the row's maximum and sum as the online softmax found them. Undefined where the keys are many enough
 * for the split pass (attentionSplits), which the caller then runs with fusedAttentionRows.
 */
export function fusedAttentionWithRows(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): { z: tf.Tensor4D; scores: tf.Tensor4D; pattern: tf.Tensor4D } | undefined {
  checkAttention(q, k, v, o);
  if (o.keys >= attentionSplits.minKeys) return undefined;
  const { inputs, uniforms } = splitPassInputs(q, k, v, o, 1);
  const rowsShape = [o.batch, o.heads, o.rows, o.keys];
  const [z, scores, pattern] = runProgramMulti('HeadlensAttentionWithRows', attentionProgram(o, 1, 'both'), inputs, uniforms, [rowsShape, rowsShape]);
  return { z: z as tf.Tensor4D, scores: scores as tf.Tensor4D, pattern: pattern as tf.Tensor4D };
}

/**
 * When a KV cache is long enough, attention reads it in this many key ranges at once (one workgroup per query row,
 * head and range) and merges the ranges in a second dispatch: one workgroup per head alone would leave most of a
 * GPU idle while it walks 16K keys. keysPerSplit is rounded up to whole chunks of 256 keys.
 */
export const attentionSplits = { minKeys: 2048, keysPerSplit: 512, max: 64 };

/** Merges the splits' (max, sum, ·V) into z [batch, rows, heads, d_head]: the online softmax's combine step. */
function combineProgram(o: DecodeAttentionOptions, splits: number): WebGPUProgram {
  const outputShape = [o.batch, o.rows, o.heads, o.dHead];
  const size = outputShape.reduce((a, c) => a * c, 1);
  return {
    variableNames: ['parts'],
    outputShape,
    shaderKey: 'hlAttentionCombine',
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: [Math.ceil(size / 64), 1, 1],
    workgroupSize: [64, 1, 1],
    uniforms: 'total : i32, splits : i32, dHead : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index >= uniforms.total) { return; }
  let w = index / uniforms.dHead;
  let d = index % uniforms.dHead;
  let stride = uniforms.dHead + 2;
  let base = w * uniforms.splits * stride;
  var m = -3.0e38;
  for (var s = 0; s < uniforms.splits; s++) { m = max(m, parts[base + s * stride]); }
  var l = 0.0;
  var acc = 0.0;
  for (var s = 0; s < uniforms.splits; s++) {
    let ms = parts[base + s * stride];
    if (ms > -3.0e38) {
      let f = exp(ms - m);
      l += parts[base + s * stride + 1] * f;
      acc += parts[base + s * stride + 2 + d] * f;
    }
  }
  var out = 0.0;
  if (l > 0.0) { out = acc / l; }
  result[index] = out;
}
`,
  };
}

/** rotaryDim and the table's batch stride (0: one table row per position, shared by the batch). */
export function tableUniforms(rotary: InlineRotary | undefined, pos: number) {
  return [
    { type: 'int32' as const, data: [rotary?.rotaryDim ?? 0] },
    { type: 'int32' as const, data: [rotary && rotary.cos.rank === 3 ? pos : 0] },
  ];
}

/** Largest d_head the fused attention takes (one workgroup of invocations per query row and head). */
export const FUSED_ATTENTION_MAX_D_HEAD = WG;

const WG_ROWS = 128;

function attentionRowsProgram(o: DecodeAttentionOptions, nRows: number, pattern: boolean, listed: boolean, alsoScores = false): WebGPUProgram {
  const E = o.dHead;
  const padded = !!o.keyMask;
  const inputs = ['qIn', 'kIn', ...(padded ? ['keyMask'] : []), ...(listed ? ['rowList'] : [])];
  return {
    variableNames: inputs,
    outputShape: [o.batch, o.heads, nRows, o.keys],
    shaderKey: `hlAttentionRows_${E}_${pattern ? 'pattern' : 'scores'}_${padded ? 'p' : 'np'}_${listed ? 'list' : 'range'}${alsoScores ? '_andScores' : ''}`,
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: dispatch1d(o.batch * o.heads * nRows),
    workgroupSize: [WG_ROWS, 1, 1],
    uniforms:
      'batch : i32, nRows : i32, heads : i32, group : i32, keys : i32, queryStart : i32, window : i32, scale : f32, rowStart : i32, ' +
      'qOff : i32, qSb : i32, qSp : i32, qSh : i32, kOff : i32, kSb : i32, kSp : i32, kSh : i32,',
    getUserCode: () => `
${alsoScores ? wgslExtraOutputs(inputs.length, ['scoresOut']) : ''}
const E = ${E};
const NONE = -3.0e38;
var<workgroup> qRow : array<f32, ${E}>;
var<workgroup> red : array<f32, ${WG_ROWS}>;

fn wgReduce(v : f32, tid : i32, isMax : bool) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${WG_ROWS / 2}; s > 0; s = s >> 1) {
    if (tid < s) {
      if (isMax) { red[tid] = max(red[tid], red[tid + s]); } else { red[tid] = red[tid] + red[tid + s]; }
    }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

fn main(index : i32) {
  let tid = i32(localId.x);
  let total = uniforms.batch * uniforms.heads * uniforms.nRows;
  let wg = ${WORKGROUP_INDEX};
  let valid = wg < total;
  let w = min(wg, total - 1);
  // the output [batch, heads, rows, keys] is laid out in workgroup order
  let ri = w % uniforms.nRows;
  let h = (w / uniforms.nRows) % uniforms.heads;
  let bt = w / (uniforms.nRows * uniforms.heads);
  let r = ${listed ? 'rowList[ri]' : 'uniforms.rowStart + ri'};
  let kvh = h / uniforms.group;
  for (var i = tid; i < E; i += ${WG_ROWS}) {
    qRow[i] = qIn[uniforms.qOff + bt * uniforms.qSb + r * uniforms.qSp + h * uniforms.qSh + i];
  }
  workgroupBarrier();
  let qAbs = uniforms.queryStart + r;
  let kBase = uniforms.kOff + bt * uniforms.kSb + kvh * uniforms.kSh;
  let outBase = w * uniforms.keys;
  var mx = NONE;
  for (var t = tid; t < uniforms.keys; t += ${WG_ROWS}) {
    var ok = t <= qAbs;
    if (uniforms.window > 0) { ok = ok && qAbs - t < uniforms.window; }
    ${padded ? 'if (ok) { ok = keyMask[bt * uniforms.keys + t] > 0.5; }' : ''}
    var s = NONE;
    if (ok) {
      let kRow = kBase + t * uniforms.kSp;
      var dot = 0.0;
      for (var i = 0; i < E; i++) { dot += qRow[i] * kIn[kRow + i]; }
      s = dot / uniforms.scale;
    }
    mx = max(mx, s);
    ${pattern ? 'if (valid) { result[outBase + t] = s; }' : 'if (valid) { if (ok) { result[outBase + t] = s; } else { result[outBase + t] = -uniforms.INFINITY; } }'}
    ${alsoScores ? 'if (valid) { if (ok) { scoresOut[outBase + t] = s; } else { scoresOut[outBase + t] = -uniforms.INFINITY; } }' : ''}
  }
  ${pattern ? `let m = wgReduce(mx, tid, true);
  var sum = 0.0;
  for (var t = tid; t < uniforms.keys; t += ${WG_ROWS}) {
    let s = result[outBase + t];
    var p = 0.0;
    if (s > NONE) { p = exp(s - m); }
    if (valid) { result[outBase + t] = p; }
    sum += p;
  }
  let l = wgReduce(sum, tid, false);
  for (var t = tid; t < uniforms.keys; t += ${WG_ROWS}) {
    var p = 0.0;
    if (l > 0.0) { p = result[outBase + t] / l; }
    if (valid) { result[outBase + t] = p; }
  }` : ''}
}
`,
  };
}

/**
 * hook_attn_scores (`pattern` false: scaled scores, masked keys −Infinity) or hook_pattern (softmax; a row that sees
 * no key is 0, as the unfused path's NaN → 0) for the query rows `rows` (all when absent) of the same attention
 * fusedAttention computes: [batch, head, rows, keys]. For when a read-only cache keeps them; the forward itself
 * goes on with fusedAttention's z.
 */
export function fusedAttentionRows(q: HeadView, k: HeadView, o: DecodeAttentionOptions, pattern: boolean, rows?: number[]): tf.Tensor4D {
  return attentionRows(q, k, o, pattern, rows, false)[0];
}

/**
 * hook_attn_scores and hook_pattern of the same query rows from one dispatch (a kernel with two outputs: needs
 * multiOutputActive(), program.ts): { scores, pattern }, each [batch, head, rows, keys] as fusedAttentionRows gives it.
 */
export function fusedAttentionScoresAndPattern(q: HeadView, k: HeadView, o: DecodeAttentionOptions, rows?: number[]): { scores: tf.Tensor4D; pattern: tf.Tensor4D } {
  const [pattern, scores] = attentionRows(q, k, o, true, rows, true);
  return { scores: scores!, pattern };
}

function attentionRows(q: HeadView, k: HeadView, o: DecodeAttentionOptions, pattern: boolean, rows: number[] | undefined, alsoScores: boolean): [tf.Tensor4D, tf.Tensor4D?] {
  for (const [t, n] of [[q.tensor, 'q'], [k.tensor, 'k']] as const) assertFloat(t, n);
  if (o.heads % o.kvHeads !== 0) throw new Error(`fused attention: ${o.heads} heads are not a multiple of ${o.kvHeads} key/value heads`);
  const list = rows ?? Array.from({ length: o.rows }, (_, r) => r);
  const contiguous = list.every((r, j) => r === list[0] + j);
  const i = (n: number) => ({ type: 'int32' as const, data: [n] });
  const uniforms = [
    i(o.batch), i(list.length), i(o.heads), i(o.heads / o.kvHeads), i(o.keys), i(o.queryStart), i(o.window ?? 0),
    { type: 'float32' as const, data: [o.scale] }, i(list[0]),
    ...[q, k].flatMap((x) => [i(x.offset), ...x.strides.map(i)]),
  ];
  const rowList = contiguous ? undefined : tf.tensor1d(list, 'int32');
  try {
    const inputs = [q.tensor, k.tensor, ...(o.keyMask ? [o.keyMask] : []), ...(rowList ? [rowList] : [])];
    const program = attentionRowsProgram(o, list.length, pattern, !contiguous, alsoScores);
    if (alsoScores) {
      const [p, sc] = runProgramMulti('HeadlensAttentionScoresPattern', program, inputs, uniforms, [[o.batch, o.heads, list.length, o.keys]]);
      return [p as tf.Tensor4D, sc as tf.Tensor4D];
    }
    return [runProgram(pattern ? 'HeadlensAttentionPattern' : 'HeadlensAttentionScores', program, inputs, uniforms) as tf.Tensor4D];
  } finally {
    rowList?.dispose();
  }
}

/**
 * hook_z together with hook_attn_scores and / or hook_pattern of every query row [batch, head, rows, keys], for a
 * long KV cache (at least attentionSplits.minKeys keys): the split pass of fusedAttention also writes each key's
 * scaled score (masked keys −Infinity) beside its range's maximum and sum, the combine step makes z, and the
 * pattern is exp(score − max) / sum with the row's maximum and sum merged from the splits (normaliseProgram). The
 * keys are read once, by as many workgroups as fusedAttention's, where fusedAttentionRows reads them again with
 * one workgroup per row and head (at 16K keys and 32 heads, 32 workgroups). Rotary q inside the kernel as
 * fusedAttention. Undefined where the keys fit one range (attentionSplitCount 1), or without multiOutputActive() (two
 * outputs).
 */
export function fusedAttentionSplitRows(
  q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions, want: { scores: boolean; pattern: boolean },
): { z: tf.Tensor4D; scores?: tf.Tensor4D; pattern?: tf.Tensor4D } | undefined {
  checkAttention(q, k, v, o);
  const splits = attentionSplitCount(o.keys);
  if (splits === 1 || !multiOutputActive() || !(want.scores || want.pattern)) return undefined;
  const { inputs, uniforms } = splitPassInputs(q, k, v, o, splits);
  const rowsShape = [o.batch, o.heads, o.rows, o.keys];
  const [parts, scores] = runProgramMulti('HeadlensAttentionWithScores', attentionProgram(o, splits, 'scores'), inputs, uniforms, [rowsShape]);
  try {
    const z = combine(parts, o, splits);
    const i = (n: number) => ({ type: 'int32' as const, data: [n] });
    const pattern = want.pattern ? (runProgram('HeadlensAttentionNormalise', normaliseProgram(o, splits), [parts, scores], [i(o.keys), i(splits), i(o.dHead), i(Math.ceil(o.keys / NORM_KEYS)), i(o.heads), i(o.rows), i(o.batch * o.heads * o.rows)]) as tf.Tensor4D) : undefined;
    return { z, pattern, ...(want.scores ? { scores: scores as tf.Tensor4D } : {}) };
  } finally {
    parts.dispose();
    if (!want.scores) scores.dispose();
  }
}

/** Keys a workgroup of normaliseProgram turns into pattern values (4 a thread). */
const NORM_KEYS = WG * 4;

/**
 * hook_pattern [batch, head, rows, keys] from the split pass' scores and its ranges' (max, sum): one workgroup per
 * NORM_KEYS keys of a row and head merges the ranges' maxima and sums (at most attentionSplits.max ≤ WG of them) as
 * combineProgram does, then writes exp(score − max) / sum; masked keys and rows that see no key are 0.
 */
function normaliseProgram(o: DecodeAttentionOptions, splits: number): WebGPUProgram {
  if (splits > WG) throw new Error(`fused attention: ${splits} key ranges are more than the ${WG} a workgroup merges`);
  const outputShape = [o.batch, o.heads, o.rows, o.keys];
  const chunks = Math.ceil(o.keys / NORM_KEYS);
  return {
    variableNames: ['parts', 'scores'],
    outputShape,
    shaderKey: 'hlAttentionNormalise',
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: dispatch1d(o.batch * o.heads * o.rows * chunks),
    workgroupSize: [WG, 1, 1],
    uniforms: 'keys : i32, splits : i32, dHead : i32, chunks : i32, heads : i32, rows : i32, total : i32,',
    getUserCode: () => `
const NONE = -3.0e38;
var<workgroup> red : array<f32, ${WG}>;
${wgslWorkgroupReduce('wgMax', WG, 'max(a, b)')}
${wgslWorkgroupReduce('wgSum', WG, 'a + b')}

fn main(index : i32) {
  let tid = i32(localId.x);
  let wg = ${WORKGROUP_INDEX};
  // the output row ([batch, head, row]) and its chunk of keys; the parts are laid out [batch, row, head] (the split pass)
  let rowIndex = wg / uniforms.chunks;
  let chunk = wg % uniforms.chunks;
  let r = rowIndex % uniforms.rows;
  let h = (rowIndex / uniforms.rows) % uniforms.heads;
  let bt = rowIndex / (uniforms.heads * uniforms.rows);
  let stride = uniforms.dHead + 2;
  let base = ((bt * uniforms.rows + r) * uniforms.heads + h) * uniforms.splits * stride;
  var ms = NONE;
  if (tid < uniforms.splits) { ms = parts[base + tid * stride]; }
  let m = wgMax(ms, tid);
  var ls = 0.0;
  if (tid < uniforms.splits && ms > NONE) { ls = parts[base + tid * stride + 1] * exp(ms - m); }
  let l = wgSum(ls, tid);
  let rowBase = rowIndex * uniforms.keys;
  for (var j = 0; j < 4; j++) {
    let key = chunk * ${NORM_KEYS} + j * ${WG} + tid;
    if (key < uniforms.keys && rowIndex < uniforms.total) {
      let s = scores[rowBase + key];
      var p = 0.0;
      if (s > NONE && l > 0.0) { p = exp(s - m) / l; }
      result[rowBase + key] = p;
    }
  }
}
`,
  };
}
