/**
 * Past keys and values, so a decoding step runs only the new positions through the model. Attention is the only
 * place one position reads another, and it reads the earlier positions only through their keys and values: so
 * with those kept, the new positions' forward equals the full sequence's forward at those positions (float
 * rounding aside). Keys are kept after rotation (hook_rot_k for rotary models) and after any hook on hook_k /
 * hook_v / hook_rot_k changed them, so an intervention at an earlier step stays in the cache, as the full re-run
 * with the same hooks would see it. Keys and values are per key/value head (before GQA's repeat), so a grouped
 * model keeps n_key_value_heads, not n_heads.
 *
 * A layer's keys and values are two tensors, or (written by the fused WebGPU kernels, src/backend/webgpu_kernels)
 * one [2, batch, kv_head, key_pos, d_head] tensor, keys then values, which one dispatch extends; `past()` then cuts
 * the two out once, for the plain path, and keeps them with the layer.
 *
 * The cache owns its tensors until `dispose()`. A forward given the cache stages each layer's extended keys and
 * values and the cache takes them only when the whole forward succeeded (`commit`), so a forward that throws
 * halfway leaves the cache as it was.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

interface LayerKV {
  /** [batch, kv_head, key_pos, d_head] */
  k: tf.Tensor4D;
  /** [batch, kv_head, key_pos, d_head] */
  v: tf.Tensor4D;
}

/** What the cache holds for a layer: k and v, or both in one tensor (and k, v cut from it once asked for). */
interface Held {
  k?: tf.Tensor4D;
  v?: tf.Tensor4D;
  /** [2, batch, kv_head, key_pos, d_head]: keys, then values */
  kv?: tf.Tensor;
}

function release(h: Held): void {
  tf.dispose([h.k, h.v, h.kv].filter((t): t is tf.Tensor => t !== undefined));
}

export class KVCache {
  private readonly layers: (Held | undefined)[];
  private readonly staged = new Map<number, Held>();
  private stagedPositions = 0;
  /** Positions held: the absolute position of the next token fed. */
  length = 0;
  /**
   * The attention mask of every position held, [batch][key_pos] (1 real, 0 padding), once a forward was given
   * one with padding (padding.ts); undefined while every position is real.
   */
  mask: number[][] | undefined;
  /** Rows of the batch, fixed by the first forward. */
  batch: number | undefined;
  private disposed = false;

  constructor(readonly nLayers: number) {
    this.layers = Array.from({ length: nLayers }, () => undefined);
  }

  /** Keys and values of layer l so far (owned by the cache), or undefined before the first forward. */
  past(layer: number): LayerKV | undefined {
    this.alive();
    const h = this.layers[layer];
    if (!h) return undefined;
    if (!h.k || !h.v) {
      const kv = h.kv!;
      const [, b, n, t, e] = kv.shape;
      // cut once and kept with the layer (this may run inside a forward's scope)
      h.k = tf.keep(tf.tidy(() => kv.slice([0, 0, 0, 0, 0], [1, b, n, t, e]).reshape([b, n, t, e]) as tf.Tensor4D));
      h.v = tf.keep(tf.tidy(() => kv.slice([1, 0, 0, 0, 0], [1, b, n, t, e]).reshape([b, n, t, e]) as tf.Tensor4D));
    }
    return { k: h.k, v: h.v };
  }

  /**
   * Layer l's keys and values as they are held: `kv` [2, batch, kv_head, key_pos, d_head] when the fused kernels
   * wrote them, else `k` and `v`. For the fused KV append, which reads either form.
   */
  held(layer: number): Readonly<Held> | undefined {
    this.alive();
    return this.layers[layer];
  }

  /**
   * Called by the forward before it runs `newPositions` more positions of `batch` rows: checks they fit. Both
   * numbers are known before any block runs, so a mismatch fails before anything is computed.
   */
  begin(batch: number, newPositions: number, nCtx: number): void {
    this.alive();
    if (this.batch !== undefined && batch !== this.batch) {
      throw new HeadlensError(`the KV cache holds ${this.batch} sequences but ${batch} were fed`, 'feed as many rows as the cache was started with, or use a new KVCache');
    }
    if (this.length + newPositions > nCtx) {
      throw new HeadlensError(
        `the KV cache holds ${this.length} positions; ${newPositions} more make ${this.length + newPositions}, more than the model's context (n_ctx ${nCtx})`,
        `feed at most ${Math.max(0, nCtx - this.length)} more tokens`,
      );
    }
    this.discard();
    this.stagedPositions = newPositions;
  }

  /** Called by attention: the layer's keys and values including the new positions, kept until commit or discard. */
  stage(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): void {
    this.staged.set(layer, { k: tf.keep(k), v: tf.keep(v) });
  }

  /** As stage, for keys and values in one tensor [2, batch, kv_head, key_pos, d_head] (the fused KV append). */
  stageCombined(layer: number, kv: tf.Tensor): void {
    this.staged.set(layer, { kv: tf.keep(kv) });
  }

  /** The forward succeeded: the staged keys and values replace the old ones; `mask` covers every position now held. */
  commit(batch: number, mask?: number[][]): void {
    if (this.staged.size !== this.nLayers) {
      this.discard();
      throw new HeadlensError(`the forward staged keys for ${this.staged.size} of ${this.nLayers} layers`, 'run the whole model (no stopAtLayer) when passing a KV cache');
    }
    for (const [l, kv] of this.staged) {
      const old = this.layers[l];
      if (old) release(old);
      this.layers[l] = kv;
    }
    this.staged.clear();
    this.length += this.stagedPositions;
    this.stagedPositions = 0;
    this.batch = batch;
    if (mask) this.mask = mask;
  }

  /** The forward failed: drops what it staged. */
  discard(): void {
    for (const kv of this.staged.values()) release(kv);
    this.staged.clear();
    this.stagedPositions = 0;
  }

  /** Bytes the cache holds. */
  get bytes(): number {
    let n = 0;
    for (const kv of this.layers) if (kv) n += ((kv.kv?.size ?? 0) + (kv.k?.size ?? 0) + (kv.v?.size ?? 0)) * 4;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.discard();
    for (const kv of this.layers) if (kv) release(kv);
    this.layers.fill(undefined);
    this.disposed = true;
  }

  private alive(): void {
    if (this.disposed) throw new HeadlensError('this KV cache was disposed', 'make a new KVCache');
  }
}
