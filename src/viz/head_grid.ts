/**
 * Head grid: any per-head score table [layer][head] as a heatmap, heads labelled L{l}H{h}, the top heads
 * ringed and named. Every head scorer (induction, previous-token, retrieval, ablation effect…) ends in
 * such a table, so this one picture serves all of them.
 */
import * as Plot from '@observablehq/plot';
import { serverDocument, toSVGString } from './dom.js';
import { round } from './html.js';
import { legendSVG, stackSVGs } from './legend.js';
import { makeView, type View } from './view.js';
import { headLabel } from '../interp/head_label.js';
import { topHeads } from '../interp/scores/head_scores.js';

export interface HeadGridOptions {
  /** Title (aria-label of the SVG, page title). Default: 'head scores'. */
  title?: string;
  /** Name of the score, shown in the legend. Default: 'score'. */
  scoreLabel?: string;
  /** How many of the highest-scoring heads to ring and name. Default: 3 (0 for none). */
  top?: number;
  /** Rank heads by |score| instead of score (for signed effects). Default: false. */
  byMagnitude?: boolean;
  /** Colour scheme (Plot's names). Default: 'viridis'; 'rdbu' with a symmetric domain when `diverging`. */
  scheme?: string;
  /** Colour around 0 (diverging, symmetric domain). Default: false. */
  diverging?: boolean;
  /**
   * Colour domain [min, max]. Default: from 0 (or the lowest score, if below 0) to the highest score, but never
   * narrower than [0, domainFloor] (symmetric ±max(|score|, domainFloor) when diverging): scores in [0, 1] get
   * [0, 1], so a grid whose best head scores 0.03 stays pale instead of painting 0.03 in full colour.
   */
  domain?: [number, number];
  /** How far from 0 the default domain reaches at least. Default: 1 (attention shares, score fractions); 0 stretches to the data. */
  domainFloor?: number;
  /** Row labels instead of `L{l}` (for other square tables, e.g. composition between two layers' heads). Default: L0, L1, … */
  rowLabels?: string[];
  /** Column labels instead of `H{h}`. Default: H0, H1, … */
  columnLabels?: string[];
  /** Size of one cell in pixels. Default: 40. */
  cellSize?: number;
}

export interface HeadScore {
  layer: number;
  head: number;
  label: string;
  score: number;
}

/**
 * The heads with the highest score (or |score|), best first, labelled L{l}H{h}: headlens' topHeads, for the
 * pictures. A head whose score (or |score|) is not above 0 is never ranked: ringing the "top 3" of an all-zero grid
 * would name heads that do nothing.
 */
export function rankedHeads(scores: number[][], k: number, byMagnitude = false): HeadScore[] {
  return topHeads(scores, k, { byMagnitude })
    .filter((t) => (byMagnitude ? Math.abs(t.score) : t.score) > 0)
    .map((t) => ({ ...t, label: headLabel(t.layer, t.head) }));
}

/** "max 0.027 (L3H1)" (or "max |score| …" for signed scores): where the data ends on the colour scale. */
function extentNote(scores: number[][], signed: boolean, label: (l: number, h: number) => string): string {
  let best: { l: number; h: number; v: number } | undefined;
  scores.forEach((row, l) => row.forEach((v, h) => {
    const m = signed ? Math.abs(v) : v;
    if (Number.isFinite(m) && (!best || m > best.v)) best = { l, h, v: m };
  }));
  if (!best) return 'no finite score';
  const v = signed ? scores[best.l][best.h] : best.v;
  return `${signed ? 'max |score|' : 'max'} ${Number(v.toPrecision(3))} (${label(best.l, best.h)})`;
}

/** Renders scores [layer][head]. */
export function headGrid(scores: number[][], opts: HeadGridOptions = {}): View {
  const nLayers = scores.length;
  const nHeads = Math.max(0, ...scores.map((r) => r.length));
  const cell = opts.cellSize ?? 40;
  const title = opts.title ?? 'head scores';
  const scoreLabel = opts.scoreLabel ?? 'score';
  const rowLabels = opts.rowLabels ?? Array.from({ length: nLayers }, (_, l) => `L${l}`);
  const colLabels = opts.columnLabels ?? Array.from({ length: nHeads }, (_, h) => `H${h}`);
  const custom = opts.rowLabels !== undefined || opts.columnLabels !== undefined;
  const cellLabel = (l: number, h: number) => (custom ? `${rowLabels[l]}·${colLabels[h]}` : `L${l}H${h}`);
  const data = scores.flatMap((row, l) => row.map((s, h) => ({ layer: rowLabels[l], head: colLabels[h], label: cellLabel(l, h), score: round(s) })));
  const top = rankedHeads(scores, opts.top ?? 3, opts.byMagnitude).map((t) => ({ ...t, label: cellLabel(t.layer, t.head) }));
  const topData = top.map((t) => ({ layer: rowLabels[t.layer], head: colLabels[t.head], label: t.label }));
  const finite = data.map((d) => d.score).filter(Number.isFinite);
  const floor = Math.max(opts.domainFloor ?? 1, 1e-12);
  const maxAbs = Math.max(floor, ...finite.map(Math.abs));
  const domain = opts.domain ?? (opts.diverging ? [-maxAbs, maxAbs] : [Math.min(...finite, 0), Math.max(...finite, floor)]);
  const chart = Plot.plot({
    document: serverDocument(),
    ariaLabel: title,
    width: 70 + Math.max(8, nHeads) * cell + 60,
    height: 60 + nLayers * cell + 50,
    marginLeft: custom ? 60 : 40,
    marginTop: 50,
    marginRight: 60,
    padding: 0,
    x: { domain: colLabels, label: custom ? null : 'head', axis: 'top' },
    y: { domain: rowLabels, label: custom ? null : 'layer' },
    color: {
      scheme: (opts.scheme ?? (opts.diverging ? 'rdbu' : 'viridis')) as Plot.ColorScheme,  // same as the legend's
      domain,
      legend: false,
      ...(opts.diverging ? { reverse: true } : {}),
    },
    marks: [
      Plot.cell(data, { x: 'head', y: 'layer', fill: 'score', inset: 0.5, title: (d: { label: string; score: number }) => `${d.label} ${scoreLabel} ${d.score.toFixed(3)}` }),
      Plot.cell(topData, { x: 'head', y: 'layer', fill: 'none', stroke: '#d62728', strokeWidth: 2.5, inset: 1.5 }),
      Plot.text(topData, { x: 'head', y: 'layer', text: 'label', fill: '#b00000', stroke: 'white', strokeWidth: 3, paintOrder: 'stroke', fontSize: custom ? 8 : 10, fontWeight: 'bold' }),
    ],
  });
  const scheme = opts.scheme ?? (opts.diverging ? 'rdbu' : 'viridis');
  // the legend says where the data ends, since the scale may reach beyond it
  const legend = legendSVG({ scheme, domain: domain as [number, number], label: `${scoreLabel}: ${extentNote(scores, opts.diverging ?? false, cellLabel)}`, reverse: opts.diverging });
  const svg = stackSVGs([legend, toSVGString(chart as unknown as Element)], 4, title);
  const list = top.map((t) => `${t.label} ${t.score.toFixed(3)}`).join(', ');
  return makeView('head grid', title, svg, `<figure>${svg}</figure><p class="hl-note">top heads: ${list || 'none'}</p>`);
}
