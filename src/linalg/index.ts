/** headlens/linalg: float64 linear algebra on the CPU (matrices, SVD, eigenvalues, classical MDS, FactoredMatrix). */
export { svd, singularValues, type SVD } from './svd.js';
export { eigenvalues, type Complex } from './eig.js';
export { mat, matmul, transpose, identity, randomNormal, type Mat } from './mat.js';
export { FactoredMatrix } from './factored_matrix.js';
export { classicalMds, type ClassicalMds } from './mds.js';
