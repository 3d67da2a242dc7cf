/**
 * SVD spectrum of a head's QK or OV circuit: the singular values of W_Q·W_Kᵀ or W_V·W_O (rank at most
 * d_head) in decreasing order, one line per head. A spectrum that drops after a few values says the head
 * reads or writes a low-dimensional subspace (Millidge & Black 2022, "The Singular Value Decompositions of
 * Transformer Weight Matrices are Highly Interpretable"); compare heads or QK against OV side by side.
 */
import * as Plot from '@observablehq/plot';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { makeView, type View } from './view.js';

export interface Spectrum {
  /** e.g. 'L1H3 OV'. */
  label: string;
  /** Singular values (any order; drawn sorted, largest first). */
  values: number[];
}

export interface SvdSpectrumOptions {
  /** Title (aria-label, page title). Default: 'singular values'. */
  title?: string;
  /** Divide each spectrum by its largest value. Default: false. */
  normalise?: boolean;
  /** Logarithmic y axis (zeros are dropped). Default: false. */
  log?: boolean;
  /** Width in pixels. Default: 480. */
  width?: number;
  /** Height in pixels. Default: 260. */
  height?: number;
}

export function svdSpectrum(spectra: Spectrum[], opts: SvdSpectrumOptions = {}): View {
  const title = opts.title ?? 'singular values';
  const data = spectra.flatMap((s) => {
    const sorted = [...s.values].sort((a, b) => b - a);
    const top = sorted[0] || 1;
    return sorted.map((v, i) => ({ head: s.label, index: i + 1, value: round(opts.normalise ? v / top : v, 5) }));
  }).filter((d) => !opts.log || d.value > 0);
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: opts.width ?? 480,
    height: opts.height ?? 260,
    marginRight: 90,
    x: { label: 'index', tickFormat: 'd' },
    y: { label: opts.normalise ? 'σᵢ / σ₁' : 'singular value σᵢ', grid: true, ...(opts.log ? { type: 'log' } : { zero: true }) },
    color: { domain: spectra.map((s) => s.label), scheme: 'tableau10' },
    marks: [
      Plot.line(data, { x: 'index', y: 'value', stroke: 'head' }),
      Plot.dot(data, { x: 'index', y: 'value', stroke: 'head', r: 2.5, title: (d: { head: string; index: number; value: number }) => `${d.head} σ${d.index} = ${d.value}` }),
      // a legend in the right margin, one row per spectrum: labels at each line's end pile up where the spectra
      // all fall to the same small values
      ...spectra.map((s, i) => Plot.text([s.label], { frameAnchor: 'top-right', text: (d: string) => d, fill: (d: string) => d, textAnchor: 'start', dx: 8, dy: 4 + i * 14, fontSize: 10 })),
    ],
  });
  return makeView('svd spectrum', title, toSVGString(chart as unknown as Element));
}
