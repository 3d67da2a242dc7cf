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
  /** Static SVG markup, a standalone SVG (its root has the SVG namespace). */
  svg: string;
  /** The HTML fragment that `html` wraps in a page: markup plus inline scripts, usable inside a larger page. */
  fragment: string;
  /** A whole self-contained page (inline script and style, works offline). */
  html: string;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An SVG made standalone: its root gets the SVG namespace as an attribute. outerHTML (linkedom's, and a browser's
 * HTML serialiser) leaves it out, which is fine inside HTML but not in a file: without it a .svg opens as an XML
 * tree and `<img src>` shows a broken image. Markup that is not an <svg> root is returned as it is.
 */
export function standaloneSVG(svg: string): string {
  const open = /^<svg\b[^>]*>/.exec(svg);
  if (!open || /\sxmlns=/.test(open[0])) return svg;
  return `<svg xmlns="${SVG_NS}"${svg.slice(4)}`;
}

/** Builds a View from its SVG and an optional interactive fragment (default: the SVG in a figure). */
export function makeView(kind: string, title: string, svg: string, fragment?: string, scripts: string[] = []): View {
  const frag = fragment ?? `<figure>${svg}</figure>`;
  const withScripts = frag + scripts.map((s) => `<script>${s}</script>`).join('\n');
  return {
    kind,
    title,
    svg: standaloneSVG(svg),
    fragment: withScripts,
    html: htmlPage(title, `<h1>${esc(title)}</h1>\n${withScripts}`),
  };
}
