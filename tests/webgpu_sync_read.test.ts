import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { refuseSyncReads, type SyncReadBackend } from '../src/backend/webgpu_sync_read.js';
import { HeadlensError } from '../src/errors.js';
import { pipelinedPasses } from '../src/interp/interventions/stacked_runs.js';
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

describe('a sweep whose passes are read one pass late (pipelinedPasses, prefetch)', () => {
  /** Three passes of two values each; `log` gets the order of recording, reads started and values used. */
  function* sweep(log: string[], failAt?: number): Reads<number[]> {
    const out: number[] = [];
    yield* pipelinedPasses(
      [0, 1, 2],
      (c) => {
        if (c === failAt) throw new Error(`pass ${c} failed`);
        log.push(`record ${c}`);
        return tf.tensor1d([c, 10 * c]);
      },
      (c, v) => {
        log.push(`use ${c}`);
        out.push(...Array.from(v));
      },
    );
    return out;
  }

  it('both drivers give the values in order, each pass used after the next is recorded; readAsync starts each read at once', async () => {
    const before = tf.memory().numTensors;
    const syncLog: string[] = [];
    expect(readSync(sweep(syncLog))).toEqual([0, 0, 1, 10, 2, 20]);
    expect(syncLog).toEqual(['record 0', 'record 1', 'use 0', 'record 2', 'use 1', 'use 2']);
    // asynchronously, the read of a pass starts as soon as it is recorded (Tensor.data is called then)
    const asyncLog: string[] = [];
    const data = tf.Tensor.prototype.data;
    tf.Tensor.prototype.data = function (this: tf.Tensor) {
      asyncLog.push(`read ${this.dataSync()[0]}`);
      return data.call(this) as never;
    } as typeof data;
    try {
      expect(await readAsync(sweep(asyncLog))).toEqual([0, 0, 1, 10, 2, 20]);
    } finally {
      tf.Tensor.prototype.data = data;
    }
    expect(asyncLog).toEqual(['record 0', 'read 0', 'record 1', 'read 1', 'use 0', 'record 2', 'read 2', 'use 1', 'use 2']);
    // a computation read synchronously inside an asynchronous one's step starts no read ahead
    const nestedLog: string[] = [];
    function* outer(): Reads<number[]> {
      const inner = readSync(sweep(nestedLog));
      return [...inner, (yield tf.scalar(7))[0]];
    }
    tf.Tensor.prototype.data = function (this: tf.Tensor) {
      nestedLog.push('read');
      return data.call(this) as never;
    } as typeof data;
    try {
      expect(await readAsync(outer())).toEqual([0, 0, 1, 10, 2, 20, 7]);
    } finally {
      tf.Tensor.prototype.data = data;
    }
    expect(nestedLog).toEqual(['record 0', 'record 1', 'use 0', 'record 2', 'use 1', 'use 2', 'read']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a pass that fails frees the values recorded but not read, and the error reaches the caller', async () => {
    const before = tf.memory().numTensors;
    expect(() => readSync(sweep([], 2))).toThrow(/pass 2 failed/);
    await expect(readAsync(sweep([], 2))).rejects.toThrow(/pass 2 failed/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
