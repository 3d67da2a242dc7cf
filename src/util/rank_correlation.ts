/**
 * Spearman's rank correlation: the Pearson correlation of the ranks, ties given the mean of the ranks they
 * span (as scipy.stats.spearmanr). Abnar & Zuidema (2020) score attention-based token importance by its
 * Spearman correlation with gradient- and ablation-based importance; their script ranks with pandas'
 * 'dense' method and uses 1 − 6Σd²/(n(n²−1)), which is the same number when there are no ties and not
 * quite Spearman's when there are. A leaf module.
 */
import { HeadlensError } from '../errors.js';

/** Ranks 1..n, ties sharing the mean of the ranks they span. */
export function averageRanks(x: ArrayLike<number>): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Pearson's correlation; NaN when either side is constant (no correlation is defined). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) (mx += x[i] / n), (my += y[i] / n);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const [a, b] = [x[i] - mx, y[i] - my];
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** Spearman's ρ of two equally long lists (at least 2 values); NaN when either is constant. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new HeadlensError(`spearman: lists of ${x.length} and ${y.length} values`, 'pass two lists of the same length');
  if (x.length < 2) throw new HeadlensError(`spearman: ${x.length} value(s)`, 'a rank correlation needs at least 2 values');
  for (const v of [...Array.from(x), ...Array.from(y)]) if (!Number.isFinite(v)) throw new HeadlensError(`spearman: value ${v} is not finite`);
  return pearson(averageRanks(x), averageRanks(y));
}
