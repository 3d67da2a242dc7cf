/**
 * Classical multidimensional scaling (Torgerson 1952; Gower 1966, "principal coordinates"): points in k
 * dimensions whose Euclidean distances approximate a given dissimilarity matrix D. Square the dissimilarities,
 * double-centre them, B = −½·J·D⁽²⁾·J with J = I − 11ᵀ/n, and take the top k eigenvectors of B scaled by the
 * square roots of their eigenvalues. When D holds the distances of points in k dimensions, the points come back
 * exactly, up to a rotation, a reflection and a translation (B is then their Gram matrix about the centroid).
 *
 * This is not what scikit-learn's `MDS` computes: that one (SMACOF, de Leeuw 1977) iteratively minimises the
 * stress Σ (d_ij − ‖x_i − x_j‖)² from random starts. Both give the same picture for distances that embed well;
 * classical MDS is deterministic and needs no iterations, which is why headlens uses it.
 *
 * B is symmetric; the eigenvectors come from `svd` (svd.ts) of B + c·I with c = ‖B‖_F ≥ the spectral radius, a
 * positive semi-definite matrix with the same eigenvectors, whose SVD is its eigendecomposition (U = V) with
 * eigenvalues λᵢ + c in the same order. So negative eigenvalues (dissimilarities that are not Euclidean, such as
 * Jensen–Shannon divergences) need no sign bookkeeping; they are reported, and never used as coordinates.
 */
import { HeadlensError } from '../errors.js';
import { mat } from './mat.js';
import { svd } from './svd.js';

export interface ClassicalMds {
  /** One row of `dims` coordinates per item, centred on the origin. */
  points: number[][];
  /** Every eigenvalue of B, descending (negative ones say how far D is from Euclidean). */
  eigenvalues: number[];
  /**
   * The share of B's positive eigenvalue mass the kept dimensions hold, in [0, 1] (1: D embeds exactly in
   * `dims` dimensions).
   */
  explained: number;
}

/**
 * Classical MDS of a symmetric dissimilarity matrix [n, n] (zero diagonal) into `dims` dimensions (default 2).
 * A dimension whose eigenvalue is not positive (beyond rounding) gets coordinate 0 (D has fewer positive directions than asked).
 */
export function classicalMds(dissimilarities: number[][], dims = 2): ClassicalMds {
  const n = dissimilarities.length;
  if (n === 0) throw new HeadlensError('classicalMds: the dissimilarity matrix is empty', 'pass an [n, n] matrix with n ≥ 1');
  if (!Number.isInteger(dims) || dims < 1) throw new HeadlensError(`classicalMds: dims ${dims} must be a positive integer`);
  dissimilarities.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== n) throw new HeadlensError(`classicalMds: row ${i} has ${Array.isArray(row) ? row.length : 'no'} entries, not ${n}`, 'pass a square matrix');
    row.forEach((d, j) => {
      if (!Number.isFinite(d)) throw new HeadlensError(`classicalMds: entry [${i}][${j}] is ${d}`, 'pass finite dissimilarities');
      if (Math.abs(d - dissimilarities[j][i]) > 1e-9 * Math.max(1, Math.abs(d))) throw new HeadlensError(`classicalMds: the matrix is not symmetric ([${i}][${j}] = ${d}, [${j}][${i}] = ${dissimilarities[j][i]})`, 'symmetrise it, e.g. (D + Dᵀ) / 2');
    });
  });
  // B = −½·J·D⁽²⁾·J: subtract row and column means of the squared dissimilarities, add back the grand mean
  const sq = dissimilarities.map((row) => row.map((d) => d * d));
  const rowMean = sq.map((row) => row.reduce((a, b) => a + b, 0) / n);
  const grand = rowMean.reduce((a, b) => a + b, 0) / n;
  const B = mat(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) B.data[i * n + j] = -0.5 * (sq[i][j] - rowMean[i] - rowMean[j] + grand);
  let c = 0;
  for (const x of B.data) c += x * x;
  c = Math.sqrt(c);
  for (let i = 0; i < n; i++) B.data[i * n + i] += c;
  const { U, S } = svd(B); // [n, n], S descending = λ + c
  const eigenvalues = Array.from(S, (s) => s - c);
  const positive = eigenvalues.reduce((a, l) => a + Math.max(0, l), 0);
  const kept = eigenvalues.slice(0, dims).reduce((a, l) => a + Math.max(0, l), 0);
  // eigenvalues within rounding of 0 (the shift costs ~ε·c of absolute accuracy) are 0: their square roots would
  // turn that noise into coordinates of size √(ε·c)
  const tol = 1e-12 * Math.max(c, Number.MIN_VALUE) * n;
  const points = Array.from({ length: n }, (_, i) =>
    Array.from({ length: dims }, (_, k) => (k < n && eigenvalues[k] > tol ? U.data[i * U.cols + k] * Math.sqrt(eigenvalues[k]) : 0)),
  );
  return { points, eigenvalues, explained: positive > 0 ? kept / positive : 0 };
}
