/**
 * One computation, read back synchronously or asynchronously. A computation that needs numbers from the
 * backend mid-way (a metric per patching pass, the next token while decoding) is written as a generator that
 * yields each tensor it needs read and receives its values; `readSync` drives it with dataSync, `readAsync`
 * with `await data()`. The asynchronous driver is the one that works on WebGPU in Node, where tfjs cannot read
 * synchronously (src/backend/webgpu_sync_read.ts); in a browser it also keeps the page responsive.
 * The driver disposes each yielded tensor after reading it. If a read fails the generator is closed, so its
 * `finally` blocks free what it holds.
 */
import * as tf from '@tensorflow/tfjs';

export type Values = Float32Array | Int32Array | Uint8Array;
export type Reads<T> = Generator<tf.Tensor, T, Values>;

export function readSync<T>(g: Reads<T>): T {
  let r = g.next(undefined as unknown as Values);
  while (!r.done) {
    const t = r.value;
    let v: Values;
    try {
      v = t.dataSync() as Values;
    } catch (e) {
      g.return(undefined as unknown as T);
      throw e;
    } finally {
      t.dispose();
    }
    r = g.next(v);
  }
  return r.value;
}

export async function readAsync<T>(g: Reads<T>): Promise<T> {
  let r = g.next(undefined as unknown as Values);
  while (!r.done) {
    const t = r.value;
    let v: Values;
    try {
      v = (await t.data()) as Values;
    } catch (e) {
      g.return(undefined as unknown as T);
      throw e;
    } finally {
      t.dispose();
    }
    r = g.next(v);
  }
  return r.value;
}
