/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"): Adam's moment estimates with
 * the weight decay applied to the weights directly rather than through the gradient. tfjs ships Adam but
 * not AdamW, hence this file. Decay applies to matrices only (rank ≥ 2), not to biases and norm weights.
 * The moments are plain tensors the optimizer owns, so a checkpoint can store them and resume exactly.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Updates taken so far (for bias correction). */
  step = 0;
  readonly m = new Map<string, tf.Tensor>();
  readonly v = new Map<string, tf.Tensor>();

  constructor(opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  /** One update of every variable that has a gradient, at learning rate `lr`. */
  apply(vars: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    this.step++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - Math.pow(b1, this.step);
    const c2 = 1 - Math.pow(b2, this.step);
    for (const [name, p] of vars) {
      const g = grads[name];
      if (!g) continue;
      const [m, v, next] = tf.tidy(() => {
        const m0 = this.m.get(name) ?? tf.zerosLike(p);
        const v0 = this.v.get(name) ?? tf.zerosLike(p);
        const m1 = m0.mul(b1).add(g.mul(1 - b1));
        const v1 = v0.mul(b2).add(g.square().mul(1 - b2));
        let update = m1.div(c1).div(v1.div(c2).sqrt().add(eps));
        if (p.rank >= 2 && this.weightDecay > 0) update = update.add(p.mul(this.weightDecay));
        return [m1, v1, p.sub(update.mul(lr))];
      });
      this.m.get(name)?.dispose();
      this.v.get(name)?.dispose();
      this.m.set(name, m);
      this.v.set(name, v);
      p.assign(next);
      next.dispose();
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Learning rate at `step`: linear warm-up to `lr`, then cosine decay to `lr · minRatio` at `total`. */
export function warmupCosine(step: number, total: number, lr: number, warmup: number, minRatio = 0.1): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
