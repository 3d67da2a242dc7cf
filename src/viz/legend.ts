/**
 * A colour legend drawn with cells, not canvas: Plot's ramp legend paints on a <canvas>, which a
 * server-side DOM does not have. Stacked above a chart with `stackSVGs`.
 */
import * as Plot from '@observablehq/plot';
import { serverDocument, toSVGString } from './dom.js';
import { esc, round } from './html.js';

export interface LegendOptions {
  /** Plot colour scheme name. */
  scheme: string;
  /** [min, max] of the colour scale. */
  domain: [number, number];
  /** Text above the strip. Default: none. */
  label?: string;
  /** Reverse the scheme (Plot's `reverse`). Default: false. */
  reverse?: boolean;
  /** Width in pixels. Default: 240. */
  width?: number;
}

/** A 32-step colour strip with its ends and middle labelled. */
export function legendSVG(opts: LegendOptions): string {
  const steps = 32;
  const [lo, hi] = opts.domain;
  const cells = Array.from({ length: steps }, (_, i) => ({ i, v: lo + ((hi - lo) * (i + 0.5)) / steps }));
  const chart = Plot.plot({
    document: serverDocument(),
    width: opts.width ?? 240,
    height: 46,
    marginLeft: 16,
    marginRight: 16,
    marginTop: 18,
    marginBottom: 14,
    x: { domain: [lo, hi], axis: null },
    y: { axis: null },
    color: { type: 'linear', scheme: opts.scheme as Plot.ColorScheme, domain: [lo, hi], ...(opts.reverse ? { reverse: true } : {}) },
    marks: [
      Plot.rectX(cells, { x1: (d: { i: number }) => lo + ((hi - lo) * d.i) / steps, x2: (d: { i: number }) => lo + ((hi - lo) * (d.i + 1)) / steps, fill: 'v' }),
      Plot.text([lo, (lo + hi) / 2, hi], { x: (d: number) => d, text: (d: number) => String(round(d, 3)), frameAnchor: 'bottom', dy: 12, fontSize: 9 }),
      ...(opts.label ? [Plot.text([opts.label], { x: lo, text: (d: string) => d, frameAnchor: 'top-left', textAnchor: 'start', dy: -14, fontSize: 10 })] : []),
    ],
  });
  return toSVGString(chart as unknown as Element);
}

/** Stacks SVG documents vertically into one SVG (nested <svg> elements offset by y). */
export function stackSVGs(svgs: string[], gap = 4, label?: string): string {
  let y = 0;
  let width = 0;
  const inner: string[] = [];
  for (const s of svgs) {
    const w = Number(/\bwidth="([\d.]+)"/.exec(s)?.[1] ?? 0);
    const h = Number(/\bheight="([\d.]+)"/.exec(s)?.[1] ?? 0);
    inner.push(s.replace(/^<svg\b/, `<svg y="${y}"`));
    y += h + gap;
    width = Math.max(width, w);
  }
  const aria = label ? ` role="img" aria-label="${esc(label)}"` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg"${aria} width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">${inner.join('')}</svg>`;
}
