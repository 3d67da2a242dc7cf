/**
 * Cheaper host-to-GPU uploads and fewer queue submissions for tfjs-backend-webgpu 4.22 (issue 18, decoding).
 *
 * Measured on an H100 (bench/results/h100-2026-12-07-s3, tests/device/decode_profile.ts with --cpu-prof): one
 * single-token decoding step of the pythia-1.4b shape dispatched 1,524 programs and took about 258 ms, of which the
 * GPU was busy for about 80 ms. The rest was JavaScript and Dawn's host side:
 *   - 41 % in tfjs' submitQueue (queue.submit every 15 dispatches, and the destruction of upload staging buffers);
 *   - 15 % in GPUDevice.createBuffer, much of it for uploads: tfjs uploads every tensor made on the host (each
 *     scalar an op is given as a JavaScript number, each position id and mask) through a fresh staging buffer
 *     created mapped, copied in the command encoder and destroyed at the next submit — 149 uploads a step.
 * Two changes, both behind `webgpuHostTuning` so `headlens bench` can time them against tfjs' own path:
 *   uploads      a tensor's values go to a pooled storage buffer through queue.writeBuffer (Dawn copies them into
 *                its own staging ring): no buffer is created or destroyed per upload. This is safe in queue order:
 *                a pooled buffer is free only after the commands that used it were submitted (tfjs defers the
 *                release of buffers the open encoder references until its submit), and the new tensor's readers are
 *                recorded in the open encoder, which is submitted after the write.
 *   submitBatch  tfjs' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE raised from 15 to 128 dispatches per submission.
 *   bucketBuffers  (Node only) tensor buffers over 64 KiB are made in sizes rounded up to 8 steps per power of two
 *                (at most 12.5 % more bytes), so a tensor that grows by a row per step (the KV cache's keys and values)
 *                finds a pooled buffer instead of a new one: tfjs pools by exact byte size, and a step of the
 *                pythia-1.4b shape made 48 new buffers for that alone. A read then copies back only the tensor's own
 *                bytes. Not in browsers: tfjs' synchronous read there sizes its canvas by the buffer.
 *   pendingBytes a tensor freed while the open command encoder still uses it goes back to tfjs' pool only at the next
 *                submission; until then its buffer can serve nothing else. With 128 dispatches a submission, a
 *                long prefill's blocks (about 5 GiB of temporaries each for the llama-7b shape at 16K tokens) piled
 *                up several blocks' worth of such buffers before any was reused: with a 16 GiB KV cache beside the
 *                weights that ran the 80 GB H100 out of memory (bench/results/h100-2026-12-07-s4). So once the
 *                buffers waiting so exceed this many bytes, the open work is submitted at once and they go back to
 *                the pool. A decoding step frees a few MiB and never reaches it.
 */
import * as tf from '@tensorflow/tfjs';

/** Switches read when the webgpu backend starts (src/backend/index.ts) or at each call; all on by default. */
export const webgpuHostTuning = {
  uploads: true,
  submitBatch: 128 as number | null,
  bucketBuffers: true,
  pendingBytes: 2 ** 30 as number | null,
  /** Uniforms of a submission in one buffer, bind-group layouts asked once (webgpu_dispatch.ts). */
  leanDispatch: true,
};

/** The parts of tfjs-backend-webgpu 4.22's WebGPUBackend this reaches. */
export interface UploadBackend {
  uploadToGPU(dataId: object): void;
  read(dataId: object): Promise<unknown>;
  disposeData?(dataId: object, force?: boolean): boolean;
  submitQueue?(): void;
  endComputePassEncoder?(): void;
  tensorDataPendingDisposal?: object[];
  tensorMap: { get(dataId: object): { values?: ArrayLike<number> | null; resource?: unknown; dtype: string; shape: number[] } | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): unknown };
  device: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBufferView): void };
}

const tuned = new WeakSet<object>();

/** GPUBufferUsage's STORAGE | COPY_SRC | COPY_DST, the usage tfjs gives tensor buffers. */
const TENSOR_USAGE = 0x80 | 0x4 | 0x8;

/**
 * Applies webgpuHostTuning to a started webgpu backend (once). Returns what was changed, for the backend's reason
 * line; empty when nothing was (switched off, or a tfjs whose backend lacks the methods this replaces).
 */
export function tuneWebGPUHost(backend: UploadBackend): string[] {
  if (tuned.has(backend)) return [];
  tuned.add(backend);
  const done: string[] = [];
  if (webgpuHostTuning.submitBatch) {
    applySubmitBatch();
    done.push(`${webgpuHostTuning.submitBatch} dispatches a submission`);
  }
  // the wrappers read the switches at each call, so a benchmark can time both paths in one process
  if (typeof backend.uploadToGPU === 'function' && backend.queue?.writeBuffer && backend.bufferManager?.acquireBuffer) {
    const original = backend.uploadToGPU.bind(backend);
    backend.uploadToGPU = (dataId: object) => {
      if (!webgpuHostTuning.uploads) return original(dataId);
      const t = backend.tensorMap.get(dataId);
      // only plain numeric host values; anything else (already on the GPU, no values, complex, string) as tfjs does
      if (!t || t.resource != null || !t.values || !['float32', 'int32', 'bool'].includes(t.dtype)) return original(dataId);
      const n = t.shape.reduce((a, b) => a * b, 1);
      const v = t.values;
      const data = t.dtype === 'float32' ? (v instanceof Float32Array ? v : Float32Array.from(v)) : v instanceof Int32Array ? v : Int32Array.from(v);
      if (data.length !== n || n === 0) return original(dataId);
      const buffer = backend.bufferManager.acquireBuffer(4 * n, TENSOR_USAGE);
      backend.queue.writeBuffer(buffer, 0, data);
      t.values = null; // as tfjs: once uploaded, the values live on the GPU only
      t.resource = buffer;
    };
    if (webgpuHostTuning.uploads) done.push('uploads through queue.writeBuffer');
  }
  if (typeof backend.disposeData === 'function' && typeof backend.submitQueue === 'function' && typeof backend.endComputePassEncoder === 'function' && Array.isArray(backend.tensorDataPendingDisposal)) {
    submitWhenPending(backend as Required<Pick<UploadBackend, 'disposeData' | 'submitQueue' | 'endComputePassEncoder'>> & UploadBackend);
    if (webgpuHostTuning.pendingBytes) done.push(`a submission once ${(webgpuHostTuning.pendingBytes / 2 ** 30).toFixed(1)} GiB of freed buffers wait`);
  }
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (isNode && typeof backend.read === 'function' && backend.device?.limits) {
    const bm = backend.bufferManager;
    const acquire = bm.acquireBuffer.bind(bm);
    const cap = Math.min(backend.device.limits.maxStorageBufferBindingSize, backend.device.limits.maxBufferSize);
    bm.acquireBuffer = (size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean) =>
      acquire(webgpuHostTuning.bucketBuffers && usage === TENSOR_USAGE && !mappedAtCreation ? bucketBytes(size, cap) : size, usage, mappedAtCreation, reuse);
    const read = backend.read.bind(backend);
    backend.read = async (dataId: object) => {
      const values = (await read(dataId)) as { length: number; subarray?: (a: number, b: number) => unknown } | null;
      const t = backend.tensorMap.get(dataId);
      if (!t || !values || typeof values.subarray !== 'function') return values;
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (values.length <= n) return values;
      // the buffer was a bucket larger than the tensor: keep the tensor's own values (a copy, so the bucket's tail
      // does not stay alive through a view)
      const own = (values as unknown as Float32Array).slice(0, n);
      t.values = own;
      return own;
    };
    if (webgpuHostTuning.bucketBuffers) done.push('buffer sizes in buckets');
  }
  return done;
}

/** Wraps disposeData and submitQueue to count the bytes of freed buffers waiting for a submission (pendingBytes). */
function submitWhenPending(backend: Required<Pick<UploadBackend, 'disposeData' | 'submitQueue' | 'endComputePassEncoder'>> & UploadBackend): void {
  let waiting = 0;
  const submit = backend.submitQueue.bind(backend);
  backend.submitQueue = () => {
    waiting = 0;
    submit();
  };
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean) => {
    const pending = backend.tensorDataPendingDisposal!;
    const before = pending.length;
    const size = (backend.tensorMap.get(dataId)?.resource as { size?: number } | null | undefined)?.size ?? 0;
    const r = dispose(dataId, force);
    const limit = webgpuHostTuning.pendingBytes;
    if (limit && pending.length > before) {
      waiting += size;
      if (waiting >= limit) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
    }
    return r;
  };
}

/** Sets tfjs' submission batch from webgpuHostTuning.submitBatch (null: tfjs' default of 15). */
export function applySubmitBatch(): void {
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', webgpuHostTuning.submitBatch ?? 15);
}

/**
 * A byte size rounded up to one of 8 steps per power of two (sizes up to 64 KiB as they are), never above `cap`
 * (the binding limit), and never below `size`.
 */
export function bucketBytes(size: number, cap: number): number {
  if (size <= 65536) return size;
  const step = 2 ** (Math.floor(Math.log2(size)) - 3);
  const up = Math.ceil(size / step) * step;
  return up <= cap ? up : size;
}
