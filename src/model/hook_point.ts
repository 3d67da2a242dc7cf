/**
 * The model's side of hooks. The forward pass calls `hp.point(name, act)` at every hook point; what
 * happens there (caching, patching, ablating) belongs to src/hooks, which hands the forward an
 * Interceptor. With no interceptor a hook point costs one branch.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

export interface Interceptor {
  /** Whether anything listens at `name`; optional activations (attn.hook_result) are computed only then. */
  wants(name: string): boolean;
  /** Sees the activation at `name`; returns the tensor the forward continues with (the same one, or a new one). */
  call(name: string, act: tf.Tensor): tf.Tensor;
  /**
   * True where the interceptor only reads the activation, returns it unchanged and keeps its own handle on
   * anything it needs later (a cache): the forward then frees the activation with its block, as if no one had
   * looked. A cache that keeps only some query rows of a pattern (runWithCache's patternRows) thereby never
   * holds the full [batch, head, query_pos, key_pos] of more than one layer at a time.
   */
  readOnly?(name: string): boolean;
  /**
   * For a read-only interceptor at a per-query hook point (hook_attn_scores, hook_pattern): the only query rows
   * it keeps (new-position indices, or 'last'). The forward may then compute just those rows and hand them to
   * `callRows` as [batch, head, rows, key_pos], never the full [batch, head, query_pos, key_pos] (long contexts).
   */
  queryRows?(name: string): number[] | 'last' | undefined;
  /** Sees the rows `queryRows` asked for, already cut: [batch, head, rows, key_pos]. */
  callRows?(name: string, rows: tf.Tensor): void;
}

/**
 * The forward frees each block's temporaries when the block ends (optimisations.blockScopes). A hook may
 * hold on to the activation it was given, or to what it returned, and read it at a later hook point of the
 * same run (path patching does): so every tensor made in this run that a hook saw or returned is kept
 * until the run ends (`release()`), as if the whole forward were one scope. Tensors a hook makes and keeps
 * elsewhere still need tf.keep.
 */
export class HookPoints {
  private readonly held = new Set<tf.Tensor>();
  /** Tensors with an id from here on were made during this run. */
  private readonly firstId: number;

  constructor(private readonly interceptor?: Interceptor) {
    if (!interceptor) {
      this.firstId = Infinity;
      return;
    }
    const probe = tf.scalar(0);
    this.firstId = probe.id;
    probe.dispose();
  }

  /** Frees what hooks saw or returned during the run. Called once the run's output exists. */
  release(): void {
    for (const t of this.held) t.dispose();
    this.held.clear();
  }

  private hold(t: tf.Tensor): void {
    if (t.id >= this.firstId && !t.kept && !t.isDisposed) {
      tf.keep(t);
      this.held.add(t);
    }
  }

  wants(name: string): boolean {
    return this.interceptor?.wants(name) ?? false;
  }

  /** Whether someone listens at `name` and only reads (Interceptor.readOnly): what it sees cannot change the run. */
  readsOnly(name: string): boolean {
    const i = this.interceptor;
    return !!i && i.wants(name) && !!i.readOnly?.(name);
  }

  /**
   * The query rows a read-only listener at `name` keeps, if that is all it needs (see Interceptor.queryRows);
   * undefined when nobody listens or someone needs the whole activation.
   */
  rowsOnly(name: string): number[] | 'last' | undefined {
    const i = this.interceptor;
    if (!i || !i.wants(name) || !i.readOnly?.(name) || !i.callRows) return undefined;
    return i.queryRows?.(name);
  }

  /** Hands the rows `rowsOnly(name)` named, as [batch, head, rows, key_pos], to the listener. */
  pointRows(name: string, rows: tf.Tensor): void {
    this.interceptor?.callRows?.(name, rows);
  }

  point<T extends tf.Tensor>(name: string, act: T): T {
    if (!this.interceptor || !this.interceptor.wants(name)) return act;
    if (this.interceptor.readOnly?.(name)) {
      this.interceptor.call(name, act);
      return act;
    }
    this.hold(act);
    const out = this.interceptor.call(name, act);
    if (out !== act) this.hold(out);
    if (out !== act && (out.shape.length !== act.shape.length || out.shape.some((n, i) => n !== act.shape[i]))) {
      throw new HeadlensError(
        `hook at ${name} returned shape [${out.shape}] but the activation is [${act.shape}]`,
        'a hook must return a tensor of the same shape (or nothing)',
      );
    }
    return out as T;
  }
}
