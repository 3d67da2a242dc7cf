/**
 * Turns what WebGPU refuses into errors. tfjs' WebGPU backend (4.22) never reads WebGPU's errors: a buffer
 * larger than the device allows, or bound larger than it allows, is a validation error that WebGPU reports
 * only through error scopes or the device's `uncapturederror` event; the dispatches that use it are dropped
 * and the call returns whatever the output buffer held (tfjs reuses freed buffers, so often numbers close
 * to right ones). Two guards, installed by initBackend on the webgpu backend:
 *  - before tfjs creates a buffer, its size is checked against the device's granted maxBufferSize and, for
 *    a storage buffer (every tensor), maxStorageBufferBindingSize: too large throws a HeadlensError naming
 *    the sizes, before anything runs;
 *  - every error the device reports is kept, and the next readback (`data()`, `array()`) throws it as a
 *    HeadlensError instead of returning numbers from a dropped dispatch.
 */
import { HeadlensError } from '../errors.js';

/** The device limits that decide whether a tensor fits in one WebGPU buffer (bytes). */
export interface GpuBufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** GPUBufferUsage.STORAGE: tfjs gives it to every tensor's buffer, which its kernels bind whole. */
const STORAGE = 0x80;

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/**
 * Throws a HeadlensError if a buffer of `bytes` (with WebGPU `usage` flags) exceeds what the device granted.
 * `shape`, when known, is named in the message.
 */
export function checkGpuBuffer(bytes: number, usage: number, limits: GpuBufferLimits, shape?: number[]): void {
  const what = shape ? `a tensor of shape [${shape}] (${mib(bytes)})` : `a buffer of ${bytes} bytes (${mib(bytes)})`;
  const fix = 'use a smaller batch (for patching sweeps, a smaller maxPassBytes or batchSize), or a backend without this limit (wasm, tensorflow)';
  if (bytes > limits.maxBufferSize) {
    throw new HeadlensError(`WebGPU cannot hold ${what}: the device's maxBufferSize is ${limits.maxBufferSize} bytes (${mib(limits.maxBufferSize)})`, fix);
  }
  if (usage & STORAGE && bytes > limits.maxStorageBufferBindingSize) {
    throw new HeadlensError(
      `WebGPU cannot bind ${what} to a kernel: the device's maxStorageBufferBindingSize is ${limits.maxStorageBufferBindingSize} bytes (${mib(limits.maxStorageBufferBindingSize)})`,
      fix,
    );
  }
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend the guards reach (4.22's field names). */
export interface WebGPUBackendLike {
  device: {
    limits: GpuBufferLimits;
    addEventListener?(type: 'uncapturederror', fn: (ev: { error: { message: string } }) => void): void;
  };
  bufferManager: { acquireBuffer(size: number, usage: number, ...rest: unknown[]): unknown };
  read(dataId: object): Promise<unknown>;
  /** Creates a tensor's buffer when a kernel first needs it; `tensorMap` knows the tensor's shape. */
  uploadToGPU?(dataId: object): void;
  tensorMap?: { get(dataId: object): { shape: number[]; resource?: unknown } | undefined };
}

const guarded = new WeakSet<object>();

/** Installs both guards on a webgpu backend (once; a second call does nothing). Returns the limits it enforces. */
export function guardWebGPU(backend: WebGPUBackendLike): GpuBufferLimits {
  const limits = { maxBufferSize: backend.device.limits.maxBufferSize, maxStorageBufferBindingSize: backend.device.limits.maxStorageBufferBindingSize };
  if (guarded.has(backend)) return limits;
  guarded.add(backend);
  // by tensor first, so the message names its shape (every dtype takes 4 bytes an element on WebGPU)…
  const upload = backend.uploadToGPU?.bind(backend);
  if (upload && backend.tensorMap) {
    const tensors = backend.tensorMap;
    backend.uploadToGPU = (dataId: object) => {
      const t = tensors.get(dataId);
      if (t && t.resource == null) checkGpuBuffer(4 * t.shape.reduce((a, b) => a * b, 1), STORAGE, limits, t.shape);
      upload(dataId);
    };
  }
  // …then every buffer, staging buffers for readback included
  const bm = backend.bufferManager;
  const acquire = bm.acquireBuffer.bind(bm);
  bm.acquireBuffer = (size: number, usage: number, ...rest: unknown[]) => {
    checkGpuBuffer(size, usage, limits);
    return acquire(size, usage, ...rest);
  };
  const reported: string[] = [];
  backend.device.addEventListener?.('uncapturederror', (ev) => reported.push(ev.error.message));
  const read = backend.read.bind(backend);
  backend.read = async (dataId: object) => {
    const values = await read(dataId);
    if (reported.length) {
      const all = reported.splice(0);
      throw new HeadlensError(
        `WebGPU reported ${all.length} error${all.length > 1 ? 's' : ''} while computing this result, so its numbers cannot be trusted: ${all[0].split('\n')[0]}`,
        'use a smaller batch; if the sizes are small, report it with the message',
      );
    }
    return values;
  };
  return limits;
}

/** tfjs-backend-webgpu 4.22's buffer pool: freed buffers kept by size and usage for reuse, never returned. */
interface BufferPool {
  freeBuffers: Map<string, { size: number; destroy(): void }[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}

/**
 * Returns the webgpu backend's pooled free buffers to the device and says how many bytes that was. tfjs keeps
 * every freed buffer for reuse by a tensor of the same byte size, so a run over several shapes (contexts of
 * 1K, 4K, 16K tokens) holds the pools of all of them; on an 80 GB card that ran a 7B-parameter shape out of
 * memory at 16K tokens after 1K and 4K had run. Buffers in use are not touched.
 */
export function releasePooledBuffers(backend: { bufferManager: unknown }): number {
  const pool = backend.bufferManager as BufferPool;
  if (!(pool?.freeBuffers instanceof Map)) return 0;
  let bytes = 0;
  for (const list of pool.freeBuffers.values()) {
    for (const b of list.splice(0)) {
      bytes += b.size;
      b.destroy();
    }
  }
  // the map keeps its keys: tfjs' releaseBuffer stops pooling when the map is empty
  pool.numFreeBuffers = 0;
  pool.numBytesAllocated -= bytes;
  return bytes;
}
