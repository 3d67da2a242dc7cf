/**
 * The float64 SVD and eigenvalue solver against numpy 2.4 (tests/fixtures/make_numpy_fixtures.py wrote
 * the matrices and numpy's answers into tests/fixtures/numpy/linalg.json).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import { eigenvalues, type Complex } from '../src/linalg/eig.js';
import { mat, matmul, randomNormal, scaleCols, transpose, type Mat } from '../src/linalg/mat.js';
import { singularValues, svd } from '../src/linalg/svd.js';

interface SvdCase { name: string; rows: number; cols: number; data: number[]; singular_values: number[] }
interface EigCase { name: string; n: number; data: number[]; re: number[]; im: number[] }
const LINALG = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'linalg.json'), 'utf8')) as {
  svd: SvdCase[];
  eig: EigCase[];
};

function maxAbs(a: Mat, b: Mat): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

/** Largest |QᵀQ − I|: how far Q's columns are from orthonormal. */
function orthoError(q: Mat): number {
  const g = matmul(transpose(q), q);
  let m = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) m = Math.max(m, Math.abs(g.data[i * g.cols + j] - (i === j ? 1 : 0)));
  return m;
}

/** Each expected eigenvalue matched to the nearest unused computed one; returns the worst distance / scale. */
function eigMismatch(got: Complex[], re: number[], im: number[]): number {
  expect(got).toHaveLength(re.length);
  const used = new Set<number>();
  const scale = Math.max(...re.map((r, i) => Math.hypot(r, im[i])), 1e-300);
  let worst = 0;
  re.forEach((r, i) => {
    let best = -1;
    let bestD = Infinity;
    got.forEach((g, j) => {
      const d = Math.hypot(g.re - r, g.im - im[i]);
      if (!used.has(j) && d < bestD) (best = j), (bestD = d);
    });
    used.add(best);
    worst = Math.max(worst, bestD / scale);
  });
  return worst;
}

describe('svd', () => {
  it.each(LINALG.svd.map((c) => [c.name, c] as const))('svd(%s) gives numpy’s singular values to 1e-6 relative', (_, c) => {
    const { S } = svd(mat(c.rows, c.cols, c.data));
    const want = c.singular_values;
    expect(S.length).toBe(want.length);
    const sMax = want[0];
    for (let i = 0; i < want.length; i++) {
      // relative to the value itself; values that are zero in exact arithmetic (rank-deficient) are
      // rounding noise in numpy too, so those are held to 1e-13 of the largest
      const tol = 1e-6 * want[i] + 1e-13 * sMax;
      expect(Math.abs(S[i] - want[i]), `${c.name} σ${i}: ${S[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
    }
  });

  it.each(LINALG.svd.map((c) => [c.name, c] as const))('singularValues(%s) (bidiagonal + bisection) gives numpy’s to 1e-6 relative', (_, c) => {
    const S = singularValues(mat(c.rows, c.cols, c.data));
    const want = c.singular_values;
    expect(S.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      const tol = 1e-6 * want[i] + 1e-13 * want[0];
      expect(Math.abs(S[i] - want[i]), `${c.name} σ${i}: ${S[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
    }
  });

  it.each(LINALG.svd.map((c) => [c.name, c] as const))('svd(%s) reconstructs A = U·diag(S)·Vᵀ with orthonormal U and V', (_, c) => {
    const A = mat(c.rows, c.cols, c.data);
    const { U, S, V } = svd(A);
    const k = Math.min(c.rows, c.cols);
    expect([U.rows, U.cols, V.rows, V.cols]).toEqual([c.rows, k, c.cols, k]);
    const back = matmul(scaleCols(U, S), transpose(V));
    expect(maxAbs(back, A)).toBeLessThan(1e-12 * Math.max(1, c.singular_values[0]));
    expect(orthoError(U)).toBeLessThan(1e-12);
    expect(orthoError(V)).toBeLessThan(1e-12);
    for (let i = 1; i < S.length; i++) expect(S[i]).toBeLessThanOrEqual(S[i - 1]);
  });

  it('svd(diagonal) returns the absolute diagonal, sorted (exact hand computation)', () => {
    const A = mat(3, 3, [2, 0, 0, 0, -7, 0, 0, 0, 0.5]);
    expect(Array.from(svd(A).S)).toEqual([7, 2, 0.5]);
  });

  it('svd(zero matrix) gives zeros and still orthonormal U, V', () => {
    const { U, S, V } = svd(mat(4, 3));
    expect(Array.from(S)).toEqual([0, 0, 0]);
    expect(Array.from(singularValues(mat(4, 3)))).toEqual([0, 0, 0]);
    expect(orthoError(U)).toBeLessThan(1e-15);
    expect(orthoError(V)).toBeLessThan(1e-15);
  });

  it('svd(tall matrix with a zero column) keeps U orthonormal through the QR path (10×3, rank 2)', () => {
    const A = randomNormal(10, 3, 5);
    for (let i = 0; i < 10; i++) A.data[i * 3 + 1] = 0;
    const { U, S, V } = svd(A);
    expect(S[2]).toBe(0);
    expect(orthoError(U)).toBeLessThan(1e-13);
    expect(maxAbs(matmul(scaleCols(U, S), transpose(V)), A)).toBeLessThan(1e-13);
    // the nonzero singular values are those of the two nonzero columns alone (wide path, via the transpose)
    const two = mat(2, 10, Array.from({ length: 20 }, (_, k) => A.data[(k % 10) * 3 + (k < 10 ? 0 : 2)]));
    const s2 = svd(two).S;
    expect(Math.abs(s2[0] - S[0])).toBeLessThan(1e-13 * S[0]);
    expect(Math.abs(s2[1] - S[1])).toBeLessThan(1e-13 * S[0]);
  });

  it('svd(matrix with NaN) is a HeadlensError', () => {
    expect(() => svd(mat(2, 2, [1, NaN, 0, 1]))).toThrow(HeadlensError);
  });
});

describe('eigenvalues', () => {
  it.each(LINALG.eig.map((c) => [c.name, c] as const))('eigenvalues(%s) match numpy’s eigvals to 1e-9 of the largest', (_, c) => {
    const got = eigenvalues(mat(c.n, c.n, c.data));
    expect(eigMismatch(got, c.re, c.im)).toBeLessThan(1e-9);
  });

  it('eigenvalues of a rotation by 90° are ±i (exact hand computation)', () => {
    const got = eigenvalues(mat(2, 2, [0, -1, 1, 0]));
    expect(got).toEqual([{ re: 0, im: 1 }, { re: 0, im: -1 }]);
  });

  it('eigenvalues of a 60×60 random matrix sum to its trace (imaginary parts cancel)', () => {
    const A = randomNormal(60, 60, 7);
    const ev = eigenvalues(A);
    let trace = 0;
    for (let i = 0; i < 60; i++) trace += A.data[i * 60 + i];
    expect(Math.abs(ev.reduce((s, e) => s + e.re, 0) - trace)).toBeLessThan(1e-9);
    expect(Math.abs(ev.reduce((s, e) => s + e.im, 0))).toBeLessThan(1e-9);
  });

  it('eigenvalues(non-square) is a HeadlensError', () => {
    expect(() => eigenvalues(mat(2, 3))).toThrow(/square/);
  });
});
