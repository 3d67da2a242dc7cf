/**
 * The heads of a model as points in the plane, close where their attention is alike, coloured by layer: Clark
 * et al. (2019) Figure 6's picture, from the Jensen–Shannon distances between heads embedded in 2-D
 * (interp/scores/head_distances.ts: `headEmbedding`, classical MDS). The axes have no units, only distances
 * between points mean something.
 */
import * as Plot from '@observablehq/plot';
import * as d3 from 'd3';
import { HeadlensError } from '../errors.js';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { makeView, type View } from './view.js';

export interface EmbeddedHeadPoint {
  layer: number;
  head: number;
  /** e.g. 'L3H1'. */
  label: string;
  x: number;
  y: number;
}

export interface HeadEmbeddingOptions {
  /** Title (aria-label, page title). Default: 'attention heads embedded by their distances'. */
  title?: string;
  /** Write each head's label beside its dot. Default: when there are at most 48 heads. */
  labels?: boolean;
  /** Width in pixels. Default: 420. */
  width?: number;
  /** Height in pixels. Default: 420. */
  height?: number;
}

export function headEmbeddingPlot(points: EmbeddedHeadPoint[], opts: HeadEmbeddingOptions = {}): View {
  if (!Array.isArray(points) || points.length === 0) throw new HeadlensError('headEmbeddingPlot: no points given', 'pass headEmbedding(headDistances(…)).points');
  const title = opts.title ?? 'attention heads embedded by their distances';
  const data = points.map((p) => ({ ...p, x: round(p.x, 5), y: round(p.y, 5) }));
  const layers = Math.max(...points.map((p) => p.layer)) + 1;
  const showLabels = opts.labels ?? points.length <= 48;
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: opts.width ?? 420,
    height: opts.height ?? 420,
    inset: 16,
    marginRight: 70,
    x: { axis: null },
    y: { axis: null },
    // theirs: matplotlib's seismic, blue (first layer) through white to red (last); turbo here, without its near-black
    // ends, keeps every layer visible on white
    color: { type: 'ordinal', domain: Array.from({ length: layers }, (_, l) => l), range: Array.from({ length: layers }, (_, l) => d3.interpolateTurbo(0.1 + (0.8 * l) / Math.max(1, layers - 1))) },
    marks: [
      Plot.frame({ stroke: '#ddd' }),
      Plot.dot(data, { x: 'x', y: 'y', fill: 'layer', r: 4, title: (d: EmbeddedHeadPoint) => d.label }),
      ...(showLabels ? [Plot.text(data, { x: 'x', y: 'y', text: 'label', dy: -8, fontSize: 9, fill: '#444' })] : []),
      // the legend in the right margin, one row per layer (a Plot legend would wrap the SVG in a figure)
      ...Array.from({ length: layers }, (_, l) => Plot.text([l], { frameAnchor: 'top-right', text: (d: number) => `● layer ${d}`, fill: (d: number) => d, textAnchor: 'start', dx: 8, dy: 4 + l * 14, fontSize: 10 })),
    ],
  });
  return makeView('head embedding', title, toSVGString(chart as unknown as Element));
}
