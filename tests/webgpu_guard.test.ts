/**
 * The WebGPU guards (src/backend/webgpu_guard.ts) on a stand-in for tfjs' WebGPU backend with small limits:
 * no GPU is needed, and CI has none. tests/device/large_batch.ts checks them on a real one.
 */
import { describe, expect, it } from 'vitest';
import { checkGpuBuffer, guardWebGPU, type WebGPUBackendLike } from '../src/backend/webgpu_guard.js';
import { HeadlensError } from '../src/errors.js';
import { headlensError } from './expect_error.js';

const STORAGE = 0x80;
const MAP_READ = 0x01;
const limits = { maxBufferSize: 4096, maxStorageBufferBindingSize: 1024 };

function fakeBackend() {
  const created: number[] = [];
  const listeners: ((ev: { error: { message: string } }) => void)[] = [];
  const backend: WebGPUBackendLike = {
    device: { limits, addEventListener: (_type, fn) => listeners.push(fn) },
    bufferManager: { acquireBuffer: (size: number) => created.push(size) },
    read: async () => new Float32Array([1, 2]),
  };
  const report = (message: string) => listeners.forEach((fn) => fn({ error: { message } }));
  return { backend, created, report };
}

describe('checkGpuBuffer', () => {
  it('checkGpuBuffer(bytes) accepts buffers within both limits', () => {
    expect(() => checkGpuBuffer(1024, STORAGE, limits)).not.toThrow();
    expect(() => checkGpuBuffer(4096, MAP_READ, limits)).not.toThrow();
  });

  it('checkGpuBuffer(bytes) refuses a storage buffer over maxStorageBufferBindingSize, naming the shape and both sizes', () => {
    const e = headlensError(() => checkGpuBuffer(2048, STORAGE, limits, [2, 256]));
    expect(e.message).toContain('[2,256]');
    expect(e.message).toContain('maxStorageBufferBindingSize is 1024 bytes');
    expect(e.message).toMatch(/smaller batch/);
  });

  it('checkGpuBuffer(bytes) refuses any buffer over maxBufferSize', () => {
    const e = headlensError(() => checkGpuBuffer(8192, MAP_READ, limits));
    expect(e.message).toContain('maxBufferSize is 4096 bytes');
  });
});

describe('guardWebGPU', () => {
  it('guardWebGPU(backend) lets buffers within the limits through and refuses larger ones before creating them', () => {
    const { backend, created } = fakeBackend();
    expect(guardWebGPU(backend)).toEqual(limits);
    backend.bufferManager.acquireBuffer(512, STORAGE);
    headlensError(() => backend.bufferManager.acquireBuffer(2048, STORAGE));
    expect(created).toEqual([512]);
  });

  it('guardWebGPU(backend) turns an error the device reported into a HeadlensError at the next readback, once', async () => {
    const { backend, report } = fakeBackend();
    guardWebGPU(backend);
    expect(await backend.read({})).toEqual(new Float32Array([1, 2]));
    report('Binding size (2048) is larger than the maximum binding size (1024).');
    const err = await backend.read({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HeadlensError);
    expect((err as Error).message).toContain('Binding size (2048)');
    expect(await backend.read({})).toEqual(new Float32Array([1, 2]));
  });

  it("guardWebGPU(backend) refuses a tensor too large to bind before its buffer is made, naming the tensor's shape", () => {
    const { backend, created } = fakeBackend();
    const tensors = new Map<object, { shape: number[]; resource?: unknown }>();
    const uploaded: object[] = [];
    Object.assign(backend, { tensorMap: tensors, uploadToGPU: (id: object) => uploaded.push(id) });
    guardWebGPU(backend);
    const [small, big, onGpu] = [{}, {}, {}];
    tensors.set(small, { shape: [16, 16] }).set(big, { shape: [3, 128] }).set(onGpu, { shape: [3, 128], resource: {} });
    backend.uploadToGPU!(small);
    backend.uploadToGPU!(onGpu); // already has its buffer: nothing new is made
    const e = headlensError(() => backend.uploadToGPU!(big));
    expect(e.message).toContain('shape [3,128] (0 MiB)');
    expect(uploaded).toEqual([small, onGpu]);
    expect(created).toEqual([]);
  });

  it('guardWebGPU(backend) a second time wraps nothing twice', () => {
    const { backend, created } = fakeBackend();
    guardWebGPU(backend);
    const once = backend.bufferManager.acquireBuffer;
    guardWebGPU(backend);
    expect(backend.bufferManager.acquireBuffer).toBe(once);
    backend.bufferManager.acquireBuffer(8, STORAGE);
    expect(created).toEqual([8]);
  });
});

describe('releasePooledBuffers (webgpu_guard.ts)', () => {
  it('destroys the free buffers only, keeps the pool keys and its counts right', async () => {
    const { releasePooledBuffers } = await import('../src/backend/webgpu_guard.js');
    const destroyed: number[] = [];
    const buf = (size: number) => ({ size, destroy: () => void destroyed.push(size) });
    const inUse = buf(999);
    const pool = { freeBuffers: new Map([['64_128', [buf(64), buf(64)]], ['4096_128', [buf(4096)]]]), usedBuffers: new Map([['999_128', [inUse]]]), numFreeBuffers: 3, numBytesAllocated: 64 + 64 + 4096 + 999 };
    expect(releasePooledBuffers({ bufferManager: pool })).toBe(4224);
    expect(destroyed.sort((a, b) => a - b)).toEqual([64, 64, 4096]);
    expect([...pool.freeBuffers.keys()]).toEqual(['64_128', '4096_128']);
    expect(pool.numFreeBuffers).toBe(0);
    expect(pool.numBytesAllocated).toBe(999);
    expect(releasePooledBuffers({ bufferManager: {} })).toBe(0);
  });
});
