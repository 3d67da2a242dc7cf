/**
 * A second handle on a tensor's data: a new tf.Tensor with the same shape, dtype and data, which frees the data only
 * when every handle is disposed. It is what `t.reshape(t.shape)` gives, without the kernel call: a cache takes one
 * at each of its hook points (a full cache of GPT-2 small, 208 of them a run), and there the engine's kernel
 * machinery (scopes, registry, profiler) was most of the handle's cost. While a gradient is being recorded the
 * handle comes from reshape, so the tape links it to the tensor it shares.
 */
import * as tf from '@tensorflow/tfjs';

interface EngineInternals {
  isTapeOn(): boolean;
  state: { tensorInfo: { get(dataId: object): { backend: tf.KernelBackend } | undefined } };
  makeTensorFromTensorInfo(info: { dataId: object; shape: number[]; dtype: tf.DataType }, backend: tf.KernelBackend): tf.Tensor;
}

/** direct: false takes every handle through reshape, as before (tests/device/cache_profile.ts times both). */
export const sharedHandles = { direct: true };

export function sharedHandle<T extends tf.Tensor>(t: T): T {
  const engine = tf.engine() as unknown as EngineInternals;
  const owner = engine.state.tensorInfo.get(t.dataId)?.backend;
  if (!sharedHandles.direct || engine.isTapeOn() || !owner || t.isDisposed) return t.reshape(t.shape) as T;
  owner.incRef(t.dataId);
  return engine.makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype }, owner) as T;
}
