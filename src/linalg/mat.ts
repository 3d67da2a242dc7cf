/**
 * Dense float64 matrices on the CPU (row-major `Float64Array`s with their shape) and the few products the
 * weight-space analyses need. tfjs computes in float32 and has no SVD; the decompositions in svd.ts and eig.ts
 * work on these.
 */
import { HeadlensError } from '../errors.js';
import { Random } from '../util/random.js';

/** A dense row-major float64 matrix: element (i, j) is data[i * cols + j]. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
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

/** Throws unless every entry is finite (the decompositions below would loop or return NaN). */
export function checkFinite(a: Mat, what: string): void {
  for (const x of a.data) if (!Number.isFinite(x)) throw new HeadlensError(`${what}: the matrix holds ${x}`, 'remove NaN and infinite values first');
}

/** The Euclidean norm of a vector. */
export function norm2(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}
