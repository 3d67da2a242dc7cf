/**
 * Token scores side by side: one row per input token, one column per method (rollout, attention flow, an
 * importance such as input gradients), each cell a bar scaled to its column's largest value, with the value
 * printed. Abnar & Zuidema (2020) compare rollout and flow this way, token by token, against gradient and
 * blank-out importance. The output position the scores are traced from is marked.
 */
import { HeadlensError } from '../errors.js';
import { esc } from './html.js';
import { makeView, type View } from './view.js';

export interface TokenScoreColumn {
  /** e.g. 'rollout', 'flow', 'input gradient'. */
  name: string;
  /** One value per token (non-negative; a negative value is drawn as an empty bar and printed). */
  values: number[];
}

export interface TokenScoresOptions {
  /** Title (aria-label, page title). Default: 'token scores'. */
  title?: string;
  /** The output position the scores were traced from (its row is labelled '→'). Default: none. */
  outputPos?: number;
  /** Width of one column's bar in pixels. Default: 110. */
  barWidth?: number;
  /** Longest token text printed (longer ones end in '…'). Default: 12 characters. */
  maxChars?: number;
}

const ROW = 18;

export function tokenScores(tokens: string[], columns: TokenScoreColumn[], opts: TokenScoresOptions = {}): View {
  if (columns.length === 0) throw new HeadlensError('tokenScores: no columns given', 'pass at least one { name, values }');
  for (const c of columns) if (c.values.length !== tokens.length) throw new HeadlensError(`tokenScores: column '${c.name}' has ${c.values.length} values for ${tokens.length} tokens`, 'give one value per token');
  const title = opts.title ?? 'token scores';
  const bw = opts.barWidth ?? 110;
  const max = opts.maxChars ?? 12;
  const cut = (s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
  const labels = tokens.map((t, i) => `${i === opts.outputPos ? '→ ' : ''}${i} ${cut(JSON.stringify(t).slice(1, -1))}`);
  const labelW = 8 + 7 * Math.max(6, ...labels.map((l) => l.length));
  const colW = bw + 16;
  const width = labelW + columns.length * colW;
  const height = ROW * (tokens.length + 1) + 6;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, extra = '') => `<text x="${x}" y="${y}"${extra}>${esc(s)}</text>`;
  out.push(text(4, 13, 'token', ' font-weight="bold"'));
  columns.forEach((c, j) => out.push(text(labelW + j * colW, 13, c.name, ' font-weight="bold"')));
  const peaks = columns.map((c) => Math.max(0, ...c.values.filter(Number.isFinite)));
  tokens.forEach((_, i) => {
    const y = ROW * (i + 1);
    if (i % 2 === 0) out.push(`<rect x="0" y="${y + 2}" width="${width}" height="${ROW}" fill="#f3f3f3"/>`);
    out.push(text(4, y + 14, labels[i], i === opts.outputPos ? ' font-weight="bold"' : ''));
    columns.forEach((c, j) => {
      const v = c.values[i];
      const w = peaks[j] > 0 && v > 0 ? (bw * v) / peaks[j] : 0;
      out.push(`<rect aria-label="bar" x="${labelW + j * colW}" y="${y + 5}" width="${w.toFixed(2)}" height="${ROW - 6}" fill="#4c78a8" fill-opacity="0.55"/>`);
      out.push(text(labelW + j * colW + 2, y + 14, Number.isFinite(v) ? v.toFixed(3) : String(v)));
    });
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, monospace" font-size="11">${out.join('')}</svg>`;
  return makeView('token scores', title, svg);
}
