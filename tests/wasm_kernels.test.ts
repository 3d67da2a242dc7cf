import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** [a shape, b shape, transposeA, transposeB]: plain, transposed, batched, broadcast from a batch of 1. */
const CASES: [number[], number[], boolean, boolean][] = [
  [[3, 5], [5, 4], false, false],
  [[5, 3], [5, 4], true, false],
  [[3, 5], [4, 5], false, true],
  [[5, 3], [4, 5], true, true],
  [[2, 3, 4, 5], [2, 3, 5, 6], false, false],
  [[2, 3, 5, 4], [2, 3, 6, 5], true, true],
  [[1, 4, 5], [3, 5, 2], false, false],
  [[3, 4, 5], [1, 5, 2], false, false],
  [[2, 1, 4, 5], [2, 1, 2, 5], false, true],
];

async function product(backend: 'wasm' | 'cpu', sa: number[], sb: number[], ta: boolean, tb: boolean): Promise<number[]> {
  await tf.setBackend(backend);
  const fill = (shape: number[], phase: number) => tf.tensor(Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i * 0.7 + phase)), shape);
  const a = fill(sa, 0);
  const b = fill(sb, 1.3);
  const r = tf.matMul(a, b, ta, tb);
  const out = Array.from(await r.data());
  tf.dispose([a, b, r]);
  return out;
}

describe('the wasm BatchMatMul wrapper (explicit transposes, batches as 2-d products)', () => {
  it.each(CASES)('matMul(%j, %j, transposeA %s, transposeB %s) equals the cpu backend', async (sa, sb, ta, tb) => {
    const onCpu = await product('cpu', sa, sb, ta, tb);
    const onWasm = await product('wasm', sa, sb, ta, tb);
    expect(onWasm.length).toBe(onCpu.length);
    for (let i = 0; i < onCpu.length; i++) expect(Math.abs(onWasm[i] - onCpu[i])).toBeLessThan(1e-5);
  });

  it('a batch whose products share nothing gets each its own right operand (XNNPACK caches packed operands by id)', async () => {
    await tf.setBackend('wasm');
    const a = tf.ones([3, 2, 2]);
    const b = tf.tensor3d([[[1, 0], [0, 1]], [[2, 0], [0, 2]], [[3, 0], [0, 3]]]);
    const r = tf.matMul(a, b);
    expect(Array.from(await r.data())).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    tf.dispose([a, b, r]);
  });

  it('matMul with transposes and a batch leaves tf.memory().numTensors unchanged', async () => {
    await tf.setBackend('wasm');
    const a = tf.ones([2, 3, 5, 4]);
    const b = tf.ones([2, 3, 6, 5]);
    tf.matMul(a, b, true, true).dispose();
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    tf.matMul(a, b, true, true).dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    tf.dispose([a, b]);
  });
});
