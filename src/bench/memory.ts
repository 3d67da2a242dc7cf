/**
 * Peak memory of a call, counted the way the hardware sees it: once per data buffer. tf.memory().numBytes
 * counts every tensor handle, so a reshape or a clone (which share their data) count twice there, and
 * tfjs keeps no iterable list of buffers. So while `fn` runs, the engine's trackTensor / disposeTensor are
 * wrapped to keep a reference count per buffer created in the call; the running total of live buffers'
 * bytes is checked at every allocation. Only buffers made during the call count (weights and inputs made
 * before are the baseline). On WebGPU the buffer pool may hold more than this (freed buffers are reused,
 * not returned): this is what tensors hold, not what the driver has allocated.
 */
import * as tf from '@tensorflow/tfjs';

interface Engine {
  trackTensor(a: tf.Tensor, backend: unknown): void;
  disposeTensor(a: tf.Tensor): void;
  state: { tensorInfo: WeakMap<object, unknown> };
}

/**
 * Runs fn; returns its result, the most bytes of buffers it allocated that were alive at one time, and the
 * bytes of those still alive when it returned. A buffer counts from the tensor that creates it until the
 * backend frees it (its last handle disposed); handles that alias older buffers (a reshape of a weight) add nothing.
 */
export function measurePeak<T>(fn: () => T): { out: T; peak: number; retained: number } {
  const engine = tf.engine() as unknown as Engine;
  const track = engine.trackTensor;
  const dispose = engine.disposeTensor;
  const buffers = new Map<object, number>();
  let live = 0;
  let peak = 0;
  engine.trackTensor = function (a, backend) {
    const isNew = !engine.state.tensorInfo.has(a.dataId);
    track.call(this, a, backend);
    if (isNew) {
      const bytes = a.dtype === 'string' || a.dtype === 'complex64' ? 0 : a.size * (a.dtype === 'bool' ? 1 : 4);
      buffers.set(a.dataId, bytes);
      live += bytes;
      peak = Math.max(peak, live);
    }
  };
  engine.disposeTensor = function (a) {
    const bytes = buffers.get(a.dataId);
    dispose.call(this, a);
    if (bytes !== undefined && !engine.state.tensorInfo.has(a.dataId)) {
      live -= bytes;
      buffers.delete(a.dataId);
    }
  };
  try {
    const out = fn();
    return { out, peak, retained: live };
  } finally {
    engine.trackTensor = track;
    engine.disposeTensor = dispose;
  }
}

/** Bytes of the distinct data buffers behind some tensors (shared data counted once). */
export function uniqueBytes(tensors: Iterable<tf.Tensor>): number {
  const seen = new Set<object>();
  let n = 0;
  for (const t of tensors) {
    if (seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    n += t.size * (t.dtype === 'bool' ? 1 : 4);
  }
  return n;
}
