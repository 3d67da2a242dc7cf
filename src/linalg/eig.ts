/**
 * The eigenvalues of a small non-symmetric real matrix (a full OV circuit's [d_head, d_head] core, say):
 * Householder reduction to Hessenberg form, then Francis' implicit double-shift QR (Francis 1961; Golub & Van
 * Loan, Matrix Computations, Alg. 7.5.1–7.5.2), so complex eigenvalues come out as conjugate pairs {re, im}
 * without complex arithmetic. Checked against numpy in tests/svd.test.ts.
 */
import { HeadlensError } from '../errors.js';
import { checkFinite, norm2, type Mat } from './mat.js';

export interface Complex {
  re: number;
  im: number;
}

/**
 * The eigenvalues of a square real matrix, as {re, im}; complex ones come in conjugate pairs.
 * Ordered by descending real part, then descending imaginary part.
 */
export function eigenvalues(a: Mat): Complex[] {
  if (a.rows !== a.cols) throw new HeadlensError(`eigenvalues need a square matrix, got [${a.rows}, ${a.cols}]`);
  checkFinite(a, 'eigenvalues');
  const n = a.rows;
  const H = hessenberg(a);
  const out = francisQR(H, n);
  return out.sort((x, y) => y.re - x.re || y.im - x.im);
}

/** Householder reduction to upper Hessenberg form (same eigenvalues). Returns rows as arrays. */
function hessenberg(a: Mat): Float64Array[] {
  const n = a.rows;
  const H = Array.from({ length: n }, (_, i) => Float64Array.from(a.data.subarray(i * n, (i + 1) * n)));
  for (let k = 0; k < n - 2; k++) {
    // reflector that zeroes H[k+2.., k]
    const len = n - k - 1;
    const v = new Float64Array(len);
    for (let i = 0; i < len; i++) v[i] = H[k + 1 + i][k];
    const alpha = norm2(v);
    if (alpha === 0) continue;
    const sign = v[0] >= 0 ? 1 : -1;
    v[0] += sign * alpha;
    const vnorm2 = v.reduce((s, x) => s + x * x, 0);
    if (vnorm2 === 0) continue;
    // H ← P·H·P with P = I − 2vvᵀ/(vᵀv) acting on rows/cols k+1..n-1
    for (let j = 0; j < n; j++) {
      let d = 0;
      for (let i = 0; i < len; i++) d += v[i] * H[k + 1 + i][j];
      d = (2 * d) / vnorm2;
      for (let i = 0; i < len; i++) H[k + 1 + i][j] -= d * v[i];
    }
    for (let i = 0; i < n; i++) {
      const row = H[i];
      let d = 0;
      for (let j = 0; j < len; j++) d += row[k + 1 + j] * v[j];
      d = (2 * d) / vnorm2;
      for (let j = 0; j < len; j++) row[k + 1 + j] -= d * v[j];
    }
    for (let i = k + 2; i < n; i++) H[i][k] = 0;
  }
  return H;
}

/** Eigenvalues of the 2×2 [[a, b], [c, d]]. */
function eig2(a: number, b: number, c: number, d: number): [Complex, Complex] {
  const mean = (a + d) / 2;
  const half = (a - d) / 2;
  const disc = half * half + b * c;
  if (disc >= 0) {
    const r = Math.sqrt(disc);
    // the larger-magnitude root directly, the other from the determinant, to avoid cancellation
    const big = mean + (mean >= 0 ? r : -r);
    const det = a * d - b * c;
    const small = big !== 0 ? det / big : mean - (mean >= 0 ? r : -r);
    return [{ re: big, im: 0 }, { re: small, im: 0 }];
  }
  const r = Math.sqrt(-disc);
  return [{ re: mean, im: r }, { re: mean, im: -r }];
}

/** Francis implicit double-shift QR on an upper Hessenberg matrix (modified in place); all eigenvalues. */
function francisQR(H: Float64Array[], n: number): Complex[] {
  const eps = 2.220446049250313e-16;
  const out: Complex[] = [];
  let hi = n - 1;
  let iter = 0;
  let total = 0;
  while (hi >= 0) {
    // deflate: find lo, the start of the unreduced block that ends at hi
    let lo = hi;
    while (lo > 0) {
      const s = Math.abs(H[lo - 1][lo - 1]) + Math.abs(H[lo][lo]);
      if (Math.abs(H[lo][lo - 1]) <= eps * (s === 0 ? 1 : s)) {
        H[lo][lo - 1] = 0;
        break;
      }
      lo--;
    }
    if (lo === hi) {
      out.push({ re: H[hi][hi], im: 0 });
      hi--;
      iter = 0;
      continue;
    }
    if (lo === hi - 1) {
      out.push(...eig2(H[hi - 1][hi - 1], H[hi - 1][hi], H[hi][hi - 1], H[hi][hi]));
      hi -= 2;
      iter = 0;
      continue;
    }
    iter++;
    total++;
    if (total > 100 * n) throw new HeadlensError(`eigenvalues did not converge for a ${n}×${n} matrix`, 'check the matrix for extreme values');
    // shifts: the eigenvalues of the trailing 2×2 (as their sum s and product t), or exceptional ones
    let s: number;
    let t: number;
    if (iter % 11 === 10) {
      const w = Math.abs(H[hi][hi - 1]) + Math.abs(H[hi - 1][hi - 2]);
      const h = H[hi][hi];
      // shifts h + 0.75w ± i·0.66w: away from anything the ordinary shift could cycle on
      s = 1.5 * w + 2 * h;
      t = w * w + 1.5 * w * h + h * h;
    } else {
      const a = H[hi - 1][hi - 1];
      const b = H[hi - 1][hi];
      const c = H[hi][hi - 1];
      const d = H[hi][hi];
      s = a + d;
      t = a * d - b * c;
    }
    // first column of (H − σ1)(H − σ2) restricted to the block
    let x = H[lo][lo] * H[lo][lo] + H[lo][lo + 1] * H[lo + 1][lo] - s * H[lo][lo] + t;
    let y = H[lo + 1][lo] * (H[lo][lo] + H[lo + 1][lo + 1] - s);
    let z = H[lo + 1][lo] * H[lo + 2][lo + 1];
    for (let k = lo; k <= hi - 2; k++) {
      reflect3(H, k, x, y, z, lo, hi);
      x = H[k + 1][k];
      y = H[k + 2][k];
      if (k < hi - 2) z = H[k + 3][k];
    }
    reflect2(H, hi - 1, x, y, lo, hi);
  }
  return out;
}

/** Applies the Householder reflector mapping (x, y, z) to a multiple of e1 on rows/cols k..k+2 of the block [lo, hi]. */
function reflect3(H: Float64Array[], k: number, x: number, y: number, z: number, lo: number, hi: number): void {
  const alpha = Math.hypot(x, y, z);
  if (alpha === 0) return;
  const v0 = x + (x >= 0 ? alpha : -alpha);
  const v1 = y;
  const v2 = z;
  const beta = 2 / (v0 * v0 + v1 * v1 + v2 * v2);
  const c0 = Math.max(lo, k - 1);
  for (let j = c0; j <= hi; j++) {
    const d = beta * (v0 * H[k][j] + v1 * H[k + 1][j] + v2 * H[k + 2][j]);
    H[k][j] -= d * v0;
    H[k + 1][j] -= d * v1;
    H[k + 2][j] -= d * v2;
  }
  const r1 = Math.min(k + 3, hi);
  for (let i = lo; i <= r1; i++) {
    const row = H[i];
    const d = beta * (row[k] * v0 + row[k + 1] * v1 + row[k + 2] * v2);
    row[k] -= d * v0;
    row[k + 1] -= d * v1;
    row[k + 2] -= d * v2;
  }
  if (k > lo) {
    H[k + 1][k - 1] = 0;
    H[k + 2][k - 1] = 0;
  }
}

function reflect2(H: Float64Array[], k: number, x: number, y: number, lo: number, hi: number): void {
  const alpha = Math.hypot(x, y);
  if (alpha === 0) return;
  const v0 = x + (x >= 0 ? alpha : -alpha);
  const v1 = y;
  const beta = 2 / (v0 * v0 + v1 * v1);
  const c0 = Math.max(lo, k - 1);
  for (let j = c0; j <= hi; j++) {
    const d = beta * (v0 * H[k][j] + v1 * H[k + 1][j]);
    H[k][j] -= d * v0;
    H[k + 1][j] -= d * v1;
  }
  for (let i = lo; i <= hi; i++) {
    const row = H[i];
    const d = beta * (row[k] * v0 + row[k + 1] * v1);
    row[k] -= d * v0;
    row[k + 1] -= d * v1;
  }
  if (k > lo) H[k + 1][k - 1] = 0;
}
