/**
 * The interactive half of every view: one self-contained HTML page, all script and style inline, no
 * network at all (no CDN, no fonts), so a report opens the same offline, from file://, or inside a notebook.
 */

/** Escapes text for HTML/SVG element content and attribute values. */
export function esc(s: string | number): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON for an inline <script>: `</script>` and `<!--` inside strings cannot close or comment it. */
export function inlineJSON(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Rounds to `digits` decimals (pictures and their snapshots do not need float noise). */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table.hl-table { border-collapse: collapse; margin: 6px 0; } .hl-table td, .hl-table th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
.hl-tokens { display: flex; flex-wrap: wrap; gap: 3px; margin: 8px 0; font-family: ui-monospace, monospace; }
.hl-tok { padding: 2px 4px; border: 1px solid #ccc; border-radius: 3px; cursor: default; white-space: pre; }
.hl-tok.hl-focus { outline: 2px solid #d62728; }
.hl-note { color: #555; font-size: 12px; }
.hl-controls { margin: 6px 0; } .hl-controls label { margin-right: 10px; }
figure { margin: 8px 0; }
`;

/** A whole page: the title, the body markup, and inline scripts (run after the body is parsed). */
export function htmlPage(title: string, body: string, scripts: string[] = []): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${PAGE_STYLE}</style>`,
    '</head><body>',
    body,
    ...scripts.map((s) => `<script>${s}</script>`),
    '</body></html>',
  ].join('\n');
}
