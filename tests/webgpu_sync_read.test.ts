import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { refuseSyncReads, type SyncReadBackend } from '../src/backend/webgpu_sync_read.js';
import { HeadlensError } from '../src/errors.js';
import { readAsync, readSync, type Reads } from '../src/util/reads.js';

describe('synchronous reads of WebGPU tensors in Node (webgpu_sync_read.ts)', () => {
  it('a HeadlensError naming the async forms, and values still on the CPU read as before', () => {
    const onCpu = { values: new Float32Array([7]), dtype: 'float32' };
    const onGpu = { values: null, dtype: 'float32' };
    const backend: SyncReadBackend = {
      tensorMap: { get: (id: object) => (id as { t: typeof onCpu }).t },
      readSync: () => {
        throw new ReferenceError('OffscreenCanvas is not defined');
      },
    };
    refuseSyncReads(backend);
    expect(() => backend.readSync({ t: onGpu })).toThrow(HeadlensError);
    expect(() => backend.readSync({ t: onGpu })).toThrow(/activationPatchingAsync/);
    expect(backend.readSync({ t: onCpu })).toEqual(new Float32Array([7]));
  });
});

describe('one computation read synchronously or asynchronously (util/reads.ts)', () => {
  function* sumOfSquares(xs: number[][], log: string[]): Reads<number> {
    let total = 0;
    try {
      for (const x of xs) total += (yield tf.tidy(() => tf.tensor1d(x).square().sum()))[0];
      return total;
    } finally {
      log.push('closed');
    }
  }

  it('both drivers give the same value and free every tensor', async () => {
    const before = tf.memory().numTensors;
    const log: string[] = [];
    expect(readSync(sumOfSquares([[1, 2], [3]], log))).toBe(14);
    expect(await readAsync(sumOfSquares([[1, 2], [3]], log))).toBe(14);
    expect(log).toEqual(['closed', 'closed']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a failing read closes the computation (its finally runs) and the error reaches the caller', async () => {
    const log: string[] = [];
    function* bad(): Reads<number> {
      try {
        const t = tf.scalar(1);
        t.dispose();
        return (yield t)[0]; // reading a disposed tensor throws
      } finally {
        log.push('closed');
      }
    }
    expect(() => readSync(bad())).toThrow(/disposed/);
    await expect(readAsync(bad())).rejects.toThrow(/disposed/);
    expect(log).toEqual(['closed', 'closed']);
  });
});
