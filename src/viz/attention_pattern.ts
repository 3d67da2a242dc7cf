/**
 * Attention pattern heatmap: destination (query) tokens down, source (key) tokens across, one panel per
 * head. Tokens are labelled `(i) token` so repeated tokens stay apart.
 */
import * as Plot from '@observablehq/plot';
import { serverDocument, toSVGString } from './dom.js';

export interface AttentionPatternOptions {
  /** One label per position. Default: `(i)`. */
  labels?: string[];
  /** Panel titles, one per head. Default: `H{h}`. */
  headLabels?: string[];
  /** Accessible name of the SVG (aria-label). Default: none. */
  title?: string;
  /** Width of one panel in pixels. Default: 24 per token, at least 160. */
  panelWidth?: number;
  /** Colour scheme (Plot's names). Default: 'blues'. */
  scheme?: string;
}

/**
 * Renders patterns [head][query_pos][key_pos] (weights in [0, 1]; masked entries are 0 and not drawn)
 * and returns the SVG markup.
 */
export function attentionPatternSVG(patterns: number[][][], opts: AttentionPatternOptions = {}): string {
  const nPos = patterns[0]?.length ?? 0;
  const labels = opts.labels ?? Array.from({ length: nPos }, (_, i) => `(${i})`);
  const heads = opts.headLabels ?? patterns.map((_, h) => `H${h}`);
  const data: { head: string; dest: string; src: string; weight: number }[] = [];
  patterns.forEach((p, h) =>
    p.forEach((row, q) =>
      row.forEach((w, k) => {
        if (k <= q) data.push({ head: heads[h], dest: labels[q], src: labels[k], weight: Math.round(w * 1e4) / 1e4 });
      }),
    ),
  );
  const panel = opts.panelWidth ?? Math.max(160, 24 * nPos);
  const chart = Plot.plot({
    document: serverDocument(),
    // Plot wraps a titled chart in an HTML <figure>; keep a bare SVG and name it through aria-label
    ariaLabel: opts.title,
    width: 120 + panel * patterns.length,
    height: 90 + Math.max(160, 18 * nPos),
    marginLeft: 110,
    marginBottom: 90,
    padding: 0,
    x: { domain: labels, label: 'source (key)', tickRotate: -60 },
    y: { domain: labels, label: 'destination (query)' },
    fx: { domain: heads, label: null },
    color: { scheme: (opts.scheme ?? 'blues') as Plot.ColorScheme, domain: [0, 1], legend: false },
    marks: [Plot.cell(data, { x: 'src', y: 'dest', fx: 'head', fill: 'weight', inset: 0.5, title: (d: { weight: number }) => d.weight.toFixed(3) })],
  });
  return toSVGString(chart as unknown as Element);
}
