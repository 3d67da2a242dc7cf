/**
 * Labelled: a small array of results with named, labelled axes, e.g. a patching sweep
 * [layer, head] with labels ['0', '1'] × ['H0', …]. It holds plain numbers (no tensor to dispose),
 * serialises to JSON for the CLI and for the circuit-graph view, and gives a tensor on request.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

export interface Axis {
  name: string;
  labels: string[];
}

export interface LabelledJSON {
  axes: Axis[];
  shape: number[];
  /** Row-major values. */
  values: number[];
  meta?: Record<string, unknown>;
}

export class Labelled {
  readonly shape: number[];

  constructor(
    readonly axes: Axis[],
    readonly values: Float64Array,
    readonly meta: Record<string, unknown> = {},
  ) {
    this.shape = axes.map((a) => a.labels.length);
    const n = this.shape.reduce((a, b) => a * b, 1);
    if (n !== values.length) throw new HeadlensError(`Labelled: axes [${this.shape}] hold ${n} values, got ${values.length}`);
  }

  static fromJSON(j: LabelledJSON): Labelled {
    return new Labelled(j.axes, Float64Array.from(j.values), j.meta ?? {});
  }

  /** The value at one index per axis. */
  get(...idx: number[]): number {
    return this.values[this.offset(idx)];
  }

  /** The value at one label per axis, e.g. at('1', 'H3'). */
  at(...labels: string[]): number {
    return this.get(...labels.map((l, i) => {
      const k = this.axes[i]?.labels.indexOf(l) ?? -1;
      if (k < 0) throw new HeadlensError(`no label '${l}' on axis ${this.axes[i]?.name ?? i}`, `labels: ${this.axes[i]?.labels.slice(0, 8).join(', ')}`);
      return k;
    }));
  }

  /** Nested arrays in axis order. */
  toArray(): unknown {
    const rec = (axis: number, off: number): unknown => {
      if (axis === this.shape.length) return this.values[off];
      const stride = this.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[axis] }, (_, i) => rec(axis + 1, off + i * stride));
    };
    return rec(0, 0);
  }

  /** A new float32 tensor of this shape (caller owns). */
  toTensor(): tf.Tensor {
    return tf.tensor(Float32Array.from(this.values), this.shape, 'float32');
  }

  /** The k largest entries by absolute value, with their labels. */
  top(k: number): { labels: string[]; value: number }[] {
    const order = Array.from(this.values.keys()).sort((a, b) => Math.abs(this.values[b]) - Math.abs(this.values[a]));
    return order.slice(0, k).map((o) => ({ labels: this.labelsOf(o), value: this.values[o] }));
  }

  toJSON(): LabelledJSON {
    return { axes: this.axes, shape: this.shape, values: Array.from(this.values), meta: this.meta };
  }

  private labelsOf(off: number): string[] {
    const out: string[] = [];
    for (let a = this.shape.length - 1; a >= 0; a--) {
      out.unshift(this.axes[a].labels[off % this.shape[a]]);
      off = Math.floor(off / this.shape[a]);
    }
    return out;
  }

  private offset(idx: number[]): number {
    if (idx.length !== this.shape.length) throw new HeadlensError(`Labelled.get needs ${this.shape.length} indices, got ${idx.length}`);
    let off = 0;
    idx.forEach((i, a) => {
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[a]) throw new HeadlensError(`index ${i} is out of range for axis ${this.axes[a].name} (${this.shape[a]})`);
      off = off * this.shape[a] + i;
    });
    return off;
  }
}

/** Axis labels: layers '0'…, heads 'H0'…, positions from token labels or 'p0'…. */
export const layerAxis = (n: number): Axis => ({ name: 'layer', labels: Array.from({ length: n }, (_, i) => String(i)) });
export const headAxisLabels = (n: number, name = 'head'): Axis => ({ name, labels: Array.from({ length: n }, (_, i) => `H${i}`) });
export const posAxis = (n: number, labels?: string[]): Axis => ({ name: 'pos', labels: labels ?? Array.from({ length: n }, (_, i) => `p${i}`) });
