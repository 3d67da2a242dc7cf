/**
 * Kernels the wasm backend lacks or runs slowly.
 * - UnsortedSegmentSum: tfjs' wasm backend has none, and it is the gradient of tf.gather (embedding
 *   lookups, the key/value head repeat under GQA), so without it nothing trains on the CPU. This one runs in
 *   JavaScript on the wasm heap: out[segmentIds[i]] += x[i].
 * - BatchMatMul: the wasm kernel is fast (XNNPACK) only for one plain 2-d product. With a transposed operand
 *   or a batch it falls back to a loop that measured 10–17× slower here (Node 20, one thread:
 *   [2048,128]ᵀ·[2048,512] 256 ms vs 15 ms with the transpose done first; [16,512,512]·[16,512,32]
 *   135 ms vs 11 ms as 16 products). Backward passes are full of both (every weight gradient is Xᵀ·dY,
 *   attention's are batched), so training was ~8× slower than the forward. The wrapper below transposes
 *   explicitly and splits a batch into 2-d products on the wasm heap, then calls the original kernel.
 */
import * as tf from '@tensorflow/tfjs';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
}

type KernelFunc = (args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }) => tf.TensorInfo | tf.TensorInfo[];

let wrappedBatchMatMul = false;

/** Switches for `headlens bench --ablate`: off runs the wasm backend's own BatchMatMul unchanged. */
export const wasmKernelSwitches = { batchMatMul: true };

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function registerBatchMatMul(): void {
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transposeK = tf.getKernel('Transpose', 'wasm');
  if (wrappedBatchMatMul || !orig || !transposeK) return;
  const matmul = orig.kernelFunc as KernelFunc;
  const transpose = transposeK.kernelFunc as KernelFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  wrappedBatchMatMul = true;
  tf.registerKernel({
    ...orig,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const wasm = backend as unknown as WasmBackendLike;
      let { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      // only same-rank float products whose batch is shared or broadcast from 1; anything else as before
      if (!wasmKernelSwitches.batchMatMul || a.shape.length !== b.shape.length || a.dtype !== 'float32' || b.dtype !== 'float32') return matmul({ inputs, attrs, backend });
      const made: tf.TensorInfo[] = [];
      const swapLast = (t: tf.TensorInfo) => {
        const perm = t.shape.map((_, i) => i);
        [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
        const r = transpose({ inputs: { x: t }, attrs: { perm }, backend }) as tf.TensorInfo;
        made.push(r);
        return r;
      };
      try {
        if (transposeA) a = swapLast(a);
        if (transposeB) b = swapLast(b);
        const rank = a.shape.length;
        const [m, k] = a.shape.slice(-2);
        const n = b.shape[rank - 1];
        const batchA = size(a.shape.slice(0, -2));
        const batchB = size(b.shape.slice(0, -2));
        const plain = { transposeA: false, transposeB: false };
        if (batchA === 1 && batchB === 1) return matmul({ inputs: { a, b }, attrs: { ...attrs, ...plain }, backend });
        const sameBatch = a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
        if (!sameBatch && batchA !== 1 && batchB !== 1) return matmul({ inputs: { a, b }, attrs: { ...attrs, ...plain }, backend });
        const batchShape = batchA >= batchB ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
        const batch = Math.max(batchA, batchB);
        const out = wasm.makeOutput([...batchShape, m, n], 'float32');
        // the wasm kernel caches XNNPACK's packed copy of the right operand by its data id, so every product
        // gets fresh operands; views are taken afresh too, since a kernel call may grow the heap
        const part = (t: tf.TensorInfo, shape: number[], off: number) => {
          const p = wasm.makeOutput(shape, 'float32');
          (wasm.typedArrayFromHeap(p) as Float32Array).set((wasm.typedArrayFromHeap(t) as Float32Array).subarray(off, off + size(shape)));
          return p;
        };
        for (let i = 0; i < batch; i++) {
          const ai = part(a, [m, k], (batchA === 1 ? 0 : i) * m * k);
          const bi = part(b, [k, n], (batchB === 1 ? 0 : i) * k * n);
          const r = matmul({ inputs: { a: ai, b: bi }, attrs: { ...attrs, ...plain }, backend }) as tf.TensorInfo;
          (wasm.typedArrayFromHeap(out) as Float32Array).set(wasm.typedArrayFromHeap(r) as Float32Array, i * m * n);
          for (const t of [r, ai, bi]) wasm.disposeData(t.dataId);
        }
        return out;
      } finally {
        for (const t of made) wasm.disposeData(t.dataId);
      }
    },
  });
}

export function registerWasmKernels(): void {
  registerBatchMatMul();
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      const wasm = backend as unknown as WasmBackendLike;
      const lead = segmentIds.shape.length;
      const inner = x.shape.slice(lead).reduce((a, b) => a * b, 1);
      const out = wasm.makeOutput([numSegments, ...x.shape.slice(lead)], x.dtype);
      const xs = wasm.typedArrayFromHeap(x);
      const ids = wasm.typedArrayFromHeap(segmentIds);
      const o = wasm.typedArrayFromHeap(out);
      o.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const s = ids[i];
        if (s < 0 || s >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
        const src = i * inner;
        const dst = s * inner;
        for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
      }
      return out;
    },
  });
}
