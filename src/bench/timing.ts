/**
 * Wall-clock timing that is honest on asynchronous backends. On WebGPU a tfjs call only queues work, so a
 * timed block ends by reading back one number computed from the last result: the queue runs in order, so
 * that read waits for everything before it. Readbacks are never inside the timed calls themselves.
 * On the CPU backends (wasm, cpu: synchronous, one thread) the clock is the process's CPU time instead of
 * the wall clock, so that other jobs on a shared machine do not inflate one measurement and not the next.
 */
import * as tf from '@tensorflow/tfjs';

/** Milliseconds: CPU time of this process on CPU backends in Node, wall time elsewhere. */
export function now(): number {
  if (['wasm', 'cpu'].includes(tf.getBackend()) && typeof process !== 'undefined' && process.cpuUsage) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  return performance.now();
}

/** What `now()` measures on the current backend. */
export function clockName(): 'cpu' | 'wall' {
  return ['wasm', 'cpu'].includes(tf.getBackend()) && typeof process !== 'undefined' && !!process.cpuUsage ? 'cpu' : 'wall';
}

/** Waits until the backend has finished everything queued so far (a 1-element readback). */
export async function sync(t: tf.Tensor): Promise<void> {
  const one = tf.tidy(() => t.reshape([-1]).slice(0, 1));
  await one.data();
  one.dispose();
}

/**
 * Milliseconds per call of `fn`, the best of `trials` blocks of `reps` calls each (after `warmup` calls).
 * `fn` returns tensors the timer disposes.
 */
export async function msPerCall(fn: () => tf.Tensor | tf.Tensor[], opts: { reps: number; trials: number; warmup?: number }): Promise<number> {
  const run = () => {
    const out = fn();
    return Array.isArray(out) ? out : [out];
  };
  for (let i = 0; i < (opts.warmup ?? 1); i++) {
    const out = run();
    await sync(out[0]);
    tf.dispose(out);
  }
  let best = Infinity;
  for (let t = 0; t < opts.trials; t++) {
    const t0 = now();
    let last: tf.Tensor[] = [];
    for (let r = 0; r < opts.reps; r++) {
      tf.dispose(last);
      last = run();
    }
    await sync(last[0]);
    best = Math.min(best, (now() - t0) / opts.reps);
    tf.dispose(last);
  }
  return best;
}
