/**
 * Token lines, after bertviz's head view (Vig 2019, "A Multiscale Visualization of Attention in the
 * Transformer Model"): destination tokens in a column on the left, source tokens on the right, a line
 * from each destination to each source it attends to, its opacity the attention weight, one colour per
 * head. The page lets you pick the layer and the heads and hover a token to keep only its lines.
 */
import * as d3 from 'd3';
import { HeadlensError } from '../errors.js';
import { TOKEN_LINES_JS } from './client_scripts.js';
import { positionLabels } from './attention_pattern.js';
import { esc, round } from './html.js';
import { makeView, type View } from './view.js';

export interface TokenLinesOptions {
  /** Token texts, one per position. Default: `(i)`. */
  tokens?: string[];
  /** Layer drawn in the static SVG (the page starts on it). Default: 0. */
  layer?: number;
  /** Heads drawn in the static SVG (the page starts with them ticked). Default: all. */
  heads?: number[];
  /** Weights below this are not drawn. Default: 0.02. */
  minWeight?: number;
  /** Title (aria-label, page title). Default: 'attention: token lines'. */
  title?: string;
  /** Layer labels. Default: `L{l}`. */
  layerLabels?: string[];
}

const ROW = 20;
/** Least width of a token column; a longer label widens it (12 px monospace: about 7.3 px a character). */
const COL_W = 120;
const CHAR_W = 7.3;
const GAP = 160;

/** One colour per head: d3's Tableau10, cycled. */
export function headColour(h: number): string {
  return d3.schemeTableau10[h % d3.schemeTableau10.length];
}

function linesFor(pattern: number[][], layer: number, head: number, x0: number, x1: number, min: number): string[] {
  const out: string[] = [];
  pattern.forEach((row, q) =>
    row.forEach((w, k) => {
      if (k > q || !(w >= min)) return;
      const y0 = 30 + q * ROW - 4;
      const y1 = 30 + k * ROW - 4;
      out.push(`<line data-layer="${layer}" data-head="${head}" data-q="${q}" data-k="${k}" x1="${x0}" y1="${y0}" x2="${x1}" y2="${y1}" stroke="${headColour(head)}" stroke-width="2" stroke-opacity="${round(w, 3)}"/>`);
    }),
  );
  return out;
}

function tokenLinesSVG(patterns: number[][][][], layers: number[], heads: number[], tokens: string[], title: string, min: number): string {
  const n = tokens.length;
  // each column as wide as its longest label, so neither the destination nor the source text is cut off
  const colW = Math.max(COL_W, Math.ceil(8 + CHAR_W * Math.max(0, ...tokens.map((t) => [...t].length))));
  const x0 = colW;
  const x1 = colW + GAP;
  const width = x1 + colW;
  const height = 30 + n * ROW;
  const parts: string[] = [];
  parts.push(`<text x="${x0}" y="14" text-anchor="end" font-weight="bold">destination</text>`, `<text x="${x1}" y="14" font-weight="bold">source</text>`);
  for (const l of layers) for (const h of heads) parts.push(...linesFor(patterns[l][h], l, h, x0 + 4, x1 - 4, min));
  tokens.forEach((t, i) => {
    const y = 30 + i * ROW;
    parts.push(`<text data-side="dest" data-pos="${i}" x="${x0 - 4}" y="${y}" text-anchor="end">${esc(t)}</text>`);
    parts.push(`<text data-side="src" data-pos="${i}" x="${x1 + 4}" y="${y}">${esc(t)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, monospace" font-size="12">${parts.join('')}</svg>`;
}

/** patterns [layer][head][query_pos][key_pos]. */
export function tokenLines(patterns: number[][][][], opts: TokenLinesOptions = {}): View {
  const nLayers = patterns.length;
  const nHeads = patterns[0]?.length ?? 0;
  const nPos = patterns[0]?.[0]?.length ?? 0;
  const layer = opts.layer ?? 0;
  if (layer < 0 || layer >= nLayers) throw new HeadlensError(`tokenLines: layer ${layer} out of range (${nLayers} layers)`, `pick 0…${nLayers - 1}`);
  const heads = opts.heads ?? Array.from({ length: nHeads }, (_, h) => h);
  const bad = heads.find((h) => h < 0 || h >= nHeads);
  if (bad !== undefined) throw new HeadlensError(`tokenLines: head ${bad} out of range (${nHeads} heads)`, `pick heads in 0…${nHeads - 1}`);
  const tokens = positionLabels(opts.tokens, nPos);
  const title = opts.title ?? 'attention: token lines';
  const min = opts.minWeight ?? 0.02;
  const svg = tokenLinesSVG(patterns, [layer], heads, tokens, title, min);
  const all = tokenLinesSVG(patterns, patterns.map((_, l) => l), Array.from({ length: nHeads }, (_, h) => h), tokens, title, min);
  const layerLabels = opts.layerLabels ?? patterns.map((_, l) => `L${l}`);
  const layerOptions = layerLabels.map((lab, l) => `<option value="${l}"${l === layer ? ' selected' : ''}>${esc(lab)}</option>`).join('');
  const boxes = Array.from({ length: nHeads }, (_, h) => `<label style="color:${headColour(h)}"><input type="checkbox" class="hl-headbox" value="${h}"${heads.includes(h) ? ' checked' : ''}> H${h}</label>`).join('');
  const fragment = `<div class="hl-lines"><div class="hl-controls"><label>layer <select class="hl-layer">${layerOptions}</select></label> ${boxes}</div>\n${all}\n<p class="hl-note">Hover a token to keep only its lines.</p></div>`;
  return makeView('token lines', title, svg, fragment, [TOKEN_LINES_JS]);
}
