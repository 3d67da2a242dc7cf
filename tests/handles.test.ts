/**
 * sharedHandle (src/util/handles.ts), the second handle a cache keeps at each hook point: it shares the data (no
 * copy), outlives the handle it came from, frees the data with the last handle, and while a gradient is being
 * recorded stays on the tape, as the reshape it replaces did.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { sharedHandle } from '../src/util/handles.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('sharedHandle', () => {
  it('shares the data, outlives the original, and frees the data with the last handle', async () => {
    const before = tf.memory();
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const h = sharedHandle(x);
    expect(h).not.toBe(x);
    expect(h.dataId).toBe(x.dataId);
    expect([h.shape, h.dtype]).toEqual([[2, 3], 'float32']);
    expect(tf.memory().numTensors).toBe(before.numTensors + 2);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1); // one buffer, two handles
    x.dispose();
    expect(Array.from(await h.data())).toEqual([1, 2, 3, 4, 5, 6]);
    h.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers);
  });

  it('inside tf.tidy a kept handle survives the scope and the tensor it came from does not', async () => {
    const before = tf.memory().numTensors;
    let kept: tf.Tensor | undefined;
    const returned = tf.tidy(() => {
      const x = tf.range(0, 4).reshape([2, 2]);
      kept = tf.keep(sharedHandle(x)); // kept, as the cache keeps it; x goes with the scope
      sharedHandle(x); // neither kept nor returned: goes with the scope too
      return sharedHandle(x);
    });
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(Array.from(await kept!.data())).toEqual([0, 1, 2, 3]);
    expect(Array.from(await returned.data())).toEqual([0, 1, 2, 3]);
    tf.dispose([kept!, returned]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('while a gradient is recorded the handle is on the tape: the gradient flows through it', async () => {
    const x = tf.tensor1d([1, 2, 3]);
    const g = tf.grad((a: tf.Tensor) => sharedHandle(a.square()).sum())(x);
    expect(Array.from(await g.data())).toEqual([2, 4, 6]);
    tf.dispose([x, g]);
  });
});
