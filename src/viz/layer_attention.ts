/**
 * Average attention per head against layer, one dot per head and a line through each layer's mean, one colour
 * per series: Clark et al. (2019) Figure 2's picture of how much attention BERT's heads pay to [CLS], [SEP] and
 * punctuation (or to the previous, current and next token) layer by layer. The scores come from
 * interp/scores/special_tokens.ts; any [layer][head] tables in [0, 1] draw the same way.
 */
import * as Plot from '@observablehq/plot';
import { HeadlensError } from '../errors.js';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { makeView, type View } from './view.js';

export interface LayerAttentionSeries {
  /** Legend label, e.g. '[CLS]', '. or ,'. */
  label: string;
  /** Average attention [layer][head]. */
  scores: number[][];
}

export interface LayerAttentionOptions {
  /** Title (aria-label, page title). Default: 'average attention by layer'. */
  title?: string;
  /** y-axis label. Default: 'avg. attention'. */
  yLabel?: string;
  /** Draw the layer means as lines. Default: true (their position panel has dots only). */
  means?: boolean;
  /** Width in pixels. Default: 480. */
  width?: number;
  /** Height in pixels. Default: 260. */
  height?: number;
}

interface Dot {
  series: string;
  layer: number;
  head: number;
  value: number;
}

export function layerAttention(series: LayerAttentionSeries[], opts: LayerAttentionOptions = {}): View {
  if (!Array.isArray(series) || series.length === 0) throw new HeadlensError('layerAttention: no series given', 'pass [{ label, scores: [layer][head] }]');
  const title = opts.title ?? 'average attention by layer';
  const dots: Dot[] = series.flatMap((s) => s.scores.flatMap((row, layer) => row.map((v, head) => ({ series: s.label, layer, head, value: round(v, 5) }))));
  const means = series.flatMap((s) => s.scores.map((row, layer) => ({ series: s.label, layer, value: round(row.reduce((a, b) => a + b, 0) / row.length, 5) })));
  const layers = Math.max(...series.map((s) => s.scores.length));
  const labels = series.map((s) => s.label);
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: opts.width ?? 480,
    height: opts.height ?? 260,
    // room for the legend: about 6 px a character at 10 px
    marginRight: Math.max(60, 16 + 6 * Math.max(...series.map((x) => x.label.length))),
    x: { label: 'layer', ticks: Array.from({ length: layers }, (_, l) => l), tickFormat: 'd', domain: [-0.5, layers - 0.5] },
    y: { label: opts.yLabel ?? 'avg. attention', grid: true, domain: [0, Math.max(1e-9, ...dots.map((d) => d.value))], nice: true },
    color: { domain: labels, range: ['#e74c3c', '#3498db', '#9b59b6', '#59d98e', '#f39c12', '#159d82'] },
    marks: [
      ...(opts.means === false ? [] : [Plot.line(means, { x: 'layer', y: 'value', stroke: 'series' })]),
      // heads of a layer spread a little sideways so equal scores stay visible
      Plot.dot(dots, { x: (d: Dot) => d.layer + (series.length > 1 ? (labels.indexOf(d.series) - (labels.length - 1) / 2) * 0.08 : 0), y: 'value', fill: 'series', r: 2.5, title: (d: Dot) => `L${d.layer}H${d.head} → ${d.series}: ${d.value}` }),
      ...labels.map((l, i) => Plot.text([l], { frameAnchor: 'top-right', text: (d: string) => d, fill: (d: string) => d, textAnchor: 'start', dx: 8, dy: 4 + i * 14, fontSize: 10 })),
    ],
  });
  return makeView('layer attention', title, toSVGString(chart as unknown as Element));
}
