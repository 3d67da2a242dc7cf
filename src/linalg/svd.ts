/**
 * The singular value decomposition in float64 on the CPU, for weight-space analysis.
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
 * (The eigenvalues of non-symmetric matrices are in eig.ts, the matrices themselves in mat.ts.)
 *
 * Matrices are row-major `Float64Array`s with their shape (`Mat`). Checked against numpy 2.4 in
 * tests/svd.test.ts (tests/fixtures/make_numpy_fixtures.py).
 */
import { checkFinite, mat, matmul, norm2, transpose, type Mat } from './mat.js';

export interface SVD {
  /** Left singular vectors as columns [rows, k]. */
  U: Mat;
  /** Singular values, descending, k = min(rows, cols). */
  S: Float64Array;
  /** Right singular vectors as columns [cols, k]; A = U·diag(S)·Vᵀ. */
  V: Mat;
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
