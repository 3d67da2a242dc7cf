/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"): Adam's moment estimates with
 * the weight decay applied to the weights directly rather than through the gradient. tfjs ships Adam but
 * not AdamW, hence this file. Decay applies to the variables `decays` picks (default: rank ≥ 2); the
 * trainer picks the weight matrices by name, since headlens' b_Q, b_K and b_V are [n_heads, d_head].
 * The moments are plain tensors the optimizer owns, so a checkpoint can store them and resume exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

export interface AdamWOptions {
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01
  /** Which variables get the weight decay (default: those of rank ≥ 2). */
  decays?: (name: string, shape: number[]) => boolean;
}

/** Where each variable sits in the optimizer's flat vectors. */
interface Layout {
  names: string[];
  shapes: number[][];
  sizes: number[];
  /** Per element: the weight decay (matrices) or 0 (biases, norm weights). */
  decay: tf.Tensor1D;
}

/**
 * The update runs on all parameters at once, as flat vectors (the gradients concatenated, one moment vector
 * each), not parameter by parameter: on toy-lm's 70 parameters, counted with tf.profile on wasm, an update is
 * 229 kernels (210 of them reshapes, which copy nothing) where it was 1,058 without the clipping, and on WebGPU
 * every kernel that computes is a dispatch. Each element's arithmetic is the same as a per-parameter update's.
 * (WebGPU binds a storage buffer per input and Dawn allows 8 per shader; tf.concat groups its 70 inputs within
 * that limit itself, where the 70-input AddN of the earlier per-parameter clipping was refused on an H200.)
 */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly decays: (name: string, shape: number[]) => boolean;
  /** Updates taken so far (for bias correction). */
  step = 0;
  private layout?: Layout;
  private m?: tf.Tensor1D;
  private v?: tf.Tensor1D;
  /** Moments set before the first update (a resumed run), by parameter name. */
  private pending?: { m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> };

  constructor(opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.decays = opts.decays ?? ((_, shape) => shape.length >= 2);
  }

  /**
   * One update of every variable, at learning rate `lr`. With `clipNorm` > 0 the gradients are first scaled
   * down together so that their global L2 norm is at most `clipNorm`. Every call must pass the same variables,
   * each with a gradient.
   */
  apply(vars: Map<string, tf.Variable>, grads: Record<string, tf.Tensor | undefined>, lr: number, clipNorm = 0): void {
    const layout = this.layoutFor(vars);
    for (const n of layout.names) {
      if (!grads[n]) throw new HeadlensError(`AdamW: no gradient for '${n}'`, 'pass only the variables the loss depends on, each with its gradient');
    }
    this.step++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - Math.pow(b1, this.step);
    const c2 = 1 - Math.pow(b2, this.step);
    const params = layout.names.map((n) => vars.get(n)!);
    const [m, v, next] = tf.tidy(() => {
      let g = tf.concat(layout.names.map((n) => grads[n]!.reshape([-1]))) as tf.Tensor1D;
      if (clipNorm > 0) g = g.mul(tf.minimum(1, tf.div(clipNorm, g.square().sum().sqrt().add(1e-6))));
      const p = tf.concat(params.map((x) => x.reshape([-1]))) as tf.Tensor1D;
      const m1 = this.m!.mul(b1).add(g.mul(1 - b1));
      const v1 = this.v!.mul(b2).add(g.square().mul(1 - b2));
      const update = m1.div(c1).div(v1.div(c2).sqrt().add(eps)).add(p.mul(layout.decay));
      const out = tf.split(p.sub(update.mul(lr)), layout.sizes).map((x, i) => x.reshape(layout.shapes[i]));
      return [m1, v1, out] as [tf.Tensor1D, tf.Tensor1D, tf.Tensor[]];
    });
    this.m!.dispose();
    this.v!.dispose();
    this.m = m;
    this.v = v;
    params.forEach((x, i) => {
      x.assign(next[i]);
      next[i].dispose();
    });
  }

  private layoutFor(vars: Map<string, tf.Variable>): Layout {
    const names = [...vars.keys()];
    if (this.layout) {
      if (names.length !== this.layout.names.length || names.some((n, i) => n !== this.layout!.names[i])) {
        throw new HeadlensError('AdamW: the variables differ from those of the first update', 'use one optimizer per set of variables');
      }
      return this.layout;
    }
    const shapes = names.map((n) => vars.get(n)!.shape);
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const decay = tf.tidy(() => tf.concat(shapes.map((s, i) => tf.fill([sizes[i]], this.decays(names[i], s) ? this.weightDecay : 0))) as tf.Tensor1D);
    this.layout = { names, shapes, sizes, decay };
    const flat = (which: 'm' | 'v') =>
      tf.tidy(() => tf.concat(names.map((n, i) => this.pending?.[which].get(n)?.reshape([-1]) ?? tf.zeros([sizes[i]]))) as tf.Tensor1D);
    this.m = flat('m');
    this.v = flat('v');
    if (this.pending) for (const t of [...this.pending.m.values(), ...this.pending.v.values()]) t.dispose();
    this.pending = undefined;
    return this.layout;
  }

  /** The moment estimates by parameter name (new tensors the caller owns; empty before the first update). */
  moments(): { m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> } {
    const out = { m: new Map<string, tf.Tensor>(), v: new Map<string, tf.Tensor>() };
    if (this.pending) {
      for (const k of ['m', 'v'] as const) for (const [n, t] of this.pending[k]) out[k].set(n, t.clone());
    } else if (this.layout) {
      const { names, shapes, sizes } = this.layout;
      for (const k of ['m', 'v'] as const) {
        const parts = tf.split(this[k]!, sizes);
        parts.forEach((x, i) => {
          out[k].set(names[i], x.reshape(shapes[i]));
          x.dispose();
        });
      }
    }
    return out;
  }

  /** Sets the moments (takes ownership), before the first update: how a resumed run continues. */
  setMoments(m: Map<string, tf.Tensor>, v: Map<string, tf.Tensor>): void {
    if (this.layout) throw new HeadlensError('AdamW: moments can only be set before the first update', 'set them on a new optimizer');
    this.pending = { m, v };
  }

  dispose(): void {
    for (const t of [this.m, this.v, this.layout?.decay]) t?.dispose();
    if (this.pending) for (const t of [...this.pending.m.values(), ...this.pending.v.values()]) t.dispose();
    this.m = this.v = this.pending = this.layout = undefined;
  }
}

/** Learning rate at `step`: linear warm-up to `lr`, then cosine decay to `lr · minRatio` at `total`. */
export function warmupCosine(step: number, total: number, lr: number, warmup: number, minRatio = 0.1): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
