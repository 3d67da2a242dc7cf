/**
 * The model's side of hooks. The forward pass calls `hp.point(name, act)` at every hook point; what
 * happens there (caching, patching, ablating) belongs to src/hooks, which hands the forward an
 * Interceptor. With no interceptor a hook point costs one branch.
 */
import type * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

export interface Interceptor {
  /** Whether anything listens at `name`; optional activations (attn.hook_result) are computed only then. */
  wants(name: string): boolean;
  /** Sees the activation at `name`; returns the tensor the forward continues with (the same one, or a new one). */
  call(name: string, act: tf.Tensor): tf.Tensor;
}

export class HookPoints {
  constructor(private readonly interceptor?: Interceptor) {}

  wants(name: string): boolean {
    return this.interceptor?.wants(name) ?? false;
  }

  point<T extends tf.Tensor>(name: string, act: T): T {
    if (!this.interceptor || !this.interceptor.wants(name)) return act;
    const out = this.interceptor.call(name, act);
    if (out !== act && (out.shape.length !== act.shape.length || out.shape.some((n, i) => n !== act.shape[i]))) {
      throw new HeadlensError(
        `hook at ${name} returned shape [${out.shape}] but the activation is [${act.shape}]`,
        'a hook must return a tensor of the same shape (or nothing)',
      );
    }
    return out as T;
  }
}
