/**
 * FactoredMatrix against numpy (the dense 30×30 product's singular values, eigenvalues and norm, from
 * tests/fixtures/make_numpy_fixtures.py) and against its own dense product for the algebra.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import { FactoredMatrix } from '../src/linalg/factored_matrix.js';
import { mat, matmul, randomNormal, scaleCols, transpose, type Mat } from '../src/linalg/mat.js';

interface Raw { rows: number; cols: number; data: number[] }
const F = (JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'linalg.json'), 'utf8')) as {
  factored: { A: Raw; B: Raw; eig_re: number[]; eig_im: number[]; singular_values: number[]; frobenius: number };
}).factored;

const toMat = (r: Raw) => mat(r.rows, r.cols, r.data);

function maxAbs(a: Mat, b: Mat): number {
  expect([a.rows, a.cols]).toEqual([b.rows, b.cols]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe('FactoredMatrix', () => {
  const fm = new FactoredMatrix(toMat(F.A), toMat(F.B)); // [30, 4]·[4, 30]

  it('svd() via the middle matrix gives numpy’s singular values of the dense product to 1e-10 relative', () => {
    const S = fm.singularValues();
    expect(S.length).toBe(4);
    F.singular_values.forEach((s, i) => expect(Math.abs(S[i] - s) / s).toBeLessThan(1e-10));
  });

  it('svd() gives U, V with orthonormal columns and U·diag(S)·Vᵀ = A·B', () => {
    const { U, S, V } = fm.svd();
    expect([U.rows, U.cols, V.rows, V.cols]).toEqual([30, 4, 30, 4]);
    expect(maxAbs(matmul(scaleCols(U, S), transpose(V)), fm.dense())).toBeLessThan(1e-12);
    expect(maxAbs(matmul(transpose(U), U), mat(4, 4, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))).toBeLessThan(1e-13);
    expect(maxAbs(matmul(transpose(V), V), mat(4, 4, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))).toBeLessThan(1e-13);
  });

  it('frobeniusNorm() equals numpy’s norm of the dense product', () => {
    expect(Math.abs(fm.frobeniusNorm() - F.frobenius) / F.frobenius).toBeLessThan(1e-12);
  });

  it('eigenvalues() from B·A equal numpy’s nonzero eigenvalues of the dense 30×30 A·B', () => {
    const ev = fm.eigenvalues();
    expect(ev).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      const d = Math.min(...ev.map((e) => Math.hypot(e.re - F.eig_re[i], e.im - F.eig_im[i])));
      expect(d).toBeLessThan(1e-10 * Math.hypot(F.eig_re[0], F.eig_im[0]));
    }
  });

  it('transpose() is (A·B)ᵀ, still factored', () => {
    const t = fm.transpose();
    expect(t.inner).toBe(4);
    expect(maxAbs(t.dense(), transpose(fm.dense()))).toBe(0);
  });

  it('matmul(dense) and leftMatmul(dense) stay factored and equal the dense products', () => {
    const M = randomNormal(30, 7, 1);
    const L = randomNormal(5, 30, 2);
    const right = fm.matmul(M);
    const left = fm.leftMatmul(L);
    expect([right.inner, left.inner]).toEqual([4, 4]);
    expect(maxAbs(right.dense(), matmul(fm.dense(), M))).toBeLessThan(1e-11);
    expect(maxAbs(left.dense(), matmul(L, fm.dense()))).toBeLessThan(1e-11);
  });

  it('matmul(FactoredMatrix) keeps the smaller inner dimension and equals the dense product', () => {
    const other = new FactoredMatrix(randomNormal(30, 6, 3), randomNormal(6, 9, 4));
    const p = fm.matmul(other);
    expect(p.inner).toBe(4);
    expect(maxAbs(p.dense(), matmul(fm.dense(), other.dense()))).toBeLessThan(1e-10);
    const q = new FactoredMatrix(randomNormal(8, 6, 5), randomNormal(6, 30, 6)).matmul(fm);
    expect(q.inner).toBe(4);
  });

  it('row(i) is row i of the dense product', () => {
    const d = fm.dense();
    expect(Array.from(fm.row(3))).toEqual(Array.from(d.data.subarray(90, 120)));
  });

  it('new FactoredMatrix with mismatched factors is a HeadlensError', () => {
    expect(() => new FactoredMatrix(mat(3, 2), mat(3, 3))).toThrow(HeadlensError);
    expect(() => fm.matmul(mat(4, 4))).toThrow(/inner dimensions must agree/);
    expect(() => new FactoredMatrix(mat(3, 2), mat(2, 4)).eigenvalues()).toThrow(/square/);
  });
});
