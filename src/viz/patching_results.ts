/**
 * Patching results: the effect of patching each (layer, position) or (layer, head) from the clean run
 * into the corrupted one (Meng et al. 2022 "ROME" for layer × position; Wang et al. 2022 "IOI" for
 * layer × head). Effects are signed, so the colour diverges around 0: red for a positive effect, blue for a
 * negative one, white for none, on a domain symmetric about 0 so that equal sizes look equally strong.
 */
import * as Plot from '@observablehq/plot';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { legendSVG, stackSVGs } from './legend.js';
import { makeView, type View } from './view.js';

export interface PatchingResultsOptions {
  /** Title (aria-label, page title). Default: 'patching: layer × position' or 'patching: layer × head'. */
  title?: string;
  /** What the numbers are, e.g. 'logit diff recovered'. Default: 'effect'. */
  metricLabel?: string;
  /** Column labels. Default: `(i) token` for positions (from `tokens`), `H{h}` for heads. */
  columns?: string[];
  /** Half-width of the symmetric colour domain. Default: max |effect| (at least 1e-9). */
  maxAbs?: number;
  /** Size of one cell in pixels. Default: 26. */
  cellSize?: number;
  /** Diverging scheme (Plot's names); reversed so positive is red. Default: 'rdbu'. */
  scheme?: string;
}

function patchingHeatmap(values: number[][], columns: string[], kind: string, xLabel: string, opts: PatchingResultsOptions): View {
  const cell = opts.cellSize ?? 26;
  const title = opts.title ?? `patching: layer × ${kind}`;
  const metric = opts.metricLabel ?? 'effect';
  const rows = values.map((_, l) => `L${l}`);
  const data = values.flatMap((row, l) => row.map((v, c) => ({ row: rows[l], col: columns[c], v: round(v) })));
  const maxAbs = opts.maxAbs ?? Math.max(1e-9, ...data.map((d) => Math.abs(d.v)).filter(Number.isFinite));
  const scheme = opts.scheme ?? 'rdbu';
  const rotate = kind === 'position';
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: 60 + Math.max(6, columns.length) * cell + 30,
    height: 30 + rows.length * cell + (rotate ? 90 : 40),
    marginLeft: 50,
    marginBottom: rotate ? 90 : 40,
    padding: 0,
    x: { domain: columns, label: xLabel, ...(rotate ? { tickRotate: -60 } : {}) },
    y: { domain: rows, label: 'layer' },
    color: { type: 'linear', scheme: scheme as Plot.ColorScheme, domain: [-maxAbs, maxAbs], reverse: true },
    marks: [Plot.cell(data, { x: 'col', y: 'row', fill: 'v', inset: 0.5, title: (d: { row: string; col: string; v: number }) => `${d.row} ${d.col}: ${metric} ${d.v.toFixed(3)}` })],
  });
  const legend = legendSVG({ scheme, domain: [-maxAbs, maxAbs], label: metric, reverse: true });
  const svg = stackSVGs([legend, toSVGString(chart as unknown as Element)], 4, title);
  return makeView(`patching ${kind}`, title, svg);
}

/** Effects [layer][pos] of patching the residual stream (or any per-position activation). */
export function patchingByPosition(values: number[][], tokens?: string[], opts: PatchingResultsOptions = {}): View {
  const n = Math.max(0, ...values.map((r) => r.length));
  const columns = opts.columns ?? Array.from({ length: n }, (_, i) => (tokens ? `(${i}) ${tokens[i]}`.trimEnd() : `(${i})`));
  return patchingHeatmap(values, columns, 'position', 'position', opts);
}

/** Effects [layer][head] of patching each head's output. */
export function patchingByHead(values: number[][], opts: PatchingResultsOptions = {}): View {
  const n = Math.max(0, ...values.map((r) => r.length));
  const columns = opts.columns ?? Array.from({ length: n }, (_, h) => `H${h}`);
  return patchingHeatmap(values, columns, 'head', 'head', opts);
}
