/**
 * Multi-head self-attention, causal (decoders) or bidirectional (encoders: the mask the context gives decides), with
 * grouped-query attention (GQA/MQA): query head h reads key/value
 * head floor(h / (n_heads / n_key_value_heads)), the grouping transformers' repeat_kv uses.
 * Hook points (TransformerLens names, under blocks.{l}.attn.):
 *   hook_q [batch, pos, head, d_head]; hook_k, hook_v [batch, pos, kv_head, d_head];
 *   hook_rot_q, hook_rot_k (rotary models, after rotation);
 *   hook_attn_scores [batch, head, query_pos, key_pos] (scaled, masked keys are -Infinity);
 *   hook_pattern (softmax of the scores); hook_z [batch, pos, head, d_head];
 *   hook_result [batch, pos, head, d_model], each head's output, computed only when someone asks for it.
 * With a KV cache (kv_cache.ts) pos is the new positions only and key_pos every position so far; the keys kept
 * are those after hook_k / hook_rot_k, so a hook's change there lasts for later steps.
 */
import * as tf from '@tensorflow/tfjs';
import { isEncoder, type HookedConfig } from './config.js';
import { blockHooks } from './hook_names.js';
import type { HookPoints } from './hook_point.js';
import { HeadlensError } from '../errors.js';
import type { KVCache } from './kv_cache.js';
import { linear } from './mlp.js';
import { applyRotary } from './rotary.js';
import { attentionSplitCount, bphView, flashAttention, flashAttentionWithRows, flashAttentionZ, fusedAttention, fusedAttentionRows as fusedRows, fusedAttentionScoresAndPattern as fusedScoresAndPattern, fusedAttentionSplitRows, fusedAttentionWithRows as fusedWithRows, fusedRotary, fusedSplitColumns, FUSED_ATTENTION_MAX_D_HEAD, fusedNorm, multiOutputActive, type HeadView, type InlineRotary, type NormType } from '../backend/webgpu_kernels/index.js';
import { normLinear16, packedEpilogueTakes, PackedLinear } from './weights16.js';

export interface AttentionContext {
  /**
   * Additive mask [query_pos, key_pos]: 0 where a query may attend, -Infinity elsewhere; for a padded batch
   * [batch, 1, query_pos, key_pos], padded keys -Infinity too (padding.ts).
   */
  mask: () => tf.Tensor2D | tf.Tensor4D;
  /**
   * Rows of the causal mask for the given query rows (new-position indices), [rows, key_pos], made on the device:
   * what attention uses when it computes the scores in slices of query rows (unpadded batches only).
   */
  causalRows?: (rows: number[]) => tf.Tensor2D;
  /** A padded batch: a query row whose keys are all padding has pattern 0 instead of softmax's NaN (padding.ts). */
  padded?: boolean;
  /**
   * Past keys and values: the new positions attend to them and to themselves, and the layer's extended keys
   * and values are staged in the cache. key_pos then counts the cached positions too.
   */
  kvCache?: KVCache;
  /** Rotary tables, [pos, rotary_dim], or [batch, pos, rotary_dim] when each row has its own positions (padding). */
  cos?: tf.Tensor2D | tf.Tensor3D;
  sin?: tf.Tensor2D | tf.Tensor3D;
  /** W_Q, W_K, W_V fused and pre-transposed: [d_model, (head + 2·kv_head)·d_head] and its bias (see Transformer.qkvWeights). */
  qkv?: { W: tf.Tensor2D | PackedLinear; b: tf.Tensor1D };
  /** W_O as a 16-bit [head·d_head, d_model] weight (weights16.ts), when the model keeps it so; else P's W_O. */
  W_O16?: PackedLinear;
  /** Add biases inside the matmul kernel (tf.fused.matMul). */
  fused?: boolean;
  /** Free each step's temporaries (transposes, unscaled scores) as soon as the step ends. */
  scoped?: boolean;
  /**
   * Fused WebGPU kernels (optimisations.fusedKernels on the webgpu backend, no gradient recorded): see `fusedPath`.
   * `keyMask` gives the padded batch's key mask [batch, key_pos] (1 real, 0 padding), made once per forward.
   */
  kernels?: { keyMask?: () => tf.Tensor2D };
  /**
   * The block's first norm, left to attention (kernels only; the block passes it only where nothing hooks ln1):
   * x is then the residual stream, and the input is its norm. The fused path folds it into a 16-bit QKV product
   * (the packed kernel's norm prologue); every other path runs the norm first.
   */
  prenorm?: { w: tf.Tensor; b?: tf.Tensor; eps: number; type: NormType };
}

/** x normalised by the norm the block left to attention (ctx.prenorm), or x itself without one. */
function normalised(x: tf.Tensor3D, ctx: AttentionContext): tf.Tensor3D {
  const n = ctx.prenorm;
  return n ? (fusedNorm(x, n.w, n.b, n.eps, n.type) as tf.Tensor3D) : x;
}

type Param = (name: string) => tf.Tensor;

/**
 * Attention computes its scores in slices of query rows, each at most `maxBytes`, when they would be larger
 * and no hook needs every row (see `sliced` below): a 16K-token prompt never holds [head, 16K, 16K].
 * Infinity turns slicing off.
 */
export const attentionSlicing = { maxBytes: 256 * 2 ** 20 };

/**
 * The fused path takes attention of new query rows: fewer than flashAttention.minRows go to the kernel with one
 * workgroup per query row and head (src/backend/webgpu_kernels/attention.ts), right for decoding, but only up to
 * this many (it re-reads every key for each row); from minRows on, the tiled flash-attention kernel
 * (flash_attention.ts), which reads each key once per tile of rows. With minRows above this, the rows between the two
 * take the matmul path. A cache of every row of hook_attn_scores / hook_pattern is written by the attention
 * kernel itself where kernels of several outputs run (multiOutputActive): the flash kernel's tiles from minRows on.
 * Where they cannot run, the whole scores or pattern come from a dispatch with one workgroup per query row reading
 * every key: with such a cache the fused path then takes at most this many new query rows, and longer prompts
 * take the matmul path, whose product shares its key reads across rows. (A cache of some rows, patternRows, does not
 * count.)
 */
export const fusedAttentionRows = { max: 128 };

/** Nobody at `name` keeps only some query rows (patternRows): nobody listens there, or its listener keeps every row. */
function noRowSubset(hp: HookPoints, name: string): boolean {
  return !hp.wants(name) || hp.rowsOnly(name) === undefined;
}

/** x·W + b for per-head weights W [head, d_model, d_head]: x [batch, pos, d_model] → [batch, pos, head, d_head]. */
function project(x2d: tf.Tensor2D, W: tf.Tensor, b: tf.Tensor, batch: number, pos: number): tf.Tensor4D {
  const [h, d, e] = W.shape;
  const Wmat = W.transpose([1, 0, 2]).reshape([d, h * e]); // [d_model, head*d_head]
  return x2d.matMul(Wmat as tf.Tensor2D).add(b.reshape([h * e])).reshape([batch, pos, h, e]);
}

/** Repeats key/value heads so each query head has its own: [batch, kv_head, pos, d_head] → [batch, head, pos, d_head]. */
function repeatKV(x: tf.Tensor4D, nRep: number): tf.Tensor4D {
  if (nRep === 1) return x;
  // a gather along the head axis rather than a 5-d tile, which WebGPU runs on the CPU
  const kvOf = tf.tensor1d(Array.from({ length: x.shape[1] * nRep }, (_, h) => Math.floor(h / nRep)), 'int32');
  return tf.gather(x, kvOf, 1) as tf.Tensor4D;
}

/**
 * The layer's past keys and values with the new positions' appended, each [batch, kv_head, past_pos + new_pos,
 * d_head], from k, v [batch, new_pos, kv_head, d_head]; the new positions go into the cache. `owned`: the caller
 * disposes the two after use (a slab cache hands out copies; a tensors cache keeps what it staged).
 */
function extendCache(cache: KVCache, layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D; owned: boolean } {
  const slab = cache.inPlace;
  // slab: copies of the rows held, taken before this forward's are written; tensors: the cache's own
  const past = cache.past(layer);
  if (slab) {
    const [batch, pos, kv, e] = k.shape;
    cache.write(layer, bphView(k), bphView(v), { batch, kvHeads: kv, rows: pos, dHead: e });
  }
  // this forward's keys from k and v themselves, so a gradient (the plain path may run under one) reaches them
  const [kAll, vAll] = tf.tidy(() => {
    const kNew = k.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, kv_head, new_pos, d_head]
    const vNew = v.transpose([0, 2, 1, 3]) as tf.Tensor4D;
    if (!past) return [kNew, vNew];
    return [tf.concat([past.k, kNew], 2) as tf.Tensor4D, tf.concat([past.v, vNew], 2) as tf.Tensor4D];
  });
  if (!slab) cache.stage(layer, kAll, vAll);
  else if (past) tf.dispose([past.k, past.v]);
  return { k: kAll, v: vAll, owned: slab };
}

export function attention(
  cfg: HookedConfig,
  layer: number,
  x: tf.Tensor3D,
  P: Param,
  hp: HookPoints,
  ctx: AttentionContext,
): tf.Tensor3D {
  const H = blockHooks(layer);
  const [batch, pos, d] = x.shape;
  const e = cfg.d_head;
  // the fused attention never makes the scores or pattern it works from: only a listener that just reads them (a
  // cache) can be served, by a separate dispatch that writes them out
  const onlyRead = (name: string) => !hp.wants(name) || hp.readsOnly(name);
  const whole = (name: string) => hp.wants(name) && hp.rowsOnly(name) === undefined; // every query row kept
  // up to fusedAttentionRows.max rows the per-row kernel; from flashAttention.minRows on the flash kernel, which
  // writes every row of the scores and pattern beside z where kernels of several outputs run (else a cache of every
  // row takes the matmul path); between the two, if minRows is set above max, the matmul path
  const [scoresName, patternName] = [H['attn.hook_attn_scores'], H['attn.hook_pattern']];
  const flashRows = !(whole(scoresName) || whole(patternName)) || (multiOutputActive() && noRowSubset(hp, scoresName) && noRowSubset(hp, patternName));
  const rowsFit = pos <= fusedAttentionRows.max || (pos >= flashAttention.minRows && flashRows);
  // (causal models only: the kernels mask keys after the query; an encoder's attention takes the plain path)
  if (ctx.kernels && !isEncoder(cfg) && rowsFit && e <= FUSED_ATTENTION_MAX_D_HEAD && onlyRead(H['attn.hook_attn_scores']) && onlyRead(H['attn.hook_pattern'])) {
    return fusedPath(cfg, layer, x, P, hp, ctx);
  }
  x = normalised(x, ctx);
  const x2d = x.reshape([batch * pos, d]) as tf.Tensor2D;
  let [q, k, v] = hookedQKV(cfg, layer, x2d, P, hp, ctx, batch, pos);
  if (cfg.positional_embedding_type === 'rotary') {
    q = hp.point(H['attn.hook_rot_q'], applyRotary(q, ctx.cos!, ctx.sin!, cfg.rotary_dim!));
    k = hp.point(H['attn.hook_rot_k'], applyRotary(k, ctx.cos!, ctx.sin!, cfg.rotary_dim!));
  }
  const step = <T extends tf.Tensor>(f: () => T): T => (ctx.scoped ? tf.tidy(f) : f());
  // with a KV cache, keys and values of every position so far: [batch, kv_head, key_pos, d_head], kept by the cache
  const cached = ctx.kvCache ? extendCache(ctx.kvCache, layer, k, v) : undefined;
  const scale = scaleOf(cfg, layer);
  const keyPos = cached ? cached.k.shape[2] : pos;
  let z: tf.Tensor4D;
  try {
    z = sliced(cfg, hp, H, ctx, q, cached?.k ?? k, cached?.v ?? v, !!cached, keyPos, scale) ?? wholeZ(cfg, hp, H, ctx, q, cached, k, v, scale, step);
  } finally {
    if (cached?.owned) tf.dispose([cached.k, cached.v]);
  }
  return output(cfg, layer, hp, z, P, ctx);
}

/**
 * q, k and v of the new positions, [batch, pos, head | kv_head, d_head], each through its hook point: one matmul with
 * the fused QKV weights split along the columns when the context has them, else three projections.
 */
function hookedQKV(
  cfg: HookedConfig, layer: number, x2d: tf.Tensor2D, P: Param, hp: HookPoints, ctx: AttentionContext, batch: number, pos: number,
): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const n = `blocks.${layer}.attn`;
  const H = blockHooks(layer);
  const { n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  if (ctx.qkv) {
    // one matmul for all three, split along the columns: [batch*pos, (head + 2·kv_head)·d_head]
    const all = linear(x2d, ctx.qkv.W, ctx.qkv.b, ctx.fused ?? false);
    // on webgpu one dispatch cuts all three (tfjs' split is a copy program each)
    const [qf, kf, vf] = ctx.kernels && multiOutputActive() ? fusedSplitColumns(all, [h * e, kv * e, kv * e]) : tf.split(all, [h * e, kv * e, kv * e], 1);
    return [
      hp.point(H['attn.hook_q'], qf.reshape([batch, pos, h, e]) as tf.Tensor4D),
      hp.point(H['attn.hook_k'], kf.reshape([batch, pos, kv, e]) as tf.Tensor4D),
      hp.point(H['attn.hook_v'], vf.reshape([batch, pos, kv, e]) as tf.Tensor4D),
    ];
  }
  return [
    hp.point(H['attn.hook_q'], project(x2d, P(`${n}.W_Q`), P(`${n}.b_Q`), batch, pos)),
    hp.point(H['attn.hook_k'], project(x2d, P(`${n}.W_K`), P(`${n}.b_K`), batch, pos)),
    hp.point(H['attn.hook_v'], project(x2d, P(`${n}.W_V`), P(`${n}.b_V`), batch, pos)),
  ];
}

function scaleOf(cfg: HookedConfig, layer: number): number {
  return cfg.scale_attn_by_inverse_layer_idx ? cfg.attn_scale * (layer + 1) : cfg.attn_scale;
}

/**
 * Attention through the fused WebGPU kernels, for when nobody looks at the scores or the pattern. Where no hook
 * listens at hook_q / hook_k / hook_v / hook_rot_q / hook_rot_k either, q, k and v are never cut out of the fused
 * QKV matmul's output: one dispatch appends the new keys and values to the KV cache (rotating the keys on the
 * way; the cache holds both in one tensor) and one computes hook_z (rotating q as it loads it), all reading through strides; without
 * a KV cache, or when a cache keeps scores or patterns, one dispatch first rotates q and k together. Otherwise q,
 * k and v are made and hooked as on the plain path and the rotation is one dispatch per tensor. Either way
 * hook_z, hook_result and everything after are the plain path's.
 */
function fusedPath(cfg: HookedConfig, layer: number, x: tf.Tensor3D, P: Param, hp: HookPoints, ctx: AttentionContext): tf.Tensor3D {
  const H = blockHooks(layer);
  const [batch, pos, d] = x.shape;
  const { n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const rotary = cfg.positional_embedding_type === 'rotary';
  const rotate = (t: tf.Tensor, heads: number, colOffset: number, rowStride: number) =>
    fusedRotary(t, ctx.cos!, ctx.sin!, { batch, pos, heads, dHead: e, colOffset, rowStride, rotaryDim: cfg.rotary_dim! });
  const hooked = (['attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_rot_q', 'attn.hook_rot_k'] as const).some((name) => hp.wants(H[name]));
  const [scoresName, patternName] = [H['attn.hook_attn_scores'], H['attn.hook_pattern']];
  const viewed = hp.wants(scoresName) || hp.wants(patternName);
  // the query rows a listener at `name` keeps (new-position indices), or undefined for every row
  const keptRows = (name: string): number[] | undefined => {
    const want = hp.rowsOnly(name);
    if (want === undefined) return undefined;
    const rows = want === 'last' ? [pos - 1] : want;
    const bad = rows.find((r) => r >= pos);
    if (bad !== undefined) throw new HeadlensError(`patternRows: query row ${bad} is past the ${pos} query positions of ${name}`, `use rows 0..${pos - 1}`);
    return rows;
  };
  // every new query row's scores / pattern against a long KV cache (decoding with a cache of the last row, as the
  // retrieval scorer's): written by attention's own split pass, which reads each key once over many workgroups
  // and rotates q itself, instead of a second pass over the keys with one workgroup per row and head
  const everyRow = (name: string) => {
    const rows = keptRows(name);
    return rows === undefined || (rows.length === pos && rows.every((r, i) => r === i));
  };
  const splitRows = viewed && !!ctx.kvCache && pos < flashAttention.minRows && attentionSplitCount(ctx.kvCache.length + pos) > 1 &&
    multiOutputActive() && [scoresName, patternName].every((name) => !hp.wants(name) || everyRow(name));
  let q: HeadView, kNew: HeadView, vNew: HeadView;
  // decoding with no one looking inside: q and the new keys are rotated inside the attention and append kernels
  let inline: InlineRotary | undefined;
  const W = ctx.qkv?.W;
  const norm = ctx.prenorm;
  // the block's ln1 inside the 16-bit QKV product (its norm prologue), or run first
  const foldNorm = !!norm && !hooked && W instanceof PackedLinear && packedEpilogueTakes(batch * pos, W, { norm });
  const x2d = (foldNorm ? x : normalised(x, ctx)).reshape([batch * pos, d]) as tf.Tensor2D;
  if (ctx.qkv && !hooked) {
    const width = (h + 2 * kv) * e;
    // [batch*pos, (head + 2·kv_head)·d_head]
    const qkv = foldNorm ? normLinear16(x2d, W as PackedLinear, ctx.qkv.b, norm!) : linear(x2d, ctx.qkv.W, ctx.qkv.b, ctx.fused ?? false);
    const rows: [number, number, number] = [pos * width, width, e];
    vNew = { tensor: qkv, offset: (h + kv) * e, strides: rows };
    if (rotary && !(ctx.kvCache && (!viewed || splitRows))) {
      const qk = rotate(qkv, h + kv, 0, width); // [batch, pos, head + kv_head, d_head]: q's heads, then k's
      const qkRows: [number, number, number] = [pos * (h + kv) * e, (h + kv) * e, e];
      q = { tensor: qk, offset: 0, strides: qkRows };
      kNew = { tensor: qk, offset: h * e, strides: qkRows };
    } else {
      if (rotary) inline = { cos: ctx.cos!, sin: ctx.sin!, rotaryDim: cfg.rotary_dim! };
      q = { tensor: qkv, offset: 0, strides: rows };
      kNew = { tensor: qkv, offset: h * e, strides: rows };
    }
  } else {
    let [qt, kt, vt] = hookedQKV(cfg, layer, x2d, P, hp, ctx, batch, pos);
    if (rotary) {
      qt = hp.point(H['attn.hook_rot_q'], rotate(qt, h, 0, h * e));
      kt = hp.point(H['attn.hook_rot_k'], rotate(kt, kv, 0, kv * e));
    }
    [q, kNew, vNew] = [bphView(qt), bphView(kt), bphView(vt)];
  }
  let k = kNew;
  let v = vNew;
  let keys = pos;
  if (ctx.kvCache) {
    // the new keys and values written into the layer's slab [2, batch, kv_head, capacity, d_head] in place; read
    // below through its views, up to the positions held plus these
    ({ k, v, keys } = ctx.kvCache.write(layer, kNew, vNew, { batch, kvHeads: kv, rows: pos, dHead: e }, inline));
  }
  const opts = {
    batch, rows: pos, heads: h, kvHeads: kv, dHead: e, keys, scale: scaleOf(cfg, layer),
    queryStart: keys - pos, window: cfg.sliding_window, keyMask: ctx.padded ? ctx.kernels!.keyMask!() : undefined,
  };
  if (splitRows) {
    const got = fusedAttentionSplitRows(q, k, v, { ...opts, rotary: inline }, { scores: hp.wants(scoresName), pattern: hp.wants(patternName) });
    if (!got) throw new Error(`attention: the split pass declined ${keys} keys that it was chosen for`);
    for (const [name, t] of [[scoresName, got.scores], [patternName, got.pattern]] as const) {
      if (!t) continue;
      if (hp.rowsOnly(name) === undefined) hp.point(name, t);
      else hp.pointRows(name, t);
    }
    return output(cfg, layer, hp, hp.point(H['attn.hook_z'], got.z), P, ctx);
  }
  // a cache of every row: attention writes the scores and pattern beside z in its one dispatch, the flash kernel for
  // many rows (any number of keys), the per-row kernel for few (unless the keys are many); an output no one asked
  // for is freed
  const bothHere = hp.wants(scoresName) && hp.wants(patternName);
  const withRows = viewed && noRowSubset(hp, scoresName) && noRowSubset(hp, patternName) && !inline && multiOutputActive()
    ? pos >= flashAttention.minRows ? flashAttentionWithRows(q, k, v, opts) : bothHere ? fusedWithRows(q, k, v, opts) : undefined
    : undefined;
  if (withRows) {
    for (const [name, t] of [[scoresName, withRows.scores], [patternName, withRows.pattern]] as const) {
      if (hp.wants(name)) hp.point(name, t);
      else t.dispose();
    }
    return output(cfg, layer, hp, hp.point(H['attn.hook_z'], withRows.z), P, ctx);
  }
  const z = (pos >= flashAttention.minRows ? flashAttentionZ : fusedAttention)(q, k, v, { ...opts, rotary: inline }); // [batch, pos, head, d_head]
  // a cache of the scores or pattern (read-only: checked by the caller) gets them from their own dispatch, only the
  // query rows it keeps where it keeps only some (patternRows)
  const sameRows = (a: number[] | 'last' | undefined, b: number[] | 'last' | undefined) => (a === undefined || a === 'last' || b === undefined || b === 'last' ? a === b : a.join() === b.join());
  if (hp.wants(scoresName) && hp.wants(patternName) && sameRows(hp.rowsOnly(scoresName), hp.rowsOnly(patternName)) && multiOutputActive()) {
    // both kept for the same rows (a cache of everything): one dispatch writes the two
    const rows = keptRows(patternName);
    const { scores, pattern } = fusedScoresAndPattern(q, k, opts, rows);
    if (rows === undefined) {
      hp.point(scoresName, scores);
      hp.point(patternName, pattern);
    } else {
      hp.pointRows(scoresName, scores);
      hp.pointRows(patternName, pattern);
    }
    return output(cfg, layer, hp, hp.point(H['attn.hook_z'], z), P, ctx);
  }
  for (const name of [scoresName, patternName]) {
    if (!hp.wants(name)) continue;
    const isPattern = name === H['attn.hook_pattern'];
    const rows = keptRows(name);
    if (rows === undefined) hp.point(name, fusedRows(q, k, opts, isPattern)); // [batch, head, query_pos, key_pos]
    else hp.pointRows(name, fusedRows(q, k, opts, isPattern, rows)); // [batch, head, rows, key_pos]
  }
  return output(cfg, layer, hp, hp.point(H['attn.hook_z'], z), P, ctx);
}

/**
 * Attention in slices of query rows, when the whole [batch, head, query_pos, key_pos] scores would be larger than
 * attentionSlicing.maxBytes and no hook needs them whole: each slice's scores, softmax and ·V are freed before
 * the next. hook_attn_scores and hook_pattern, when a cache keeps only some query rows of them (patternRows),
 * get just those rows, computed apart. Returns hook_z, or undefined where the whole path applies.
 */
function sliced(
  cfg: HookedConfig,
  hp: HookPoints,
  H: ReturnType<typeof blockHooks>,
  ctx: AttentionContext,
  q: tf.Tensor4D,
  kIn: tf.Tensor4D,
  vIn: tf.Tensor4D,
  isCached: boolean,
  keyPos: number,
  scale: number,
): tf.Tensor4D | undefined {
  const [batch, pos, h, e] = q.shape;
  const kv = cfg.n_key_value_heads;
  const bytesPerRow = batch * h * keyPos * 4;
  if (ctx.padded || !ctx.causalRows || bytesPerRow * pos <= attentionSlicing.maxBytes) return undefined;
  const scoresName = H['attn.hook_attn_scores'];
  const patternName = H['attn.hook_pattern'];
  const rowsOf = (name: string) => (hp.wants(name) ? hp.rowsOnly(name) : null); // null: nobody listens
  const scoresRows = rowsOf(scoresName);
  const patternRows = rowsOf(patternName);
  if (scoresRows === undefined || patternRows === undefined) return undefined; // a hook needs every row
  const per = Math.max(1, Math.floor(attentionSlicing.maxBytes / bytesPerRow));
  const qh = tf.tidy(() => q.transpose([0, 2, 1, 3])) as tf.Tensor4D; // [batch, head, query_pos, d_head]
  const [kh, vh] = tf.tidy(() => [
    repeatKV(isCached ? kIn : (kIn.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv),
    repeatKV(isCached ? vIn : (vIn.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv),
  ]); // [batch, head, key_pos, d_head]
  const scoresOf = (rows: number[]) =>
    tf.tidy(() => {
      const qr = rows.length === rows[rows.length - 1] - rows[0] + 1 ? qh.slice([0, 0, rows[0], 0], [batch, h, rows.length, e]) : tf.gather(qh, tf.tensor1d(rows, 'int32'), 2);
      return tf.matMul(qr, kh, false, true).div(scale).add(ctx.causalRows!(rows)) as tf.Tensor4D; // [batch, head, rows, key_pos]
    });
  const parts: tf.Tensor4D[] = [];
  try {
    for (let r0 = 0; r0 < pos; r0 += per) {
      const rows = Array.from({ length: Math.min(per, pos - r0) }, (_, i) => r0 + i);
      parts.push(tf.tidy(() => tf.matMul(tf.softmax(scoresOf(rows), -1), vh) as tf.Tensor4D)); // [batch, head, rows, d_head]
    }
    for (const [name, want] of [[scoresName, scoresRows], [patternName, patternRows]] as const) {
      if (want === null) continue;
      const rows = want === 'last' ? [pos - 1] : want;
      const bad = rows.find((r) => r >= pos);
      if (bad !== undefined) throw new HeadlensError(`patternRows: query row ${bad} is past the ${pos} query positions of ${name}`, `use rows 0..${pos - 1}`);
      const s = scoresOf(rows);
      hp.pointRows(name, name === scoresName ? s : tf.softmax(s, -1));
    }
    return hp.point(H['attn.hook_z'], tf.tidy(() => tf.concat(parts, 2).transpose([0, 2, 1, 3])) as tf.Tensor4D); // [batch, pos, head, d_head]
  } finally {
    tf.dispose([qh, ...[kh, vh].filter((t) => t !== kIn && t !== vIn), ...parts]); // the KV cache owns kIn, vIn
  }
}

function wholeZ(
  cfg: HookedConfig,
  hp: HookPoints,
  H: ReturnType<typeof blockHooks>,
  ctx: AttentionContext,
  q: tf.Tensor4D,
  cached: { k: tf.Tensor4D; v: tf.Tensor4D } | undefined,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  scale: number,
  step: <T extends tf.Tensor>(f: () => T) => T,
): tf.Tensor4D {
  const { n_heads: h, n_key_value_heads: kv } = cfg;
  const scores = hp.point(
    H['attn.hook_attn_scores'],
    step(() => {
      const qh = q.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, head, query_pos, d_head]
      const kh = repeatKV(cached?.k ?? (k.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv); // [batch, head, key_pos, d_head]
      return tf.matMul(qh, kh, false, true).div(scale).add(ctx.mask()) as tf.Tensor4D; // [batch, head, query_pos, key_pos]
    }),
  );
  const pattern = hp.point(
    H['attn.hook_pattern'],
    ctx.padded
      ? step(() => {
          const p = tf.softmax(scores, -1) as tf.Tensor4D; // NaN on rows whose every key is padding
          return tf.where(tf.isNaN(p), tf.zerosLike(p), p) as tf.Tensor4D;
        })
      : (tf.softmax(scores, -1) as tf.Tensor4D),
  );
  return hp.point(
    H['attn.hook_z'],
    step(() => {
      const vh = repeatKV(cached?.v ?? (v.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv); // [batch, head, key_pos, d_head]
      return tf.matMul(pattern, vh).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, pos, head, d_head]
    }),
  );
}

/** hook_result (when asked for) and the attention output through W_O: [batch, pos, d_model]. */
function output(cfg: HookedConfig, layer: number, hp: HookPoints, z: tf.Tensor4D, P: Param, ctx: AttentionContext): tf.Tensor3D {
  const n = `blocks.${layer}.attn`;
  const H = blockHooks(layer);
  const [batch, pos, h, e] = z.shape;
  const d = cfg.d_model;
  const b_O = P(`${n}.b_O`);
  if (hp.wants(H['attn.hook_result'])) {
    const W_O = P(`${n}.W_O`); // [head, d_head, d_model]
    const zh = z.transpose([2, 0, 1, 3]).reshape([h, batch * pos, e]) as tf.Tensor3D; // [head, batch*pos, d_head]
    const perHead = tf.matMul(zh, W_O as tf.Tensor3D); // [head, batch*pos, d_model]
    const result = hp.point(
      H['attn.hook_result'],
      perHead.reshape([h, batch, pos, d]).transpose([1, 2, 0, 3]) as tf.Tensor4D, // [batch, pos, head, d_model]
    );
    return result.sum(2).add(b_O) as tf.Tensor3D;
  }
  const W_O = ctx.W_O16 ?? (P(`${n}.W_O`).reshape([h * e, d]) as tf.Tensor2D); // [head·d_head, d_model]
  const out = linear(z.reshape([batch * pos, h * e]) as tf.Tensor2D, W_O, b_O, ctx.fused ?? false); // [batch*pos, d_model]
  return out.reshape([batch, pos, d]) as tf.Tensor3D;
}
