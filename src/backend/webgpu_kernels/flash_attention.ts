/**
 * Attention of many query rows at once (a prefill) in one dispatch, tiled as FlashAttention-2 tiles it (Dao 2023,
 * "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning"): a workgroup owns a tile of T
 * query rows (T = 64, or 32 where the device has less workgroup memory) of one (batch, head) and walks the key
 * tiles its rows can see, T keys at a time. For each key tile it forms the T×T scores in workgroup memory (q and k
 * staged 16 dimensions at a time), masks them, and folds them into each row's running maximum, sum and unnormalised
 * ·V accumulator (the online softmax of Milakov & Gimelshein 2018); z = accumulator / sum is written once at the
 * end. So every key and value is read once per T query rows instead of once per row (fusedAttention's workgroup per
 * row), and the [batch, head, query_pos, key_pos] scores are never written. Causal key tiles above the diagonal,
 * and with a sliding window those wholly before it, are skipped: the loop covers only the tiles the rows can see.
 *
 * Everything else is fusedAttention's (attention.ts), so the fused path can take either: the same options, q, k
 * and v read through the same HeadView strides (q out of the fused QKV output, keys and values in the KV cache's
 * layout or fresh), GQA read from key/value head ⌊head / (n_heads / n_kv_heads)⌋, queryStart, the sliding window,
 * the padded batch's key mask (a row that sees no key gets z = 0, as the unfused path's NaN → 0 pattern gives),
 * scores divided by the scale, inline rotary of q, d_head up to FUSED_ATTENTION_MAX_D_HEAD (256). Float32
 * throughout. Unlike FlashAttention-2 on CUDA there are no tensor cores or warp shuffles here: the products are
 * float32 FMAs of each invocation's 4×4 (T = 64) block of scores and its rows' slice of the accumulator.
 */
import * as tf from '@tensorflow/tfjs';
import { ATTENTION_UNIFORMS, attentionInputNames, attentionInputs, rotateSnippet, type DecodeAttentionOptions, type HeadView } from './attention.js';
import { assertFloat, dispatch1d, runProgram, runProgramMulti, wgslExtraOutputs, WORKGROUP_INDEX, type WebGPUProgram } from './program.js';

/**
 * minRows: the fused path hands attention of at least this many new query rows to flashAttention, fewer to
 * fusedAttention. Measured on an H100 (bench/results/h100-2026-12-07-s4/flash_bench.json, llama-7b heads after a
 * 4,096-key cache): flash took 12.7 / 12.5 / 12.4 ms for 16 / 32 / 64 rows, the per-row kernel 8.2 / 15.1 / 24.7 ms;
 * the crossover lies between 16 and 32 rows, hence 32. Below it a flash workgroup computes mostly padding rows, and
 * with only batch × heads × tiles workgroups each walking every key, it leaves most of a GPU idle where fusedAttention
 * spreads a long cache over many workgroups (attentionSplits).
 * tile: the query and key tile, 'auto' = 64 where the device's workgroup memory holds it (≈29 KiB), else 32 (≈11 KiB).
 */
export const flashAttention = { minRows: 32, tile: 'auto' as 'auto' | 32 | 64 };

const WG = 256; // 16 × 16 invocations
const CHUNK = 16; // dimensions of q and k staged at a time

/** Bytes of workgroup memory a tile of T needs: the scores, q and k (or v) chunks, each row's (m, l) and its reductions. */
function sharedBytes(T: number): number {
  return 4 * (T * T + 2 * CHUNK * (T + 1) + 2 * T + 16 * T);
}

function tileFor(): 32 | 64 {
  if (flashAttention.tile !== 'auto') return flashAttention.tile;
  const limits = (tf.backend() as unknown as { device?: { limits?: { maxComputeWorkgroupStorageSize?: number } } }).device?.limits;
  return (limits?.maxComputeWorkgroupStorageSize ?? 16384) >= sharedBytes(64) ? 64 : 32;
}

function flashProgram(o: DecodeAttentionOptions, T: number, withRows = false): WebGPUProgram {
  const E = o.dHead;
  const RP = T / 16; // rows (and keys) of the scores each invocation holds
  const DP = Math.ceil(E / 16); // dimensions of the accumulator each invocation holds, per row
  const EP = DP * 16; // d_head rounded up to whole chunks
  const KVBUF = CHUNK * (T + 1);
  const KC = Math.floor(KVBUF / EP); // keys of v staged at a time
  const padded = !!o.keyMask;
  const rot = !!o.rotary;
  const nTiles = Math.ceil(o.rows / T);
  const outputShape = [o.batch, o.rows, o.heads, E];
  return {
    variableNames: attentionInputNames(o),
    outputShape,
    shaderKey: `hlFlashAttention_${E}_${T}_${padded ? 'p' : 'np'}_${rot ? 'rot' : 'norot'}${withRows ? '_rows' : ''}`,
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: dispatch1d(o.batch * o.heads * nTiles),
    workgroupSize: [WG, 1, 1],
    uniforms: ATTENTION_UNIFORMS + 'nTiles : i32,',
    getUserCode: () => `
${withRows ? wgslExtraOutputs(attentionInputNames(o).length, ['scoresOut', 'patternOut']) : ''}
const E = ${E};
const T = ${T};
const RP = ${RP};
const DP = ${DP};
const EP = ${EP};
const KC = ${KC};
const NONE = -3.0e38;
${rot ? rotateSnippet('rotQ', 'qIn') : ''}
var<workgroup> sc : array<f32, ${T * T}>;      // the tile's scores, then its probabilities [row][key]
var<workgroup> qs : array<f32, ${CHUNK * (T + 1)}>; // q chunk [dim][row], rows padded to T + 1
var<workgroup> kvs : array<f32, ${KVBUF}>;     // k chunk [dim][key] (padded as qs), or v [key][dim] for KC keys
var<workgroup> mRow : array<f32, ${T}>;
var<workgroup> lRow : array<f32, ${T}>;
var<workgroup> red : array<f32, ${16 * T}>;   // per row, one value from each of the 16 invocations sharing it
var<workgroup> span : vec2<i32>;

fn main(index : i32) {
  let tid = i32(localId.x);
  let tx = tid % 16;
  let ty = tid / 16;
  let total = uniforms.batch * uniforms.heads * uniforms.nTiles;
  let wg = ${WORKGROUP_INDEX};
  let w = min(wg, total - 1);
  // the query tiles of one (batch, head) are neighbours, the last (the most keys under a causal mask) first
  let qt = uniforms.nTiles - 1 - w % uniforms.nTiles;
  let h = (w / uniforms.nTiles) % uniforms.heads;
  let bt = w / (uniforms.nTiles * uniforms.heads);
  let kvh = h / uniforms.group;
  let r0 = qt * T;
  let rEnd = min(uniforms.rows, r0 + T);
  if (tid == 0) {
    // the key tiles some row of this tile sees: up to the last row's position, from the first row's window
    let last = min(uniforms.keys - 1, uniforms.queryStart + rEnd - 1);
    var first = 0;
    if (uniforms.window > 0) { first = max(0, uniforms.queryStart + r0 - uniforms.window + 1); }
    var lo = first / T;
    var hi = last / T + 1;
    if (wg >= total || last < first) { hi = lo; } // a workgroup past the end (a folded dispatch), or nothing visible
    span = vec2<i32>(lo, hi);
  }
  if (tid < T) {
    mRow[tid] = NONE;
    lRow[tid] = 0.0;
  }
  // (workgroupUniformLoad: the loop's bounds are the same for every invocation, so its barriers are allowed)
  let range = workgroupUniformLoad(&span);
  let qBase = uniforms.qOff + bt * uniforms.qSb + h * uniforms.qSh;
  let kBase = uniforms.kOff + bt * uniforms.kSb + kvh * uniforms.kSh;
  let vBase = uniforms.vOff + bt * uniforms.vSb + kvh * uniforms.vSh;
  var acc : array<f32, ${RP * DP}>;
  for (var i = 0; i < RP * DP; i++) { acc[i] = 0.0; }

  for (var kt = range.x; kt < range.y; kt++) {
    let c0 = kt * T;
    // scores of rows ty + 16·i against keys tx + 16·j, summed over q·k 16 dimensions at a time
    var s : array<f32, ${RP * RP}>;
    for (var i = 0; i < RP * RP; i++) { s[i] = 0.0; }
    for (var e0 = 0; e0 < E; e0 += ${CHUNK}) {
      for (var n = tid; n < ${CHUNK * T}; n += ${WG}) {
        let e = n % ${CHUNK};
        let rr = n / ${CHUNK};
        let r = r0 + rr;
        let t = c0 + rr;
        var qv = 0.0;
        if (r < uniforms.rows && e0 + e < E) {
          ${rot ? 'qv = rotQ(qBase + r * uniforms.qSp, e0 + e, bt * uniforms.tableSb + r);' : 'qv = qIn[qBase + r * uniforms.qSp + e0 + e];'}
        }
        qs[e * (T + 1) + rr] = qv;
        var kv = 0.0;
        if (t < uniforms.keys && e0 + e < E) { kv = kIn[kBase + t * uniforms.kSp + e0 + e]; }
        kvs[e * (T + 1) + rr] = kv;
      }
      workgroupBarrier();
      for (var e = 0; e < ${CHUNK}; e++) {
        var qr : array<f32, RP>;
        for (var i = 0; i < RP; i++) { qr[i] = qs[e * (T + 1) + ty + 16 * i]; }
        for (var j = 0; j < RP; j++) {
          let kj = kvs[e * (T + 1) + tx + 16 * j];
          for (var i = 0; i < RP; i++) { s[i * RP + j] = fma(qr[i], kj, s[i * RP + j]); }
        }
      }
      workgroupBarrier();
    }
    // masked and scaled scores; each invocation's maximum of its keys for each of its rows
    for (var i = 0; i < RP; i++) {
      let rr = ty + 16 * i;
      let r = r0 + rr;
      let qAbs = uniforms.queryStart + r;
      var mx = NONE;
      for (var j = 0; j < RP; j++) {
        let t = c0 + tx + 16 * j;
        var ok = r < uniforms.rows && t < uniforms.keys && t <= qAbs;
        if (uniforms.window > 0) { ok = ok && qAbs - t < uniforms.window; }
        ${padded ? 'if (ok) { ok = keyMask[bt * uniforms.keys + t] > 0.5; }' : ''}
        var v = NONE;
        if (ok) { v = s[i * RP + j] / uniforms.scale; }
        s[i * RP + j] = v;
        mx = max(mx, v);${withRows ? `
        // hook_attn_scores [batch, head, row, key], masked keys −Infinity
        if (r < uniforms.rows && t < uniforms.keys) {
          var out = -uniforms.INFINITY;
          if (ok) { out = v; }
          scoresOut[((bt * uniforms.heads + h) * uniforms.rows + r) * uniforms.keys + t] = out;
        }` : ''}
      }
      red[rr * 16 + tx] = mx;
    }
    workgroupBarrier();
    // each row's new maximum over the 16 invocations that share it; the accumulator rescaled to it
    var mOld : array<f32, RP>;
    var mNew : array<f32, RP>;
    for (var i = 0; i < RP; i++) {
      let rr = ty + 16 * i;
      mOld[i] = mRow[rr];
      var mx = mOld[i];
      for (var x = 0; x < 16; x++) { mx = max(mx, red[rr * 16 + x]); }
      mNew[i] = mx;
      var corr = 1.0;
      if (mOld[i] > NONE) { corr = exp(mOld[i] - mx); }
      for (var d = 0; d < DP; d++) { acc[i * DP + d] *= corr; }
    }
    workgroupBarrier();
    // probabilities (unnormalised) in place of the scores, and each invocation's part of each row's sum
    for (var i = 0; i < RP; i++) {
      let rr = ty + 16 * i;
      var sum = 0.0;
      for (var j = 0; j < RP; j++) {
        let v = s[i * RP + j];
        var p = 0.0;
        if (v > NONE) { p = exp(v - mNew[i]); }
        sc[rr * T + tx + 16 * j] = p;
        sum += p;
      }
      red[rr * 16 + tx] = sum;
    }
    workgroupBarrier();
    if (tx == 0) {
      for (var i = 0; i < RP; i++) {
        let rr = ty + 16 * i;
        var sum = 0.0;
        for (var x = 0; x < 16; x++) { sum += red[rr * 16 + x]; }
        var corr = 1.0;
        if (mOld[i] > NONE) { corr = exp(mOld[i] - mNew[i]); }
        lRow[rr] = lRow[rr] * corr + sum;
        mRow[rr] = mNew[i];
      }
    }
    // ·V, KC keys of v staged at a time: rows ty + 16·i, dimensions tx + 16·d
    for (var k0 = 0; k0 < T; k0 += KC) {
      for (var n = tid; n < KC * EP; n += ${WG}) {
        let kk = n / EP;
        let e = n % EP;
        let t = c0 + k0 + kk;
        var vv = 0.0;
        if (k0 + kk < T && t < uniforms.keys && e < E) { vv = vIn[vBase + t * uniforms.vSp + e]; }
        kvs[n] = vv;
      }
      workgroupBarrier();
      for (var kk = 0; kk < KC; kk++) {
        if (k0 + kk < T) {
          var p : array<f32, RP>;
          for (var i = 0; i < RP; i++) { p[i] = sc[(ty + 16 * i) * T + k0 + kk]; }
          for (var d = 0; d < DP; d++) {
            let vd = kvs[kk * EP + tx + 16 * d];
            for (var i = 0; i < RP; i++) { acc[i * DP + d] = fma(p[i], vd, acc[i * DP + d]); }
          }
        }
      }
      workgroupBarrier();
    }
  }
${withRows ? `  // hook_pattern from the scores the tiles above wrote and each row's final maximum and sum; keys of tiles the rows
  // never reached (above the diagonal, before the window) get scores −Infinity and probability 0, as does a row that
  // sees no key
  storageBarrier();
  if (wg < total) {
    let seen0 = range.x * T;
    let seen1 = range.y * T;
    for (var n = tid; n < T * uniforms.keys; n += ${WG}) {
      let rr = n / uniforms.keys;
      let t = n % uniforms.keys;
      let r = r0 + rr;
      if (r < uniforms.rows) {
        let at = ((bt * uniforms.heads + h) * uniforms.rows + r) * uniforms.keys + t;
        var p = 0.0;
        if (t >= seen0 && t < seen1) {
          let sv = scoresOut[at];
          let l = lRow[rr];
          if (sv > NONE && l > 0.0) { p = exp(sv - mRow[rr]) / l; }
        } else {
          scoresOut[at] = -uniforms.INFINITY;
        }
        patternOut[at] = p;
      }
    }
  }
` : ''}  if (wg >= total) { return; }
  for (var i = 0; i < RP; i++) {
    let rr = ty + 16 * i;
    let r = r0 + rr;
    if (r < uniforms.rows) {
      let l = lRow[rr];
      for (var d = 0; d < DP; d++) {
        let e = tx + 16 * d;
        if (e < E) {
          var out = 0.0;
          if (l > 0.0) { out = acc[i * DP + d] / l; }
          result[((bt * uniforms.rows + r) * uniforms.heads + h) * E + e] = out;
        }
      }
    }
  }
}
`,
  };
}

/**
 * hook_z [batch, rows, head, d_head]: softmax(q·kᵀ / scale + mask)·v for the query rows in `q` against the `keys`
 * keys and values, the same as fusedAttention (same views and options), tiled for many query rows.
 */
export function flashAttentionZ(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): tf.Tensor4D {
  const { T, inputs, uniforms } = flashInputs(q, k, v, o);
  return runProgram('HeadlensFlashAttention', flashProgram(o, T), inputs, uniforms) as tf.Tensor4D;
}

/**
 * flashAttentionZ that also writes hook_attn_scores and hook_pattern [batch, head, rows, keys] of every query row,
 * for a cache that keeps them (three outputs: needs multiOutputActive()). Each key tile's masked, scaled scores are
 * written as the tile is folded in; once the row's maximum and sum are final, the workgroup turns its rows' scores
 * into the pattern. So a prefill's full cache costs one pass over the keys, tiled, not a second per-row pass
 * (fusedAttentionWithRows: one workgroup per row and head, each reading every key of its head).
 */
export function flashAttentionWithRows(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions): { z: tf.Tensor4D; scores: tf.Tensor4D; pattern: tf.Tensor4D } {
  if (o.rotary) throw new Error('flash attention with rows: q must come rotated (the cache keeps hook_rot_q)');
  const { T, inputs, uniforms } = flashInputs(q, k, v, o);
  const rowsShape = [o.batch, o.heads, o.rows, o.keys];
  const [z, scores, pattern] = runProgramMulti('HeadlensFlashAttentionWithRows', flashProgram(o, T, true), inputs, uniforms, [rowsShape, rowsShape]);
  return { z: z as tf.Tensor4D, scores: scores as tf.Tensor4D, pattern: pattern as tf.Tensor4D };
}

/** The checked inputs of both flash entries, the tile, and the uniforms (attention's, then the query tiles). */
function flashInputs(q: HeadView, k: HeadView, v: HeadView, o: DecodeAttentionOptions) {
  for (const [t, n] of [[q.tensor, 'q'], [k.tensor, 'k'], [v.tensor, 'v']] as const) assertFloat(t, n);
  if (o.dHead > 256) throw new Error(`flash attention: d_head ${o.dHead} is more than 256`);
  if (o.heads % o.kvHeads !== 0) throw new Error(`flash attention: ${o.heads} heads are not a multiple of ${o.kvHeads} key/value heads`);
  const T = tileFor();
  const shared = attentionInputs(q, k, v, o);
  return { T, inputs: shared.inputs, uniforms: [...shared.uniforms, { type: 'int32' as const, data: [Math.ceil(o.rows / T)] }] };
}
