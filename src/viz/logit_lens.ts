/**
 * Logit lens table (nostalgebraist 2020): decode the residual stream after every layer through the final
 * norm and the unembedding, and show the top token per (layer, position) with its probability. The
 * picture shows when, layer by layer, the model's guess for the next token settles.
 */
import * as Plot from '@observablehq/plot';
import { HeadlensError } from '../errors.js';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { legendSVG, stackSVGs } from './legend.js';
import { makeView, type View } from './view.js';

export interface LogitLensData {
  /** The input tokens, one per position (columns). */
  tokens: string[];
  /** Row labels, e.g. 'embed', 'L0', …, 'final'. */
  layers: string[];
  /** Top predicted token [layer][pos]. */
  top: string[][];
  /** Its probability [layer][pos], in [0, 1]. */
  prob: number[][];
}

export interface LogitLensTableOptions {
  /** Title (aria-label, page title). Default: 'logit lens'. */
  title?: string;
  /** Cell width in pixels (tokens are printed inside). Default: 64. */
  cellWidth?: number;
  /** Cell height in pixels. Default: 22. */
  cellHeight?: number;
  /** Colour scheme for the probability. Default: 'blues'. */
  scheme?: string;
  /** Longest token text printed in a cell (longer ones end in '…'). Default: 8 characters. */
  maxChars?: number;
}

export function logitLensTable(d: LogitLensData, opts: LogitLensTableOptions = {}): View {
  if (d.top.length !== d.layers.length || d.prob.length !== d.layers.length) {
    throw new HeadlensError(`logitLens: ${d.layers.length} layer labels but ${d.top.length} rows of tokens and ${d.prob.length} of probabilities`, 'give one row per layer label');
  }
  const title = opts.title ?? 'logit lens';
  const w = opts.cellWidth ?? 64;
  const h = opts.cellHeight ?? 22;
  const max = opts.maxChars ?? 8;
  const cols = d.tokens.map((t, i) => `(${i}) ${t}`.trimEnd());
  const cut = (s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
  const data = d.layers.flatMap((layer, l) => cols.map((col, p) => ({ layer, col, tok: d.top[l][p] ?? '', prob: round(d.prob[l][p] ?? 0) })));
  const scheme = opts.scheme ?? 'blues';
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: 70 + cols.length * w + 20,
    height: 30 + d.layers.length * h + 80,
    marginLeft: 60,
    marginBottom: 80,
    padding: 0,
    x: { domain: cols, label: 'input position', tickRotate: -45 },
    y: { domain: d.layers, label: 'layer' },
    color: { type: 'linear', scheme: scheme as Plot.ColorScheme, domain: [0, 1] },
    marks: [
      Plot.cell(data, { x: 'col', y: 'layer', fill: 'prob', inset: 0.5, title: (r: { layer: string; col: string; tok: string; prob: number }) => `${r.layer} ${r.col}: ${JSON.stringify(r.tok)} p=${r.prob.toFixed(3)}` }),
      Plot.text(data, { x: 'col', y: 'layer', text: (r: { tok: string }) => cut(r.tok), fill: (r: { prob: number }) => (r.prob > 0.5 ? 'white' : 'black'), fontSize: 9 }),
    ],
  });
  const legend = legendSVG({ scheme, domain: [0, 1], label: 'probability of the top token' });
  const svg = stackSVGs([legend, toSVGString(chart as unknown as Element)], 4, title);
  return makeView('logit lens', title, svg);
}
