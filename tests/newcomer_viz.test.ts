/**
 * Issue 20's picture faults, each as a call: a colour scale stretched to a tiny maximum, doubled position labels,
 * SVD spectrum labels piled at the last index, and the atlas with number tokens.
 */
import { parseHTML } from 'linkedom';
import { describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import { atlasHTML, attentionPattern, headGrid, svdSpectrum, tokenLines } from '../src/viz/index.js';
import { samplePatterns } from './viz_data.js';

function svgDoc(svg: string): Element {
  const { document: doc } = parseHTML(`<!DOCTYPE html><html><body>${svg}</body></html>`);
  return doc.querySelector('svg') as unknown as Element;
}
const chartOf = (svg: string) => {
  const nested = Array.from(svgDoc(svg).children).filter((c) => c.tagName.toLowerCase() === 'svg');
  return nested[nested.length - 1];
};
const rgb = (fill: string): number[] => {
  const m = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(fill) ?? /^#(..)(..)(..)$/.exec(fill)!;
  return fill.startsWith('#') ? [1, 2, 3].map((i) => parseInt(m[i], 16)) : [1, 2, 3].map((i) => Number(m[i]));
};
const dist = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

describe('headGrid colour scale', () => {
  it('headGrid(scores all ≤ 0.027) colours on [0, 1]: the best head stays near the colour of 0, and the legend says the max', () => {
    const v = headGrid([[0.027, 0], [0.01, 0.005]], { scoreLabel: 'induction' });
    const cells = Array.from(chartOf(v.svg).querySelector('g[aria-label="cell"]')!.querySelectorAll('rect')).map((r) => rgb(r.getAttribute('fill')!));
    // viridis: 0 is dark purple (68, 1, 84), 1 is yellow (253, 231, 37); 0.027 is a step from purple
    expect(dist(cells[0], cells[1])).toBeLessThan(30);
    expect(dist(cells[0], [253, 231, 37])).toBeGreaterThan(200);
    const legend = Array.from(svgDoc(v.svg).querySelectorAll('text')).map((t) => t.textContent);
    expect(legend).toContain('induction: max 0.027 (L0H0)');
    expect(legend).toContain('1'); // the scale's end, not 0.027
  });

  it('headGrid(scores above 1) still reaches its maximum; domainFloor 0 stretches to the data', () => {
    const big = headGrid([[2.5, 0]]);
    const [top] = Array.from(chartOf(big.svg).querySelector('g[aria-label="cell"]')!.querySelectorAll('rect')).map((r) => rgb(r.getAttribute('fill')!));
    expect(dist(top, [253, 231, 37])).toBeLessThan(10);
    const stretched = headGrid([[0.027, 0]], { domainFloor: 0 });
    const [s] = Array.from(chartOf(stretched.svg).querySelector('g[aria-label="cell"]')!.querySelectorAll('rect')).map((r) => rgb(r.getAttribute('fill')!));
    expect(dist(s, [253, 231, 37])).toBeLessThan(10);
  });

  it('headGrid(signed scores, {diverging}) keeps ±1 at least: a tiny effect is near white', () => {
    const v = headGrid([[0.02, -0.01]], { diverging: true });
    const cells = Array.from(chartOf(v.svg).querySelector('g[aria-label="cell"]')!.querySelectorAll('rect')).map((r) => rgb(r.getAttribute('fill')!));
    expect(Math.min(...cells[0])).toBeGreaterThan(220);
    expect(Array.from(svgDoc(v.svg).querySelectorAll('text')).map((t) => t.textContent)).toContain('score: max |score| 0.02 (L0H0)');
  });
});

describe('position labels', () => {
  const labelled = ['(0) When', '(1)  Mary', '(2)  drink'];
  it('tokenLines(tokens already labelled "(i) t") does not label them twice, and widens its columns for long tokens', () => {
    const v = tokenLines([samplePatterns(1, 3, 1)], { tokens: labelled });
    const texts = Array.from(svgDoc(v.svg).querySelectorAll('text[data-side="src"]')).map((t) => t.textContent);
    expect(texts).toEqual(labelled);
    const long = tokenLines([samplePatterns(1, 3, 1)], { tokens: ['a', 'b', 'x'.repeat(40)] });
    const root = svgDoc(long.svg);
    const width = Number(root.getAttribute('width'));
    const src = root.querySelector('text[data-side="src"][data-pos="2"]')!;
    // the source column's text starts at x and must fit: 43 characters of 12 px monospace
    expect(width - Number(src.getAttribute('x'))).toBeGreaterThanOrEqual(43 * 7);
  });

  it('attentionPattern(labels "(i) t").html gives the explorer the bare tokens (its script adds "(i)")', () => {
    const v = attentionPattern(samplePatterns(1, 3, 2), { labels: labelled });
    const data = JSON.parse(/<script type="application\/json">(.*?)<\/script>/s.exec(v.html)![1]);
    expect(data.tokens).toEqual(['When', ' Mary', ' drink']);
    expect(v.html).not.toMatch(/\(1\) \(1\)/);
  });
});

it('svdSpectrum(spectra) labels each spectrum on its own row, never all at the last index', () => {
  const v = svdSpectrum([
    { label: 'L0H0 QK', values: [3, 0.1, 0.1] },
    { label: 'L0H1 QK', values: [2, 0.1, 0.1] },
    { label: 'L1H0 QK', values: [1, 0.1, 0.1] },
  ]);
  const groups = Array.from(svgDoc(v.svg).querySelectorAll('g[aria-label="text"]'));
  const rows = groups.map((g) => {
    const t = /translate\(([-\d.]+),([-\d.]+)\)/.exec(g.getAttribute('transform') ?? '')!;
    const inner = /translate\(([-\d.]+),([-\d.]+)\)/.exec(g.querySelector('text')!.getAttribute('transform') ?? '')!;
    return { label: g.textContent, y: Number(t[2]) + Number(inner[2]) };
  });
  expect(rows.map((r) => r.label)).toEqual(['L0H0 QK', 'L0H1 QK', 'L1H0 QK']);
  const ys = rows.map((r) => r.y);
  expect(Math.min(ys[1] - ys[0], ys[2] - ys[1])).toBeGreaterThanOrEqual(12);
});

it('atlasHTML with number tokens draws them as text, and a non-string token is a HeadlensError, not a TypeError', () => {
  const patterns = [[samplePatterns(1, 3, 3)[0]]];
  const html = atlasHTML({ model: { name: 'm' }, scorers: [{ name: 'x', scores: [[0.5]] }], tokens: [5, 7, 9] as unknown as string[], patterns });
  expect(html).toContain('(2) 9');
  expect(() => atlasHTML({ model: { name: 'm' }, scorers: [{ name: 'x', scores: [[0.5]] }], tokens: [{}, 1, 2] as unknown as string[], patterns })).toThrow(HeadlensError);
});
