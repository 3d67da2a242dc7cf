/**
 * What every picture returns: a static SVG (rendered in Node on linkedom, deterministic, for files,
 * snapshots and READMEs) and an interactive self-contained HTML page.
 */
import { esc, htmlPage } from './html.js';

export interface View {
  /** What the picture is, e.g. 'head grid'. */
  kind: string;
  /** Title of the picture (also the HTML page's title). */
  title: string;
  /** Static SVG markup. */
  svg: string;
  /** The HTML fragment that `html` wraps in a page: markup plus inline scripts, usable inside a larger page. */
  fragment: string;
  /** A whole self-contained page (inline script and style, works offline). */
  html: string;
}

/** Builds a View from its SVG and an optional interactive fragment (default: the SVG in a figure). */
export function makeView(kind: string, title: string, svg: string, fragment?: string, scripts: string[] = []): View {
  const frag = fragment ?? `<figure>${svg}</figure>`;
  const withScripts = frag + scripts.map((s) => `<script>${s}</script>`).join('\n');
  return {
    kind,
    title,
    svg,
    fragment: withScripts,
    html: htmlPage(title, `<h1>${esc(title)}</h1>\n${withScripts}`),
  };
}
