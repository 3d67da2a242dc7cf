/**
 * An ActivationCache owns the activations one run kept, by hook name, until `dispose()`.
 * Tensors from `get` belong to the cache; tensors from `stack` and `head` are new and belong to the caller.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import type { HookedConfig } from '../model/config.js';
import { hookHeadAxis } from '../model/hook_names.js';
import { actName, nearest, type ActShortName } from './act_name.js';

/** The axis that indexes heads, for hook points that have one. */
export function headAxis(name: string): number | undefined {
  return hookHeadAxis(name); // from the hook table's axes: 1 for scores and patterns, 2 for q, k, v, z, result
}

export class ActivationCache {
  private disposed = false;

  constructor(
    private readonly acts: Map<string, tf.Tensor>,
    readonly cfg: HookedConfig,
  ) {}

  keys(): string[] {
    return [...this.acts.keys()];
  }

  has(name: string): boolean {
    return this.acts.has(name);
  }

  get size(): number {
    return this.acts.size;
  }

  /** Bytes held by the cached tensors. */
  get bytes(): number {
    let n = 0;
    for (const t of this.acts.values()) n += t.size * 4;
    return n;
  }

  /** The activation at a hook name (owned by the cache). */
  get(name: string): tf.Tensor {
    this.alive();
    const t = this.acts.get(name);
    if (!t) {
      const near = nearest(name, this.keys());
      throw new HeadlensError(
        `the cache holds no '${name}'`,
        this.size === 0 ? 'the cache is empty: pass the name in runWithCache(…, { names })' : `did you mean '${near}'? Or add it to runWithCache(…, { names })`,
      );
    }
    return t;
  }

  /** `actName`-style access: cache.act('pattern', 0). */
  act(name: ActShortName, layer?: number, sub?: 'ln1' | 'ln2' | 'ln_final'): tf.Tensor {
    return this.get(actName(name, layer, sub));
  }

  /** One activation of every layer stacked on a new first axis: [n_layers, …]. Caller owns the result. */
  stack(name: ActShortName, sub?: 'ln1' | 'ln2'): tf.Tensor {
    this.alive();
    const layers = Array.from({ length: this.cfg.n_layers }, (_, l) => this.get(actName(name, l, sub)));
    return tf.stack(layers);
  }

  /** One head's slice of a per-head activation, the head axis removed. Caller owns the result. */
  head(name: string, head: number): tf.Tensor {
    const t = this.get(name);
    const axis = headAxis(name);
    if (axis === undefined) throw new HeadlensError(`${name} has no head axis`, 'use attn.hook_q/k/v/z/result/pattern/attn_scores');
    if (!Number.isInteger(head) || head < 0 || head >= t.shape[axis]) {
      throw new HeadlensError(`head ${head} is out of range for ${name} (${t.shape[axis]} heads)`);
    }
    return tf.tidy(() => tf.gather(t, head, axis));
  }

  dispose(): void {
    if (this.disposed) return;
    for (const t of this.acts.values()) t.dispose();
    this.acts.clear();
    this.disposed = true;
  }

  private alive(): void {
    if (this.disposed) throw new HeadlensError('this ActivationCache was disposed', 'use it before calling dispose()');
  }
}
