/**
 * Float64 linear algebra on the CPU for weight-space analysis: dense matrices, the singular value
 * decomposition, and the eigenvalues of a small non-symmetric matrix.
 *
 * tfjs has no SVD (tensorflow/tfjs#110, open since 2018) and computes in float32, while the questions
 * asked of attention weights (how many directions does QK use? are OV's eigenvalues positive?) need
 * the small singular values and the signs right. So headlens carries its own, in plain TypeScript:
 *
 * - `svd(A)`: one-sided Jacobi (Hestenes 1958; analysed by Demmel & Veselić 1992, who show it computes
 *   even tiny singular values to high *relative* accuracy). Pairs of columns are rotated until all are
 *   orthogonal; the column norms are then the singular values. It is simple enough to be obviously right
 *   and accurate to a few ulps; its cost, O(sweeps · m · n²) with 6–10 sweeps, suits the shapes of
 *   per-head weights (d_model × d_head). Wide matrices are handled through their transpose.
 * - `eigenvalues(A)`: Householder reduction to Hessenberg form, then Francis' implicit double-shift QR
 *   (Francis 1961; Golub & Van Loan, Matrix Computations, Alg. 7.5.1–7.5.2), so a real matrix's complex
 *   eigenvalues come out as conjugate pairs {re, im} without complex arithmetic.
 *
 * Matrices are row-major `Float64Array`s with their shape (`Mat`). Checked against numpy 2.4 in
 * tests/svd.test.ts (tests/fixtures/make_numpy_fixtures.py).
 */
import { HeadlensError } from '../errors.js';
import { Random } from '../util/random.js';

/** A dense row-major float64 matrix: element (i, j) is data[i * cols + j]. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export interface SVD {
  /** Left singular vectors as columns [rows, k]. */
  U: Mat;
  /** Singular values, descending, k = min(rows, cols). */
  S: Float64Array;
  /** Right singular vectors as columns [cols, k]; A = U·diag(S)·Vᵀ. */
  V: Mat;
}

export interface Complex {
  re: number;
  im: number;
}

/** A matrix from row-major values (copied into a Float64Array). */
export function mat(rows: number, cols: number, data?: ArrayLike<number>): Mat {
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 0 && cols >= 0)) {
    throw new HeadlensError(`matrix shape [${rows}, ${cols}] is not a pair of non-negative integers`);
  }
  const out = new Float64Array(rows * cols);
  if (data) {
    if (data.length !== rows * cols) throw new HeadlensError(`matrix [${rows}, ${cols}] needs ${rows * cols} values, got ${data.length}`);
    out.set(data);
  }
  return { rows, cols, data: out };
}

export function identity(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose(a: Mat): Mat {
  const { rows, cols, data } = a;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return { rows: cols, cols: rows, data: out };
}

/** a·b. */
export function matmul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new HeadlensError(`cannot multiply [${a.rows}, ${a.cols}] by [${b.rows}, ${b.cols}]`, 'the inner dimensions must agree');
  const { rows: m, cols: k } = a;
  const n = b.cols;
  const out = new Float64Array(m * n);
  const A = a.data;
  const B = b.data;
  for (let i = 0; i < m; i++) {
    const oi = i * n;
    for (let p = 0; p < k; p++) {
      const aip = A[i * k + p];
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) out[oi + j] += aip * B[bp + j];
    }
  }
  return { rows: m, cols: n, data: out };
}

/** Columns [from, to) of a. */
export function columns(a: Mat, from: number, to: number): Mat {
  const out = mat(a.rows, to - from);
  for (let i = 0; i < a.rows; i++) for (let j = from; j < to; j++) out.data[i * (to - from) + j - from] = a.data[i * a.cols + j];
  return out;
}

/** diag(s)·a (scales row i by s[i]). */
export function scaleRows(s: ArrayLike<number>, a: Mat): Mat {
  const out = mat(a.rows, a.cols, a.data);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[i * a.cols + j] *= s[i];
  return out;
}

/** a·diag(s) (scales column j by s[j]). */
export function scaleCols(a: Mat, s: ArrayLike<number>): Mat {
  const out = mat(a.rows, a.cols, a.data);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[i * a.cols + j] *= s[j];
  return out;
}

export function frobeniusNorm(a: Mat): number {
  let s = 0;
  for (const x of a.data) s += x * x;
  return Math.sqrt(s);
}

/** A seeded standard-normal matrix (src/util/random.ts + Box–Muller), for baselines and tests. */
export function randomNormal(rows: number, cols: number, seed: number): Mat {
  const rng = new Random(seed);
  const rand = () => rng.next();
  const out = mat(rows, cols);
  for (let i = 0; i < out.data.length; i += 2) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out.data[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.data.length) out.data[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function checkFinite(a: Mat, what: string): void {
  for (const x of a.data) if (!Number.isFinite(x)) throw new HeadlensError(`${what}: the matrix holds ${x}`, 'remove NaN and infinite values first');
}

/**
 * The thin SVD A = U·diag(S)·Vᵀ of a [rows, cols] matrix, k = min(rows, cols). Singular values descend;
 * U and V have orthonormal columns (also for zero singular values, whose vectors complete the basis).
 */
export function svd(a: Mat): SVD {
  checkFinite(a, 'svd');
  if (a.rows < a.cols) {
    const t = jacobiTall(transpose(a));
    return { U: t.V, S: t.S, V: t.U };
  }
  return jacobiTall(a);
}

/**
 * Singular values only, descending, without the vectors: Householder bidiagonalization (≈ 4·m·n² flops)
 * and then bisection on the bidiagonal's Golub–Kahan form, the symmetric tridiagonal [[0, B], [Bᵀ, 0]]
 * with eigenvalues ±σ_i; bisection on it finds each σ_i to high relative accuracy (Demmel & Kahan 1990,
 * "Accurate singular values of bidiagonal matrices"). Several times cheaper than `svd` for large square
 * matrices (no Jacobi sweeps, no vectors).
 */
export function singularValues(a: Mat): Float64Array {
  checkFinite(a, 'singularValues');
  const t = a.rows < a.cols ? transpose(a) : a;
  if (t.cols === 0) return new Float64Array(0);
  const { d, e } = bidiagonalize(t);
  return bidiagonalSingularValues(d, e);
}

/** Upper bidiagonal form of a [m, n] matrix with m ≥ n (same singular values): diagonal d (n), superdiagonal e (n − 1). */
function bidiagonalize(a: Mat): { d: Float64Array; e: Float64Array } {
  const m = a.rows;
  const n = a.cols;
  const A = Float64Array.from(a.data); // row-major working copy
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  const w = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // left reflector: zero A[k+1.., k]
    let norm = 0;
    for (let i = k; i < m; i++) norm += A[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    if (norm > 0) {
      const alpha = A[k * n + k] >= 0 ? -norm : norm;
      const v = new Float64Array(m - k);
      v[0] = A[k * n + k] - alpha;
      for (let i = k + 1; i < m; i++) v[i - k] = A[i * n + k];
      const vv = v.reduce((s, x) => s + x * x, 0);
      // A[k.., k+1..] -= (2/vv)·v·(vᵀ·A[k.., k+1..]), row by row so memory is read in order
      w.fill(0);
      for (let i = k; i < m; i++) {
        const vi = v[i - k];
        if (vi === 0) continue;
        for (let j = k + 1; j < n; j++) w[j] += vi * A[i * n + j];
      }
      for (let i = k; i < m; i++) {
        const f = (2 / vv) * v[i - k];
        if (f === 0) continue;
        for (let j = k + 1; j < n; j++) A[i * n + j] -= f * w[j];
      }
      d[k] = alpha;
    } else {
      d[k] = 0;
    }
    if (k >= n - 1) continue;
    // right reflector: zero A[k, k+2..]
    norm = 0;
    for (let j = k + 1; j < n; j++) norm += A[k * n + j] ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) {
      e[k] = 0;
      continue;
    }
    const beta = A[k * n + k + 1] >= 0 ? -norm : norm;
    const u = new Float64Array(n - k - 1);
    u[0] = A[k * n + k + 1] - beta;
    for (let j = k + 2; j < n; j++) u[j - k - 1] = A[k * n + j];
    const uu = u.reduce((s, x) => s + x * x, 0);
    for (let i = k + 1; i < m; i++) {
      let dot = 0;
      for (let j = k + 1; j < n; j++) dot += A[i * n + j] * u[j - k - 1];
      if (dot === 0) continue;
      const f = (2 / uu) * dot;
      for (let j = k + 1; j < n; j++) A[i * n + j] -= f * u[j - k - 1];
    }
    e[k] = beta;
  }
  return { d, e };
}

/** Singular values of the upper bidiagonal (d, e), descending, by bisection on its Golub–Kahan tridiagonal. */
function bidiagonalSingularValues(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  // off-diagonal of the 2n × 2n zero-diagonal tridiagonal: d0, e0, d1, e1, …, d_{n-1}
  const b2 = new Float64Array(2 * n - 1);
  let bound = 0;
  for (let i = 0; i < 2 * n - 1; i++) {
    const x = i % 2 === 0 ? d[i / 2] : e[(i - 1) / 2];
    b2[i] = x * x;
    bound = Math.max(bound, Math.abs(x));
  }
  bound *= 2; // Gershgorin: every eigenvalue lies in [−2·max|b|, 2·max|b|]
  const tiny = Number.MIN_VALUE * 1e10;
  /** How many eigenvalues of the tridiagonal are below x (Sturm sequence of the LDLᵀ pivots). */
  const below = (x: number) => {
    let count = 0;
    let q = -x;
    if (q === 0) q = -tiny;
    if (q < 0) count++;
    for (let i = 1; i < 2 * n; i++) {
      q = -x - b2[i - 1] / q;
      if (q === 0) q = -tiny;
      if (q < 0) count++;
    }
    return count;
  };
  const out = new Float64Array(n);
  const eps = 2.220446049250313e-16;
  for (let k = 0; k < n; k++) {
    // σ_k (k-th largest) is the eigenvalue with exactly 2n − 1 − k eigenvalues below it
    let lo = 0;
    let hi = bound;
    // down to 1e-40 of the norm bound at most: far below the ~1e-16·‖A‖ rounding of the bidiagonalization
    // (values that are zero in exact arithmetic come out there), and at most ~135 halvings
    for (let it = 0; it < 200 && hi - lo > 2 * eps * hi && hi > bound * 1e-40; it++) {
      const mid = lo + (hi - lo) / 2;
      if (below(mid) > 2 * n - 1 - k) hi = mid;
      else lo = mid;
    }
    out[k] = (lo + hi) / 2;
  }
  return out;
}

/**
 * rows ≥ cols. A tall matrix is first reduced by a Householder QR (A = Q·R, 2·m·n² flops once), so that
 * the Jacobi sweeps work on the small R [cols, cols]: for a d_model × d_head weight that is ~10× faster.
 */
function jacobiTall(a: Mat): SVD {
  if (a.rows >= 2 * a.cols && a.cols > 1) {
    const { Q, R } = householderQR(a);
    const r = jacobi(R);
    return { U: matmul(Q, r.U), S: r.S, V: r.V };
  }
  return jacobi(a);
}

/** Thin Householder QR of a [m, n] matrix with m ≥ n: Q [m, n] with orthonormal columns, R [n, n] upper triangular. */
function householderQR(a: Mat): { Q: Mat; R: Mat } {
  const m = a.rows;
  const n = a.cols;
  const col: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const c = new Float64Array(m);
    for (let i = 0; i < m; i++) c[i] = a.data[i * n + j];
    col.push(c);
  }
  const vs: (Float64Array | null)[] = [];
  const R = mat(n, n);
  for (let k = 0; k < n; k++) {
    const x = col[k];
    let norm = 0;
    for (let i = k; i < m; i++) norm += x[i] * x[i];
    norm = Math.sqrt(norm);
    if (norm === 0) {
      vs.push(null);
      for (let j = k + 1; j < n; j++) R.data[k * n + j] = col[j][k];
      continue;
    }
    const alpha = x[k] >= 0 ? -norm : norm;
    // v = x − alpha·e_k on rows k.., scaled to unit length; H = I − 2vvᵀ maps x to alpha·e_k
    const v = new Float64Array(m - k);
    v[0] = x[k] - alpha;
    for (let i = k + 1; i < m; i++) v[i - k] = x[i];
    const vn = norm2(v);
    for (let i = 0; i < v.length; i++) v[i] /= vn;
    vs.push(v);
    R.data[k * n + k] = alpha;
    for (let j = k + 1; j < n; j++) {
      const c = col[j];
      let d = 0;
      for (let i = k; i < m; i++) d += v[i - k] * c[i];
      d *= 2;
      for (let i = k; i < m; i++) c[i] -= d * v[i - k];
      R.data[k * n + j] = c[k];
    }
  }
  // Q = H_0·H_1·…·H_{n-1} applied to the first n columns of the identity, last reflector first
  const qcol: Float64Array[] = Array.from({ length: n }, (_, j) => {
    const c = new Float64Array(m);
    c[j] = 1;
    return c;
  });
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    if (!v) continue;
    for (let j = 0; j < n; j++) {
      const c = qcol[j];
      let d = 0;
      for (let i = k; i < m; i++) d += v[i - k] * c[i];
      if (d === 0) continue;
      d *= 2;
      for (let i = k; i < m; i++) c[i] -= d * v[i - k];
    }
  }
  const Q = mat(m, n);
  for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) Q.data[i * n + j] = qcol[j][i];
  return { Q, R };
}

/** One-sided Jacobi on a matrix with rows ≥ cols. */
function jacobi(a: Mat): SVD {
  const m = a.rows;
  const n = a.cols;
  // columns stored contiguously: col[j] is column j of the working matrix (A·V as it converges)
  const col: Float64Array[] = [];
  const vcol: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const c = new Float64Array(m);
    for (let i = 0; i < m; i++) c[i] = a.data[i * n + j];
    col.push(c);
    const v = new Float64Array(n);
    v[j] = 1;
    vcol.push(v);
  }
  const eps = 2.220446049250313e-16;
  const tol = m * eps;
  const MAX_SWEEPS = 60;
  const sq = new Float64Array(n); // squared column norms, recomputed each sweep and updated by each rotation
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let j = 0; j < n; j++) sq[j] = norm2(col[j]) ** 2;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const cp = col[p];
        const cq = col[q];
        const alpha = sq[p];
        const beta = sq[q];
        let gamma = 0;
        for (let i = 0; i < m; i++) gamma += cp[i] * cq[i];
        // skip pairs already orthogonal to working precision (or zero columns)
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        // the rotation that zeroes the (p, q) entry of the 2×2 Gram matrix [[alpha, gamma], [gamma, beta]]
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = cp[i];
          const y = cq[i];
          cp[i] = c * x - s * y;
          cq[i] = s * x + c * y;
        }
        sq[p] = alpha - t * gamma;
        sq[q] = beta + t * gamma;
        const vp = vcol[p];
        const vq = vcol[q];
        for (let i = 0; i < n; i++) {
          const x = vp[i];
          const y = vq[i];
          vp[i] = c * x - s * y;
          vq[i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = col.map(norm2);
  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const S = new Float64Array(n);
  const U = mat(m, n);
  const V = mat(n, n);
  const sMax = norms[order[0]] ?? 0;
  const missing: number[] = [];
  order.forEach((j, k) => {
    S[k] = norms[j];
    for (let i = 0; i < n; i++) V.data[i * n + k] = vcol[j][i];
    // a column that is zero to working precision has no direction of its own: fill it in below
    if (norms[j] > 0 && norms[j] > sMax * eps * m) {
      for (let i = 0; i < m; i++) U.data[i * n + k] = col[j][i] / norms[j];
    } else {
      missing.push(k);
    }
  });
  completeBasis(U, missing);
  return { U, S, V };
}

function norm2(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/** Fills the given columns of `u` with unit vectors orthogonal to all its other columns (Gram–Schmidt on e_i). */
function completeBasis(u: Mat, missing: number[]): void {
  if (missing.length === 0) return;
  const { rows: m, cols: n } = u;
  const filled = new Set(Array.from({ length: n }, (_, k) => k).filter((k) => !missing.includes(k)));
  let candidate = 0;
  for (const k of missing) {
    for (; candidate < m; candidate++) {
      const v = new Float64Array(m);
      v[candidate] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const j of filled) {
          let d = 0;
          for (let i = 0; i < m; i++) d += u.data[i * n + j] * v[i];
          for (let i = 0; i < m; i++) v[i] -= d * u.data[i * n + j];
        }
      }
      const norm = norm2(v);
      if (norm > 0.5) {
        for (let i = 0; i < m; i++) u.data[i * n + k] = v[i] / norm;
        filled.add(k);
        candidate++;
        break;
      }
    }
  }
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
