/**
 * Hand-made, seeded data for the picture tests (snapshots and the browser test). Nothing here comes from a
 * model unless it says so, so the snapshots change only when the drawing code does.
 */

/** A small LCG so the data is the same on every machine. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Causal softmax rows of random logits, plus planted heads: head 0 looks at the previous token. */
export function samplePatterns(nHeads: number, nPos: number, seed: number): number[][][] {
  const rand = lcg(seed);
  return Array.from({ length: nHeads }, (_, h) =>
    Array.from({ length: nPos }, (_, q) => {
      const logits = Array.from({ length: q + 1 }, (_, k) => (h === 0 ? (k === Math.max(0, q - 1) ? 4 : 0) : 3 * rand()));
      const m = Math.max(...logits);
      const e = logits.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      return Array.from({ length: nPos }, (_, k) => (k <= q ? e[k] / z : 0));
    }),
  );
}

export const TOKENS = ['When', ' Mary', ' and', ' John', ' went', ' to', ' the', ' store', ',', ' John', ' gave'];

/** [layer][head] scores with a known order: L1H2 0.93, L0H1 0.81, L1H0 0.64, the rest below 0.3. */
export const SCORES: number[][] = [
  [0.05, 0.81, 0.12, 0.27],
  [0.64, 0.1, 0.93, 0.02],
];

/** Signed [layer][pos] patching effects (a planted spike at the last position of layer 1). */
export const PATCH_POS: number[][] = [
  [0.02, -0.01, 0.0, 0.35, 0.03],
  [0.0, 0.0, -0.42, 0.05, 0.88],
  [0.01, 0.0, 0.0, -0.03, 0.97],
];

export const PATCH_HEAD: number[][] = [
  [0.0, 0.12, -0.05, 0.01],
  [-0.61, 0.02, 0.44, 0.0],
];

export const CIRCUIT = [
  { source: 'embed', target: 'L0H1', score: 0.4 },
  { source: 'embed', target: 'L1H2', score: 0.1 },
  { source: 'L0H1', target: 'L1H2', score: 0.9 },
  { source: 'L0H1', target: 'MLP0', score: -0.2 },
  { source: 'MLP0', target: 'L1H2', score: 0.3 },
  { source: 'L1H2', target: 'logits', score: 1.2 },
  { source: 'L1H0', target: 'logits', score: -0.5 },
  { source: 'embed', target: 'L1H0', score: 0.25 },
];

export const SPECTRA = [
  { label: 'L1H2 OV', values: [3.1, 1.2, 0.4, 0.1] },
  { label: 'L1H2 QK', values: [2.2, 2.0, 0.3, 0.05] },
];

export const TOP_TOKENS = [
  { label: 'L1H2 OV σ1', value: 3.1, top: [' John', ' Mary', ' store'], bottom: [' the', ','] },
  { label: 'L1H2 OV σ2', value: 1.2, top: [' gave', '<tag>'], bottom: [' When'] },
];

export const LOGIT_LENS = {
  tokens: [' When', ' Mary', ' and', ' John'],
  layers: ['embed', 'L0', 'L1'],
  top: [
    [' the', ' and', ' the', ','],
    [' I', ' Smith', ' John', ' went'],
    [' the', ' had', ' John', ' went'],
  ],
  prob: [
    [0.05, 0.11, 0.08, 0.2],
    [0.12, 0.33, 0.41, 0.52],
    [0.2, 0.29, 0.77, 0.91],
  ],
};
