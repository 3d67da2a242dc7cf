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

/**
 * Reads started ahead (prefetch) by the asynchronous driver that is running the computation: the tensor's pending
 * values, awaited when the computation yields the tensor.
 */
const started = new WeakMap<tf.Tensor, Promise<Values>>();
/** Whether an asynchronous driver is inside its computation's step now (set around each g.next: stepOf). */
let asyncStep = 0;

/**
 * Starts reading `t` now, for a computation that yields it later, after recording more work: under readAsync the
 * device then computes `t` while the host records what follows, instead of the two waiting on each other at each
 * read (a patching sweep's passes). Under readSync it does nothing. The computation still yields `t` (which the
 * driver disposes) and gets its values then; a computation that ends without yielding it disposes it itself.
 */
export function prefetch(t: tf.Tensor): void {
  if (asyncStep > 0 && !started.has(t)) {
    const p = t.data() as Promise<Values>;
    p.catch(() => undefined); // a failure surfaces when the tensor is yielded (or never, if it is not)
    started.set(t, p);
  }
}

/**
 * One step of `g` under a driver: an asynchronous driver's steps may start reads ahead (prefetch); a synchronous
 * one's never do, even inside an asynchronous driver's step (a callback that reads synchronously).
 */
function stepOf<T>(g: Reads<T>, driver: 'sync' | 'async'): (v: Values) => IteratorResult<tf.Tensor, T> {
  return (v) => {
    const outer = asyncStep;
    asyncStep = driver === 'async' ? outer + 1 : 0;
    try {
      return g.next(v);
    } finally {
      asyncStep = outer;
    }
  };
}

export function readSync<T>(g: Reads<T>): T {
  const next = stepOf(g, 'sync');
  let r = next(undefined as unknown as Values);
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
    r = next(v);
  }
  return r.value;
}

/** Drives `g` with `await data()`; `onRead` is called after each read (a benchmark stamps the clock there). */
export async function readAsync<T>(g: Reads<T>, opts: { onRead?: () => void } = {}): Promise<T> {
  const step = stepOf(g, 'async');
  let r = step(undefined as unknown as Values);
  while (!r.done) {
    const t = r.value;
    let v: Values;
    try {
      v = (await (started.get(t) ?? t.data())) as Values;
    } catch (e) {
      g.return(undefined as unknown as T);
      throw e;
    } finally {
      started.delete(t);
      t.dispose();
    }
    opts.onRead?.();
    r = step(v);
  }
  return r.value;
}

/**
 * Reads `t` (the driver disposes it) as nested arrays in its shape, as `arraySync` would give: the yield of a
 * computation that used to call `t.arraySync()`. A tensor the computation does not own (a cache's) is read
 * through a copy: `yield* readNested(x.clone())`.
 */
export function* readNested<T = unknown>(t: tf.Tensor): Reads<T> {
  const shape = t.shape;
  const v = yield t;
  return nest(Array.from(v), shape) as T;
}

/**
 * Reads two tensors (the driver disposes each as it reads it) as nested arrays in their shapes. If the first read
 * throws, the second tensor, which was never yielded, is disposed here.
 */
export function* readNestedPair<A = unknown, B = unknown>(first: tf.Tensor, second: tf.Tensor): Reads<[A, B]> {
  let a: A;
  try {
    a = yield* readNested<A>(first);
  } catch (e) {
    second.dispose();
    throw e;
  }
  return [a, yield* readNested<B>(second)];
}

/** Reads `t` (the driver disposes it) as a flat number[]. */
export function* readFlat(t: tf.Tensor): Reads<number[]> {
  return Array.from(yield t);
}

function nest(flat: number[], shape: number[]): unknown {
  if (shape.length <= 1) return shape.length === 0 ? flat[0] : flat;
  const [n, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, (_, i) => nest(flat.slice(i * size, (i + 1) * size), rest));
}

/** Whether `x` is a computation (a generator) rather than its value. */
export function isReads<T>(x: T | Reads<T>): x is Reads<T> {
  return typeof x === 'object' && x !== null && typeof (x as Reads<T>).next === 'function' && typeof (x as Reads<T>)[Symbol.iterator] === 'function';
}

/** The value of `x`, running it first if it is a computation: lets a callback return either a value or a computation. */
export function* valueOf<T>(x: T | Reads<T>): Reads<T> {
  return isReads(x) ? yield* x : x;
}
