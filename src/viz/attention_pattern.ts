/**
 * Attention pattern heatmap: destination (query) tokens down, source (key) tokens across, one panel per
 * head. Tokens are labelled `(i) token` so repeated tokens stay apart. The interactive page adds an
 * explorer: pick a head, hover a destination token, and the source tokens are shaded by the weight they get.
 */
import * as Plot from '@observablehq/plot';
import { HeadlensError } from '../errors.js';
import { ATTENTION_EXPLORER_JS } from './client_scripts.js';
import { serverDocument, toSVGString } from './dom.js';
import { esc, inlineJSON, round } from './html.js';
import { makeView, standaloneSVG, type View } from './view.js';

export interface AttentionPatternOptions {
  /** One label per position (the token text). Default: `(i)`; given labels are shown as `(i) label`. */
  labels?: string[];
  /** Panel titles, one per head. Default: `H{h}`. */
  headLabels?: string[];
  /** Accessible name of the SVG (aria-label) and the page title. Default: none ('attention pattern' as page title). */
  title?: string;
  /** Width of one panel in pixels. Default: 24 per token, at least 160. */
  panelWidth?: number;
  /** Colour scheme (Plot's names). Default: 'blues'. */
  scheme?: string;
}

/** Checks patterns are [head][pos][pos] and labels match; returns pos. */
function checkPatterns(patterns: number[][][], opts: AttentionPatternOptions): number {
  const nPos = patterns[0]?.length ?? 0;
  if (patterns.length === 0 || nPos === 0) throw new HeadlensError('attention pattern: no heads or no positions', 'pass patterns [head][query_pos][key_pos]');
  patterns.forEach((p, h) => {
    if (p.length !== nPos || p.some((row) => row.length !== nPos)) {
      throw new HeadlensError(`attention pattern: head ${h} is not ${nPos} × ${nPos}`, 'every head needs one row per query position and one weight per key position');
    }
  });
  if (opts.labels && opts.labels.length !== nPos) throw new HeadlensError(`attention pattern: ${opts.labels.length} labels for ${nPos} positions`, 'pass one label per position');
  if (opts.headLabels && opts.headLabels.length !== patterns.length) throw new HeadlensError(`attention pattern: ${opts.headLabels.length} head labels for ${patterns.length} heads`, 'pass one label per head');
  return nPos;
}

/**
 * `(i) token` labels, trimmed, so that repeated tokens stay distinct on an axis. A token already labelled with
 * its own position (`model.tokenLabels` gives `(13) drink`) is kept as it is, never `(13) (13) drink`.
 */
export function positionLabels(tokens: string[] | undefined, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const t = tokens?.[i] ?? '';
    return hasPosition(t, i) ? t.trimEnd() : `(${i}) ${t}`.trimEnd();
  });
}

/** The token text without a leading `(i) ` naming its own position (the explorer adds the position itself). */
export function tokenText(label: string, i: number): string {
  return label.startsWith(`(${i}) `) ? label.slice(`(${i}) `.length) : label;
}

function hasPosition(label: string, i: number): boolean {
  return label === `(${i})` || label.startsWith(`(${i}) `);
}

/**
 * Renders patterns [head][query_pos][key_pos] (weights in [0, 1]; entries above the diagonal are masked
 * and not drawn) and returns the SVG markup, a standalone SVG (with its namespace) that can be written to a file.
 */
export function attentionPatternSVG(patterns: number[][][], opts: AttentionPatternOptions = {}): string {
  const nPos = checkPatterns(patterns, opts);
  const labels = positionLabels(opts.labels, nPos);
  const heads = opts.headLabels ?? patterns.map((_, h) => `H${h}`);
  const data: { head: string; dest: string; src: string; weight: number }[] = [];
  patterns.forEach((p, h) =>
    p.forEach((row, q) =>
      row.forEach((w, k) => {
        if (k <= q) data.push({ head: heads[h], dest: labels[q], src: labels[k], weight: round(w) });
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
  return standaloneSVG(toSVGString(chart as unknown as Element));
}

/**
 * The explorer markup for one set of heads: a head picker, the token strip, and a line naming the
 * strongest source of the hovered token. Needs ATTENTION_EXPLORER_JS once on the page.
 */
export function attentionExplorerFragment(patterns: number[][][], tokens: string[], headLabels: string[]): string {
  // the script prints `(i) token` itself, so labels that already carry their position lose it here
  tokens = tokens.map(tokenText);
  const data = { tokens, heads: patterns.map((p, h) => ({ label: headLabels[h], pattern: p.map((row) => row.map((w) => round(w))) })) };
  const options = headLabels.map((l, h) => `<option value="${h}">${esc(l)}</option>`).join('');
  // whitespace would be an empty box: show it (␣ for a space, ↵ for a newline, ∅ for nothing)
  const visible = (t: string) => (t === '' ? '∅' : t.replace(/ /g, '␣').replace(/\n/g, '↵'));
  const toks = tokens.map((t, i) => `<span class="hl-tok" data-pos="${i}">${esc(visible(t))}</span>`).join('');
  return [
    '<div class="hl-attn">',
    `<script type="application/json">${inlineJSON(data)}</script>`,
    `<div class="hl-controls"><label>head <select class="hl-head">${options}</select></label></div>`,
    `<div class="hl-tokens">${toks}</div>`,
    '<div class="hl-info hl-note"></div>',
    '</div>',
  ].join('\n');
}

/** The attention pattern as a View: the heatmap SVG, and a page with the explorer above it. */
export function attentionPattern(patterns: number[][][], opts: AttentionPatternOptions = {}): View {
  const nPos = checkPatterns(patterns, opts);
  const tokens = opts.labels ?? Array.from({ length: nPos }, (_, i) => `(${i})`);
  const heads = opts.headLabels ?? patterns.map((_, h) => `H${h}`);
  const svg = attentionPatternSVG(patterns, opts);
  const fragment = `${attentionExplorerFragment(patterns, tokens, heads)}\n<figure>${svg}</figure>`;
  return makeView('attention pattern', opts.title ?? 'attention pattern', svg, fragment, [ATTENTION_EXPLORER_JS]);
}
