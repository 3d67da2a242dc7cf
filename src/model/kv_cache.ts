/**
 * Past keys and values, so a decoding step runs only the new positions through the model. Attention is the only
 * place one position reads another, and it reads the earlier positions only through their keys and values: so
 * with those kept, the new positions' forward equals the full sequence's forward at those positions (float
 * rounding aside). Keys are kept after rotation (hook_rot_k for rotary models) and after any hook on hook_k /
 * hook_v / hook_rot_k changed them, so an intervention at an earlier step stays in the cache, as the full re-run
 * with the same hooks would see it. Keys and values are per key/value head (before GQA's repeat), so a grouped
 * model keeps n_key_value_heads, not n_heads.
 *
 * How a layer is held depends on the path the first forward took:
 *   tensors  (every backend, and webgpu without the fused kernels or under a gradient) k and v, each
 *            [batch, kv_head, key_pos, d_head]; a forward stages their concatenation with the new positions and
 *            the commit swaps them in.
 *   slab     (webgpu with the fused kernels) one preallocated [2, batch, kv_head, capacity, d_head] tensor per
 *            layer, keys then values, that the forward writes the new positions into in place (one dispatch,
 *            src/backend/webgpu_kernels/kv_append.ts) and attention reads through strides up to the positions
 *            held. A step costs its new rows, not a copy of the cache, and the cache's memory is known when it
 *            starts: `capacity` positions (KVCacheOptions), else the first forward's and then a quarter more each
 *            time it runs out (a copy of the layer, once).
 * A tensors cache that a fused forward meets is moved into slabs once.
 *
 * The cache owns its tensors until `dispose()`. A forward that throws halfway leaves the cache as it was: staged
 * tensors are dropped; rows written into a slab past the positions held are never read and the next forward
 * writes over them.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { bhpView, uninitialisedTensor, writeKVInPlace, type HeadView, type InlineRotary } from '../backend/webgpu_kernels/index.js';

interface LayerKV {
  /** [batch, kv_head, key_pos, d_head] */
  k: tf.Tensor4D;
  /** [batch, kv_head, key_pos, d_head] */
  v: tf.Tensor4D;
}

export interface KVCacheOptions {
  /**
   * Positions the slabs (webgpu with the fused kernels) are made for at the first forward, when that is more than
   * the first forward feeds: a prompt's length plus the tokens to decode, so the cache never grows. The cache
   * still grows past it if more are fed. model.generate sets it.
   */
  capacity?: number;
}

/** A layer's keys and values in its slab, as the fused attention reads them. */
export interface SlabView {
  k: HeadView;
  v: HeadView;
  /** Key positions readable: those held plus the forward's new ones. */
  keys: number;
}

export class KVCache {
  private readonly layers: (LayerKV | undefined)[];
  private readonly staged = new Map<number, LayerKV>();
  /** slab mode: [2, batch, kv_head, capacity, d_head] per layer */
  private readonly slabs: (tf.Tensor | undefined)[];
  /** slab mode: layers the running forward wrote */
  private readonly written = new Set<number>();
  /** slab mode: the capacity every slab has by the end of the running forward */
  private target = 0;
  private stagedPositions = 0;
  /** How the layers are held (see the file's comment); undefined before the first forward. */
  mode: 'tensors' | 'slab' | undefined;
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

  constructor(
    readonly nLayers: number,
    private readonly options: KVCacheOptions = {},
  ) {
    if (options.capacity !== undefined && !(Number.isInteger(options.capacity) && options.capacity >= 0)) {
      throw new HeadlensError(`KVCache: capacity must be an integer ≥ 0, got ${options.capacity}`, 'give the positions to make room for, e.g. prompt length + tokens to decode');
    }
    this.layers = Array.from({ length: nLayers }, () => undefined);
    this.slabs = Array.from({ length: nLayers }, () => undefined);
  }

  /** Positions the slabs hold room for (slab mode), else the positions held. */
  get capacity(): number {
    return this.mode === 'slab' ? (this.slabs.find((s) => s)?.shape[3] ?? this.target) : this.length;
  }

  /**
   * Keys and values of layer l so far, [batch, kv_head, key_pos, d_head] each. Tensors mode: the cache's own (do
   * not dispose). Slab mode: copies of the rows held, which the caller owns. Undefined before the first forward.
   */
  past(layer: number): LayerKV | undefined {
    this.alive();
    if (this.mode === 'slab') {
      const slab = this.slabs[layer];
      if (!slab || this.length === 0) return undefined;
      const [, b, n, , e] = slab.shape;
      const t = this.length;
      return tf.tidy(() => ({
        k: slab.slice([0, 0, 0, 0, 0], [1, b, n, t, e]).reshape([b, n, t, e]) as tf.Tensor4D,
        v: slab.slice([1, 0, 0, 0, 0], [1, b, n, t, e]).reshape([b, n, t, e]) as tf.Tensor4D,
      }));
    }
    return this.layers[layer];
  }

  /**
   * Called by the forward before it runs `newPositions` more positions of `batch` rows: checks they fit. Both
   * numbers are known before any block runs, so a mismatch fails before anything is computed. `inPlace`: the
   * forward takes the fused WebGPU path, which holds the cache in slabs.
   */
  begin(batch: number, newPositions: number, nCtx: number, inPlace = false): void {
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
    if (this.mode === 'slab' && tf.getBackend() !== 'webgpu') {
      throw new HeadlensError(`this KV cache holds its keys in WebGPU buffers, but the backend is now ${tf.getBackend()}`, 'use a new KVCache after switching backends');
    }
    const need = this.length + newPositions;
    if (inPlace && this.mode !== 'slab') {
      this.target = Math.min(nCtx, Math.max(need, this.options.capacity ?? 0));
      if (this.mode === 'tensors') this.toSlabs();
      this.mode = 'slab';
    } else if (this.mode === 'slab' && this.capacity < need) {
      // a quarter more, in whole blocks of 64 positions, at least what this forward needs, at most the context
      this.target = Math.max(need, Math.min(nCtx, Math.ceil((this.capacity * 1.25) / 64) * 64));
    } else if (this.mode === undefined) {
      this.mode = 'tensors';
    }
    this.stagedPositions = newPositions;
  }

  /** Slab mode: whether the running forward holds its keys in slabs. */
  get inPlace(): boolean {
    return this.mode === 'slab';
  }

  /** Tensors mode, called by attention: the layer's keys and values including the new positions, kept until commit or discard. */
  stage(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): void {
    if (this.mode !== 'tensors') throw new Error('KVCache.stage: the cache is held in slabs (use write)');
    this.staged.set(layer, { k: tf.keep(k), v: tf.keep(v) });
  }

  /**
   * Slab mode, called by attention: writes the forward's new keys and values ([batch, new_pos, kv_head, d_head]
   * read through the views; keys rotated on the way with `rotary` if given) after the positions held, growing the
   * layer's slab first if the forward needs more room. Returns the slab's views up to the new positions.
   */
  write(layer: number, freshK: HeadView, freshV: HeadView, dims: { batch: number; kvHeads: number; rows: number; dHead: number }, rotary?: InlineRotary): SlabView {
    if (this.mode !== 'slab') throw new Error('KVCache.write: the cache is not held in slabs (begin with inPlace)');
    const { batch, kvHeads, rows, dHead } = dims;
    let slab = this.slabs[layer];
    if (!slab || slab.shape[3]! < this.target) {
      const grown = tf.keep(uninitialisedTensor([2, batch, kvHeads, this.target, dHead]));
      if (slab) {
        // the rows held, read out of the old slab as [batch, pos, kv_head, d_head] views
        const cap = slab.shape[3]!;
        const strides: [number, number, number] = [kvHeads * cap * dHead, dHead, cap * dHead];
        writeKVInPlace(grown, 0, { tensor: slab, offset: 0, strides }, { tensor: slab, offset: batch * kvHeads * cap * dHead, strides }, this.length);
        slab.dispose();
      }
      this.slabs[layer] = slab = grown;
    }
    writeKVInPlace(slab, this.length, freshK, freshV, rows, rotary);
    this.written.add(layer);
    const cap = slab.shape[3]!;
    const strides: [number, number, number] = [kvHeads * cap * dHead, dHead, cap * dHead];
    return { k: { tensor: slab, offset: 0, strides }, v: { tensor: slab, offset: batch * kvHeads * cap * dHead, strides }, keys: this.length + rows };
  }

  /** The forward succeeded: the staged keys and values replace the old ones; `mask` covers every position now held. */
  commit(batch: number, mask?: number[][]): void {
    const done = this.mode === 'slab' ? this.written.size : this.staged.size;
    if (done !== this.nLayers) {
      this.discard();
      throw new HeadlensError(`the forward staged keys for ${done} of ${this.nLayers} layers`, 'run the whole model (no stopAtLayer) when passing a KV cache');
    }
    for (const [l, kv] of this.staged) {
      const old = this.layers[l];
      if (old) tf.dispose([old.k, old.v]);
      this.layers[l] = kv;
    }
    this.staged.clear();
    this.written.clear();
    this.length += this.stagedPositions;
    this.stagedPositions = 0;
    this.batch = batch;
    if (mask) this.mask = mask;
  }

  /** The forward failed: drops what it staged (rows it wrote into slabs are past `length`, never read). */
  discard(): void {
    for (const kv of this.staged.values()) tf.dispose([kv.k, kv.v]);
    this.staged.clear();
    this.written.clear();
    this.stagedPositions = 0;
  }

  /** Bytes the cache holds (slabs at their capacity). */
  get bytes(): number {
    let n = 0;
    for (const kv of this.layers) if (kv) n += (kv.k.size + kv.v.size) * 4;
    for (const s of this.slabs) if (s) n += s.size * 4;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.discard();
    for (const kv of this.layers) if (kv) tf.dispose([kv.k, kv.v]);
    tf.dispose(this.slabs.filter((s): s is tf.Tensor => s !== undefined));
    this.layers.fill(undefined);
    this.slabs.fill(undefined);
    this.disposed = true;
  }

  /** Moves a tensors cache into slabs of `target` positions (the first fused forward after plain ones). */
  private toSlabs(): void {
    this.layers.forEach((kv, l) => {
      if (!kv) return;
      const [b, n, t, e] = kv.k.shape;
      const slab = tf.keep(uninitialisedTensor([2, b, n, this.target, e])); // target ≥ the positions held (begin)
      writeKVInPlace(slab, 0, bhpView(kv.k), bhpView(kv.v), t);
      tf.dispose([kv.k, kv.v]);
      this.layers[l] = undefined;
      this.slabs[l] = slab;
    });
  }

  private alive(): void {
    if (this.disposed) throw new HeadlensError('this KV cache was disposed', 'make a new KVCache');
  }
}
