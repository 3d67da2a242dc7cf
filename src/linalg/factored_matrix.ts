/**
 * FactoredMatrix: a product A·B kept as its two factors.
 *
 * A head's QK circuit W_Q·W_Kᵀ and OV circuit W_V·W_O are d_model × d_model but have rank at most d_head
 * (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", who also introduced the
 * full circuits E·QK·Eᵀ and E·OV·W_U, vocab × vocab: 50257² entries for GPT-2, 10 GB in float32).
 * Kept factored, everything these analyses need costs O(d · d_head²):
 *
 * - the SVD through the small middle matrix: A = Ua·Sa·Vaᵀ and B = Ub·Sb·Vbᵀ, then the SVD of
 *   M = diag(Sa)·Vaᵀ·Ub·diag(Sb) = Um·S·Vmᵀ gives A·B = (Ua·Um)·S·(Vb·Vm)ᵀ;
 * - the Frobenius norm from the two Gram matrices: ‖A·B‖²_F = Σ (AᵀA) ∘ (B·Bᵀ);
 * - the eigenvalues of a square A·B from the smaller B·A (the same nonzero eigenvalues; A·B has
 *   rows − inner more, all zero, which are not listed);
 * - products with dense matrices and with other FactoredMatrices, which stay factored, with the
 *   smaller inner dimension kept.
 *
 * TransformerLens has a FactoredMatrix class with the same ideas; this one is float64 on the CPU
 * (src/linalg/svd.ts), and `dense()` is only ever computed when asked for.
 */
import { HeadlensError } from '../errors.js';
import { eigenvalues, type Complex } from './eig.js';
import { matmul, scaleCols, scaleRows, transpose, type Mat } from './mat.js';
import { svd, type SVD } from './svd.js';

export class FactoredMatrix {
  /** A [rows, inner] and B [inner, cols]; the matrix is A·B. */
  constructor(
    readonly A: Mat,
    readonly B: Mat,
  ) {
    if (A.cols !== B.rows) {
      throw new HeadlensError(`FactoredMatrix: A is [${A.rows}, ${A.cols}] and B is [${B.rows}, ${B.cols}]`, 'A’s columns must equal B’s rows');
    }
  }

  private cachedSvd?: SVD;

  get rows(): number {
    return this.A.rows;
  }

  get cols(): number {
    return this.B.cols;
  }

  /** The inner dimension (d_head for a head's circuits): an upper bound on the rank. */
  get inner(): number {
    return this.A.cols;
  }

  get shape(): [number, number] {
    return [this.rows, this.cols];
  }

  /** The dense product [rows, cols]; only call this when it fits in memory. */
  dense(): Mat {
    return matmul(this.A, this.B);
  }

  /** (A·B)ᵀ = Bᵀ·Aᵀ, still factored. */
  transpose(): FactoredMatrix {
    return new FactoredMatrix(transpose(this.B), transpose(this.A));
  }

  /**
   * The thin SVD of A·B: U [rows, k], S (k, descending), V [cols, k] with k = min(rank bounds of A, B)
   * (= inner for the usual shapes). A·B = U·diag(S)·Vᵀ.
   */
  svd(): SVD {
    if (!this.cachedSvd) {
      const a = svd(this.A);
      const b = svd(this.B);
      // M = diag(Sa)·Vaᵀ·Ub·diag(Sb), [ka, kb]
      const middle = scaleCols(scaleRows(a.S, matmul(transpose(a.V), b.U)), b.S);
      const m = svd(middle);
      this.cachedSvd = { U: matmul(a.U, m.U), S: m.S, V: matmul(b.V, m.V) };
    }
    return this.cachedSvd;
  }

  singularValues(): Float64Array {
    return this.svd().S;
  }

  get U(): Mat {
    return this.svd().U;
  }

  get S(): Float64Array {
    return this.svd().S;
  }

  get V(): Mat {
    return this.svd().V;
  }

  /** ‖A·B‖_F, from the Gram matrices AᵀA and B·Bᵀ ([inner, inner] each). */
  frobeniusNorm(): number {
    const ga = matmul(transpose(this.A), this.A);
    const gb = matmul(this.B, transpose(this.B));
    let s = 0;
    for (let i = 0; i < ga.data.length; i++) s += ga.data[i] * gb.data[i];
    return Math.sqrt(Math.max(0, s));
  }

  /**
   * The eigenvalues of the square A·B that can be nonzero: those of B·A [inner, inner] (when inner <
   * rows; the other rows − inner eigenvalues of A·B are 0). Ordered by descending real part.
   */
  eigenvalues(): Complex[] {
    if (this.rows !== this.cols) throw new HeadlensError(`eigenvalues need a square matrix, this one is [${this.rows}, ${this.cols}]`);
    if (this.inner >= this.rows) return eigenvalues(this.dense());
    return eigenvalues(matmul(this.B, this.A));
  }

  /** (A·B)·other, factored: keeps the smaller inner dimension. */
  matmul(other: Mat | FactoredMatrix): FactoredMatrix {
    if (other.rows !== this.cols) {
      throw new HeadlensError(`cannot multiply [${this.rows}, ${this.cols}] by [${other.rows}, ${other.cols}]`, 'the inner dimensions must agree');
    }
    if (other instanceof FactoredMatrix) {
      // A1·B1·A2·B2 = A1·(B1·A2·B2) or (A1·B1·A2)·B2, whichever keeps the inner dimension small
      if (this.inner <= other.inner) return new FactoredMatrix(this.A, matmul(matmul(this.B, other.A), other.B));
      return new FactoredMatrix(matmul(this.A, matmul(this.B, other.A)), other.B);
    }
    return new FactoredMatrix(this.A, matmul(this.B, other));
  }

  /** other·(A·B), factored. */
  leftMatmul(other: Mat): FactoredMatrix {
    if (other.cols !== this.rows) {
      throw new HeadlensError(`cannot multiply [${other.rows}, ${other.cols}] by [${this.rows}, ${this.cols}]`, 'the inner dimensions must agree');
    }
    return new FactoredMatrix(matmul(other, this.A), this.B);
  }

  /** Row i of A·B (length cols), without forming the matrix. */
  row(i: number): Float64Array {
    const { A, B } = this;
    const out = new Float64Array(B.cols);
    for (let p = 0; p < A.cols; p++) {
      const a = A.data[i * A.cols + p];
      if (a === 0) continue;
      for (let j = 0; j < B.cols; j++) out[j] += a * B.data[p * B.cols + j];
    }
    return out;
  }
}
