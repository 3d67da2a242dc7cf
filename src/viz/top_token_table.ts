/**
 * Top-token table: for each singular direction (or head, or neuron), the vocabulary tokens it reads or
 * writes most, as in MAPS-style and SVD-direction readouts (Millidge & Black 2022). Drawn as an SVG table
 * so it snapshots and exports like every other view; the page version is an HTML table.
 */
import { esc } from './html.js';
import { makeView, type View } from './view.js';

export interface TopTokenRow {
  /** Row label, e.g. 'L1H3 OV σ1'. */
  label: string;
  /** Tokens at the positive end, strongest first. */
  top: string[];
  /** Tokens at the negative end, strongest first. Default: none (column omitted when no row has them). */
  bottom?: string[];
  /** A number shown beside the label, e.g. the singular value. Default: none. */
  value?: number;
}

export interface TopTokenTableOptions {
  /** Title (aria-label, page title). Default: 'top tokens'. */
  title?: string;
  /** Tokens shown per side. Default: 8. */
  k?: number;
  /** Width of one token cell in pixels. Default: 62. */
  tokenWidth?: number;
  /** Longest token text printed (longer ones end in '…'). Default: 9 characters. */
  maxChars?: number;
}

const ROW = 20;

export function topTokenTable(rows: TopTokenRow[], opts: TopTokenTableOptions = {}): View {
  const title = opts.title ?? 'top tokens';
  const k = opts.k ?? 8;
  const tw = opts.tokenWidth ?? 62;
  const max = opts.maxChars ?? 9;
  const cut = (s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
  const hasBottom = rows.some((r) => r.bottom && r.bottom.length > 0);
  const labelW = 8 + 7 * Math.max(6, ...rows.map((r) => r.label.length + (r.value === undefined ? 0 : 8)));
  const sideW = k * tw;
  const width = labelW + sideW + (hasBottom ? sideW + 10 : 0) + 10;
  const height = ROW * (rows.length + 1) + 6;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, extra = '') => `<text x="${x}" y="${y}"${extra}>${esc(s)}</text>`;
  out.push(text(4, 14, 'direction', ' font-weight="bold"'), text(labelW, 14, `top ${k} (+)`, ' font-weight="bold"'));
  if (hasBottom) out.push(text(labelW + sideW + 10, 14, `top ${k} (−)`, ' font-weight="bold"'));
  rows.forEach((r, i) => {
    const y = ROW * (i + 1);
    if (i % 2 === 0) out.push(`<rect x="0" y="${y + 2}" width="${width}" height="${ROW}" fill="#f3f3f3"/>`);
    const label = r.value === undefined ? r.label : `${r.label} (${r.value.toFixed(2)})`;
    out.push(text(4, y + 16, label));
    r.top.slice(0, k).forEach((t, j) => out.push(text(labelW + j * tw, y + 16, cut(JSON.stringify(t).slice(1, -1)), ' fill="#b2182b"')));
    (r.bottom ?? []).slice(0, k).forEach((t, j) => out.push(text(labelW + sideW + 10 + j * tw, y + 16, cut(JSON.stringify(t).slice(1, -1)), ' fill="#2166ac"')));
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, monospace" font-size="11">${out.join('')}</svg>`;
  const head = `<tr><th>direction</th><th>top (+)</th>${hasBottom ? '<th>top (−)</th>' : ''}</tr>`;
  const body = rows
    .map((r) => `<tr><td>${esc(r.value === undefined ? r.label : `${r.label} (${r.value.toFixed(3)})`)}</td><td><code>${r.top.slice(0, k).map((t) => esc(JSON.stringify(t))).join(' ')}</code></td>${hasBottom ? `<td><code>${(r.bottom ?? []).slice(0, k).map((t) => esc(JSON.stringify(t))).join(' ')}</code></td>` : ''}</tr>`)
    .join('\n');
  return makeView('top tokens', title, svg, `<table class="hl-table">${head}\n${body}</table>`);
}
