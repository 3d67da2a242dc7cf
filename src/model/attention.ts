/**
 * Multi-head causal self-attention, with grouped-query attention (GQA/MQA): query head h reads key/value
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
import type { HookedConfig } from './config.js';
import { blockHooks } from './hook_names.js';
import type { HookPoints } from './hook_point.js';
import type { KVCache } from './kv_cache.js';
import { linear } from './mlp.js';
import { applyRotary } from './rotary.js';

export interface AttentionContext {
  /**
   * Additive mask [query_pos, key_pos]: 0 where a query may attend, -Infinity elsewhere; for a padded batch
   * [batch, 1, query_pos, key_pos], padded keys -Infinity too (padding.ts).
   */
  mask: tf.Tensor2D | tf.Tensor4D;
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
  qkv?: { W: tf.Tensor2D; b: tf.Tensor1D };
  /** Add biases inside the matmul kernel (tf.fused.matMul). */
  fused?: boolean;
  /** Free each step's temporaries (transposes, unscaled scores) as soon as the step ends. */
  scoped?: boolean;
}

type Param = (name: string) => tf.Tensor;

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
 * The layer's past keys and values with the new positions' appended, staged in the cache (which keeps them).
 * k, v [batch, new_pos, kv_head, d_head] → each [batch, kv_head, past_pos + new_pos, d_head].
 */
function extendCache(cache: KVCache, layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
  const past = cache.past(layer);
  const [kAll, vAll] = tf.tidy(() => {
    const kNew = k.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, kv_head, new_pos, d_head]
    const vNew = v.transpose([0, 2, 1, 3]) as tf.Tensor4D;
    if (!past) return [kNew, vNew];
    return [tf.concat([past.k, kNew], 2) as tf.Tensor4D, tf.concat([past.v, vNew], 2) as tf.Tensor4D];
  });
  cache.stage(layer, kAll, vAll);
  return { k: kAll, v: vAll };
}

export function attention(
  cfg: HookedConfig,
  layer: number,
  x: tf.Tensor3D,
  P: Param,
  hp: HookPoints,
  ctx: AttentionContext,
): tf.Tensor3D {
  const n = `blocks.${layer}.attn`; // parameter prefix
  const H = blockHooks(layer);
  const [batch, pos, d] = x.shape;
  const { n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const x2d = x.reshape([batch * pos, d]) as tf.Tensor2D;
  let q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D;
  if (ctx.qkv) {
    // one matmul for all three, split along the columns: [batch*pos, (head + 2·kv_head)·d_head]
    const [qf, kf, vf] = tf.split(linear(x2d, ctx.qkv.W, ctx.qkv.b, ctx.fused ?? false), [h * e, kv * e, kv * e], 1);
    q = hp.point(H['attn.hook_q'], qf.reshape([batch, pos, h, e]) as tf.Tensor4D);
    k = hp.point(H['attn.hook_k'], kf.reshape([batch, pos, kv, e]) as tf.Tensor4D);
    v = hp.point(H['attn.hook_v'], vf.reshape([batch, pos, kv, e]) as tf.Tensor4D);
  } else {
    q = hp.point(H['attn.hook_q'], project(x2d, P(`${n}.W_Q`), P(`${n}.b_Q`), batch, pos));
    k = hp.point(H['attn.hook_k'], project(x2d, P(`${n}.W_K`), P(`${n}.b_K`), batch, pos));
    v = hp.point(H['attn.hook_v'], project(x2d, P(`${n}.W_V`), P(`${n}.b_V`), batch, pos));
  }
  if (cfg.positional_embedding_type === 'rotary') {
    q = hp.point(H['attn.hook_rot_q'], applyRotary(q, ctx.cos!, ctx.sin!, cfg.rotary_dim!));
    k = hp.point(H['attn.hook_rot_k'], applyRotary(k, ctx.cos!, ctx.sin!, cfg.rotary_dim!));
  }
  const step = <T extends tf.Tensor>(f: () => T): T => (ctx.scoped ? tf.tidy(f) : f());
  // with a KV cache, keys and values of every position so far: [batch, kv_head, key_pos, d_head], kept by the cache
  const cached = ctx.kvCache ? extendCache(ctx.kvCache, layer, k, v) : undefined;
  let scale = cfg.attn_scale;
  if (cfg.scale_attn_by_inverse_layer_idx) scale *= layer + 1;
  const scores = hp.point(
    H['attn.hook_attn_scores'],
    step(() => {
      const qh = q.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, head, query_pos, d_head]
      const kh = repeatKV(cached?.k ?? (k.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv); // [batch, head, key_pos, d_head]
      return tf.matMul(qh, kh, false, true).div(scale).add(ctx.mask) as tf.Tensor4D; // [batch, head, query_pos, key_pos]
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
  const z = hp.point(
    H['attn.hook_z'],
    step(() => {
      const vh = repeatKV(cached?.v ?? (v.transpose([0, 2, 1, 3]) as tf.Tensor4D), h / kv); // [batch, head, key_pos, d_head]
      return tf.matMul(pattern, vh).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [batch, pos, head, d_head]
    }),
  );
  const W_O = P(`${n}.W_O`); // [head, d_head, d_model]
  const b_O = P(`${n}.b_O`);
  if (hp.wants(H['attn.hook_result'])) {
    const zh = z.transpose([2, 0, 1, 3]).reshape([h, batch * pos, e]) as tf.Tensor3D; // [head, batch*pos, d_head]
    const perHead = tf.matMul(zh, W_O as tf.Tensor3D); // [head, batch*pos, d_model]
    const result = hp.point(
      H['attn.hook_result'],
      perHead.reshape([h, batch, pos, d]).transpose([1, 2, 0, 3]) as tf.Tensor4D, // [batch, pos, head, d_model]
    );
    return result.sum(2).add(b_O) as tf.Tensor3D;
  }
  const out = linear(z.reshape([batch * pos, h * e]) as tf.Tensor2D, W_O.reshape([h * e, d]) as tf.Tensor2D, b_O, ctx.fused ?? false); // [batch*pos, d_model]
  return out.reshape([batch, pos, d]) as tf.Tensor3D;
}
