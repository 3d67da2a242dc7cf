/**
 * Every view: a snapshot of its SVG (numbers rounded, generated ids renumbered; a failing run writes
 * `<name>-changed.svg` beside the committed one), and checks of what the picture must show that the
 * snapshot alone would not catch (which heads are marked, which cells exist, which colour a sign gets).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DOMParser, parseHTML } from 'linkedom';
import { describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import {
  atlasHTML,
  attentionPattern,
  attentionPatternSVG,
  circuitGraph,
  headGrid,
  logitLensTable,
  patchingByHead,
  patchingByPosition,
  show,
  svdSpectrum,
  tokenLines,
  rankedHeads,
  topTokenTable,
  tokenScores,
  layerAttention,
  headEmbeddingPlot,
  type View,
} from '../src/viz/index.js';
import { CIRCUIT, LOGIT_LENS, PATCH_HEAD, PATCH_POS, SCORES, SPECTRA, TOKENS, TOP_TOKENS, samplePatterns } from './viz_data.js';

const SNAPSHOTS = path.join(import.meta.dirname, 'snapshots');

/** Rounds decimals to 2 places and renumbers Plot's generated ids, so snapshots only see real changes. */
export function normaliseSVG(svg: string): string {
  const ids = new Map<string, string>();
  const renumber = (prefix: string) => (m: string) => {
    if (!ids.has(m)) ids.set(m, `${prefix}${[...ids.keys()].filter((k) => k.startsWith(prefix)).length + 1}`);
    return ids.get(m)!;
  };
  return (
    svg
      .replace(/plot-(clip|pattern|marker)-\d+/g, (m) => renumber(`plot-${m.split('-')[1]}-`)(m))
      .replace(/\bplot-[0-9a-f]{6}\b/g, renumber('plot-'))
      .replace(/-?\d+\.\d+(e[-+]?\d+)?/g, (m) => {
        const r = Math.round(Number(m) * 100) / 100;
        return String(Object.is(r, -0) ? 0 : r);
      })
      // one element per line: diffs of a changed snapshot stay readable
      .replace(/></g, '>\n<') + '\n'
  );
}

function snapshot(name: string, svg: string): void {
  const file = path.join(SNAPSHOTS, `${name}.svg`);
  const changed = path.join(SNAPSHOTS, `${name}-changed.svg`);
  const actual = normaliseSVG(svg);
  if (!existsSync(file)) {
    // a new view: record it, but never in CI, where a missing snapshot means one was not committed
    writeFileSync(file, actual);
    if (process.env.CI) throw new Error(`snapshot ${name}.svg is missing (written now; commit it)`);
    return;
  }
  const expected = readFileSync(file, 'utf8');
  if (actual !== expected) {
    writeFileSync(changed, actual);
    throw new Error(`snapshot ${name}.svg changed; see ${changed} (replace the committed file if the change is wanted)`);
  }
  if (existsSync(changed)) rmSync(changed);
}

/** Parses an SVG string into an element to query. */
function svgDoc(svg: string): Element {
  const { document: doc } = parseHTML(`<!DOCTYPE html><html><body>${svg}</body></html>`);
  return doc.querySelector('svg') as unknown as Element;
}

/** The chart of a stacked view (legend above chart): the last nested SVG, or the SVG itself. */
function chartOf(svg: string): Element {
  const root = svgDoc(svg);
  const nested = Array.from(root.children).filter((c) => c.tagName.toLowerCase() === 'svg');
  return nested.length ? nested[nested.length - 1] : root;
}

/** A view's page loads nothing from anywhere: no src/href to another origin, no @import, no fetch. */
function expectSelfContained(v: View): void {
  expect(v.html.startsWith('<!DOCTYPE html>')).toBe(true);
  const withoutNamespaces = v.html.replace(/xmlns(:\w+)?="[^"]*"/g, '');
  expect(withoutNamespaces).not.toMatch(/https?:\/\//);
  expect(withoutNamespaces).not.toMatch(/\bsrc=|@import|fetch\(|<link\b/);
}

function rgb(fill: string): [number, number, number] {
  const m = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(fill) ?? /^#(..)(..)(..)$/.exec(fill);
  if (!m) throw new Error(`not a colour: ${fill}`);
  return fill.startsWith('#') ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [Number(m[1]), Number(m[2]), Number(m[3])];
}

describe('attentionPattern', () => {
  const patterns = samplePatterns(2, 6, 7);
  const v = attentionPattern(patterns, { labels: TOKENS.slice(0, 6), title: 'two heads' });

  it('attentionPattern(patterns) matches its snapshot', () => snapshot('attention-pattern', v.svg));

  it('attentionPattern(patterns) draws one cell per unmasked (query, key) pair of each head', () => {
    const cells = svgDoc(v.svg).querySelectorAll('g[aria-label="cell"] rect');
    expect(cells.length).toBe(2 * ((6 * 7) / 2));
  });

  it('attentionPattern(patterns).html embeds the weights and the explorer, self-contained', () => {
    expectSelfContained(v);
    const json = /<script type="application\/json">(.*?)<\/script>/s.exec(v.html)![1];
    const data = JSON.parse(json) as { tokens: string[]; heads: { label: string; pattern: number[][] }[] };
    expect(data.tokens).toEqual(TOKENS.slice(0, 6));
    expect(data.heads[0].pattern[3][2]).toBeCloseTo(patterns[0][3][2], 4);
    expect(v.html).toContain('class="hl-tok" data-pos="5"');
  });
});

it('attentionPattern with ragged rows or the wrong number of labels is a HeadlensError', () => {
  const p = samplePatterns(2, 4, 3);
  expect(() => attentionPattern([p[0], p[1].slice(1)])).toThrow(/head 1 is not 4 × 4/);
  expect(() => attentionPattern(p, { labels: ['a', 'b'] })).toThrow(HeadlensError);
  expect(() => attentionPattern(p, { headLabels: ['only one'] })).toThrow(HeadlensError);
  expect(() => attentionPattern([])).toThrow(HeadlensError);
});

describe('headGrid', () => {
  const v = headGrid(SCORES, { title: 'induction', scoreLabel: 'induction score', top: 2 });

  it('headGrid(scores) matches its snapshot', () => snapshot('head-grid', v.svg));

  it('rankedHeads(scores, 3) ranks by score, and by |score| when asked', () => {
    expect(rankedHeads(SCORES, 3).map((h) => h.label)).toEqual(['L1H2', 'L0H1', 'L1H0']);
    expect(rankedHeads([[0.2, -0.9, 0.5]], 2, true).map((h) => h.label)).toEqual(['L0H1', 'L0H2']);
    expect(rankedHeads([[NaN, 0.1]], 2).map((h) => h.label)).toEqual(['L0H1']);
    // nothing above 0 is nothing to ring
    expect(rankedHeads([[0, 0], [0, -0.2]], 3)).toEqual([]);
    expect(rankedHeads([[0, 0], [0, -0.2]], 3, true).map((h) => h.label)).toEqual(['L1H1']);
  });

  it('headGrid(scores, {top: 2}) rings and names exactly the two best heads', () => {
    const svg = chartOf(v.svg);
    const labels = Array.from(svg.querySelectorAll('g[aria-label="text"] text')).map((t) => t.textContent);
    expect(labels).toEqual(['L1H2', 'L0H1']);
    const cells = svg.querySelectorAll('g[aria-label="cell"]');
    expect(cells[0].querySelectorAll('rect').length).toBe(8);
    expect(cells[1].querySelectorAll('rect').length).toBe(2);
  });
});

it('headGrid(table, {rowLabels, columnLabels}) labels rows, columns and top cells with them', () => {
  const v = headGrid([[0.1, 0.7], [0.9, 0.2]], { rowLabels: ['L1H0', 'L1H1'], columnLabels: ['L0H0', 'L0H1'], top: 1 });
  const svg = chartOf(v.svg);
  expect(Array.from(svg.querySelectorAll('g[aria-label="text"] text')).map((t) => t.textContent)).toEqual(['L1H1·L0H0']);
  const ticks = Array.from(svg.querySelectorAll('g[aria-label^="y-axis tick label"] text')).map((t) => t.textContent);
  expect(ticks).toEqual(['L1H0', 'L1H1']);
});

describe('tokenLines', () => {
  const patterns = [samplePatterns(3, 5, 11), samplePatterns(3, 5, 12)];
  const v = tokenLines(patterns, { tokens: TOKENS.slice(0, 5), layer: 1, heads: [0, 2], minWeight: 0.1 });

  it('tokenLines(patterns, {layer: 1, heads: [0, 2]}) matches its snapshot', () => snapshot('token-lines', v.svg));

  it('tokenLines draws one line per weight ≥ minWeight of the chosen heads, opacity = weight', () => {
    const lines = Array.from(svgDoc(v.svg).querySelectorAll('line'));
    const expected: number[] = [];
    for (const h of [0, 2]) patterns[1][h].forEach((row, q) => row.forEach((w, k) => k <= q && w >= 0.1 && expected.push(w)));
    expect(lines.length).toBe(expected.length);
    expect(lines.every((l) => l.getAttribute('data-layer') === '1' && ['0', '2'].includes(l.getAttribute('data-head')!))).toBe(true);
    const l = lines.find((x) => x.getAttribute('data-head') === '2' && x.getAttribute('data-q') === '4' && x.getAttribute('data-k') === '1');
    if (patterns[1][2][4][1] >= 0.1) expect(Number(l!.getAttribute('stroke-opacity'))).toBeCloseTo(patterns[1][2][4][1], 3);
  });

  it('tokenLines(patterns).html carries every layer and a checkbox per head', () => {
    expectSelfContained(v);
    expect(v.html).toMatch(/data-layer="0"/);
    expect(v.html.match(/class="hl-headbox"/g)!.length).toBe(3);
  });

  it('tokenLines(patterns, {layer: 5}) is a HeadlensError', () => {
    expect(() => tokenLines(patterns, { layer: 5 })).toThrow(HeadlensError);
    expect(() => tokenLines(patterns, { heads: [3] })).toThrow(HeadlensError);
  });
});

describe('patching results', () => {
  const byPos = patchingByPosition(PATCH_POS, TOKENS.slice(0, 5), { metricLabel: 'logit diff recovered' });
  const byHead = patchingByHead(PATCH_HEAD);

  it('patchingByPosition(values, tokens) matches its snapshot', () => snapshot('patching-position', byPos.svg));
  it('patchingByHead(values) matches its snapshot', () => snapshot('patching-head', byHead.svg));

  it('patchingByHead colours positive red, negative blue, zero near white, symmetric about 0', () => {
    const cells = Array.from(chartOf(byHead.svg).querySelectorAll('g[aria-label="cell"] rect'));
    expect(cells.length).toBe(8);
    const fill = (i: number) => rgb(cells[i].getAttribute('fill')!);
    const [r1, , b1] = fill(6); // L1H2 +0.44
    const [r2, , b2] = fill(4); // L1H0 −0.61
    const [r3, g3, b3] = fill(7); // L1H3 0
    expect(r1).toBeGreaterThan(b1 + 50);
    expect(b2).toBeGreaterThan(r2 + 50);
    expect(Math.min(r3, g3, b3)).toBeGreaterThan(230);
  });
});

describe('circuitGraph', () => {
  const v = circuitGraph(CIRCUIT, { title: 'toy circuit' });

  it('circuitGraph(edges) matches its snapshot', () => snapshot('circuit-graph', v.svg));

  it('circuitGraph(edges) puts nodes in layer order and widens edges with |score|', () => {
    const svg = svgDoc(v.svg);
    const y = (n: string) => Number(svg.querySelector(`g[data-node="${n}"] text`)!.getAttribute('y'));
    expect(y('embed')).toBeLessThan(y('L0H1'));
    expect(y('L0H1')).toBeLessThan(y('MLP0'));
    expect(y('MLP0')).toBeLessThan(y('L1H2'));
    expect(y('L1H0')).toBe(y('L1H2'));
    expect(y('L1H2')).toBeLessThan(y('logits'));
    const width = (t: string) => Number(Array.from(svg.querySelectorAll('path')).find((p) => p.querySelector('title')!.textContent!.startsWith(t))!.getAttribute('stroke-width'));
    expect(width('L1H2 → logits')).toBe(6);
    expect(width('L0H1 → L1H2')).toBeGreaterThan(width('embed → L0H1'));
    expect(width('L1H0 → logits')).toBeGreaterThan(width('embed → L1H0'));
  });

  it('circuitGraph takes edge-attribution edges {from, to}, folding .q/.k/.v into the head', () => {
    const eap = circuitGraph([
      { from: 'embed', to: 'L0H1.q', score: 0.1 },
      { from: 'embed', to: 'L0H1.k', score: -0.3 },
      { from: 'L0H1', to: 'L1H0.v', score: 0.5 },
      { from: 'L0H1', to: 'L0.mlp', score: 0.2 },
      { from: 'L0.mlp', to: 'logits', score: 0.4 },
      { from: 'L1H0', to: 'logits', score: 0.05 },
    ]);
    const svg = svgDoc(eap.svg);
    const nodes = Array.from(svg.querySelectorAll('g[data-node]')).map((g) => g.getAttribute('data-node'));
    expect(nodes.sort()).toEqual(['L0.mlp', 'L0H1', 'L1H0', 'embed', 'logits']);
    const titles = Array.from(svg.querySelectorAll('path title')).map((t) => t.textContent);
    expect(titles).toContain('embed → L0H1: -0.3 (q 0.1, k -0.3)');
    expect(titles).toHaveLength(5);
    const y = (n: string) => Number(svg.querySelector(`g[data-node="${n}"] text`)!.getAttribute('y'));
    expect(y('L0H1')).toBeLessThan(y('L0.mlp'));
    expect(y('L0.mlp')).toBeLessThan(y('L1H0'));
  });

  it('circuitGraph rejects edges going up the layers and unnamed nodes', () => {
    expect(() => circuitGraph([{ source: 'L1H0', target: 'L0H1', score: 1 }])).toThrow(HeadlensError);
    expect(() => circuitGraph([{ source: 'embed', target: 'mystery', score: 1 }])).toThrow(/layer of mystery/);
    expect(() => circuitGraph([])).toThrow(HeadlensError);
  });
});

describe('svdSpectrum and topTokenTable', () => {
  it('svdSpectrum(spectra) matches its snapshot and draws every singular value', () => {
    const v = svdSpectrum(SPECTRA, { title: 'L1H2' });
    snapshot('svd-spectrum', v.svg);
    expect(svgDoc(v.svg).querySelectorAll('g[aria-label="dot"] circle').length).toBe(8);
  });

  it('topTokenTable(rows) matches its snapshot and escapes tokens', () => {
    const v = topTokenTable(TOP_TOKENS, { title: 'OV directions' });
    snapshot('top-tokens', v.svg);
    expect(v.svg).toContain('&lt;tag&gt;');
    expect(v.html).toContain('&quot;&lt;tag&gt;&quot;');
  });
});

describe('logitLensTable', () => {
  const v = logitLensTable(LOGIT_LENS);
  it('logitLensTable(data) matches its snapshot', () => snapshot('logit-lens', v.svg));
  it('logitLensTable(data) prints each top token in its cell', () => {
    const texts = Array.from(chartOf(v.svg).querySelectorAll('g[aria-label="text"] text')).map((t) => t.textContent);
    expect(texts).toHaveLength(12);
    expect(texts[11]).toBe(' went');
  });
  it('logitLensTable with a missing row is a HeadlensError', () => {
    expect(() => logitLensTable({ ...LOGIT_LENS, top: LOGIT_LENS.top.slice(1) })).toThrow(HeadlensError);
  });
});

describe('atlas and show', () => {
  it('atlasHTML(data) holds every section and no external resource', () => {
    const html = atlasHTML({
      model: { name: 'toy', n_layers: 2, n_heads: 4 },
      scorers: [{ name: 'induction', scores: SCORES }, { name: 'ablation effect', scores: PATCH_HEAD, diverging: true }],
      tokens: TOKENS.slice(0, 6),
      patterns: [samplePatterns(4, 6, 1), samplePatterns(4, 6, 2)],
      spectra: [{ title: 'L1H2', spectra: SPECTRA }],
      topTokens: [{ title: 'OV', rows: TOP_TOKENS }],
      circuit: { edges: CIRCUIT },
      logitLens: LOGIT_LENS,
    });
    expectSelfContained({ kind: '', title: '', svg: '', fragment: '', html });
    for (const id of ['model-card', 'head-scores', 'attention', 'QK-OV', 'circuit', 'logit-lens']) expect(html).toContain(`id="${id}"`);
    // the attention explorer shows the union of each scorer's top 3: L1H2 L0H1 L1H0 (induction), L1H0 L1H2 L0H1 (|ablation|)
    const json = /<script type="application\/json">(.*?)<\/script>/s.exec(html)![1];
    expect((JSON.parse(json) as { heads: { label: string }[] }).heads.map((h) => h.label)).toEqual([
      'L1H2 (induction, ablation effect)',
      'L0H1 (induction, ablation effect)',
      'L1H0 (induction, ablation effect)',
    ]);
  });

  it('atlasHTML with patterns but no scorer leaves the attention section out', () => {
    const html = atlasHTML({ model: { name: 'toy' }, scorers: [], tokens: TOKENS.slice(0, 3), patterns: [samplePatterns(1, 3, 1)] });
    expect(html).not.toContain('id="attention"');
    expect(html).not.toContain('class="hl-attn"');
  });

  it('atlasHTML without a model name is a HeadlensError', () => {
    expect(() => atlasHTML({ model: {}, scorers: [] })).toThrow(HeadlensError);
  });

  it('every SVG written to disk is a standalone SVG: show(view, {as: svg}) of each view and attentionPatternSVG parse as image/svg+xml with the SVG namespace on the root', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-svg-'));
    try {
      const views: View[] = [
        attentionPattern(samplePatterns(2, 6, 7), { labels: TOKENS.slice(0, 6) }),
        svdSpectrum(SPECTRA),
        headGrid(SCORES),
        tokenLines([samplePatterns(2, 5, 3), samplePatterns(2, 5, 4)], { tokens: TOKENS.slice(0, 5) }),
        patchingByHead(PATCH_HEAD),
        patchingByPosition(PATCH_POS, TOKENS.slice(0, PATCH_POS[0].length)),
        circuitGraph(CIRCUIT),
        topTokenTable(TOP_TOKENS),
        logitLensTable(LOGIT_LENS),
      ];
      const files = views.map((v, i) => show(v, { file: path.join(dir, `${i}.svg`), as: 'svg' }).file!);
      files.push(path.join(dir, 'pattern.svg'));
      writeFileSync(files.at(-1)!, attentionPatternSVG(samplePatterns(2, 4, 1))); // as headlens demo writes attention-layer{l}.svg
      for (const file of files) {
        const text = readFileSync(file, 'utf8');
        const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
        const root = doc.documentElement as unknown as Element;
        expect(root.tagName, file).toBe('svg');
        expect(root.getAttribute('xmlns'), file).toBe('http://www.w3.org/2000/svg');
        expect(/^(<\?xml[^>]*>\s*)?<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(text), file).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('show(view) outside a notebook writes the page (or the SVG) to a file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-show-'));
    try {
      const v = headGrid(SCORES);
      const r = show(v, { file: path.join(dir, 'grid.html') });
      expect(r).toEqual({ where: 'file', file: path.join(dir, 'grid.html') });
      expect(readFileSync(r.file!, 'utf8')).toBe(v.html);
      const s = show(v, { file: path.join(dir, 'sub', 'grid.svg'), as: 'svg' });
      expect(readFileSync(s.file!, 'utf8')).toContain(v.svg);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tokenScores', () => {
  const tokens = ['<|endoftext|>', 'When', 'Mary', 'and', 'John'];
  const columns = [
    { name: 'rollout', values: [0.4, 0.1, 0.2, 0.1, 0.2] },
    { name: 'flow', values: [0.3, 0.15, 0.25, 0.1, 0.2] },
  ];
  const v = tokenScores(tokens, columns, { title: 'rollout and flow', outputPos: 4 });

  it('tokenScores(tokens, columns) matches its snapshot', () => snapshot('token-scores', v.svg));

  it("tokenScores draws one bar per token and column, each column's largest full width, and marks the output row", () => {
    const bars = Array.from(svgDoc(v.svg).querySelectorAll('rect[aria-label="bar"]')).map((r) => Number(r.getAttribute('width')));
    expect(bars).toHaveLength(10);
    expect(bars[0]).toBeCloseTo(110, 6); // rollout's 0.4 (row 0, column 0)
    expect(bars[1]).toBeCloseTo(110, 6); // flow's 0.3
    expect(bars[2]).toBeCloseTo(110 / 4, 6); // rollout's 0.1
    expect(v.svg).toContain('→ 4 John');
    expect(() => tokenScores(tokens, [{ name: 'x', values: [1] }])).toThrow(HeadlensError);
    expect(() => tokenScores(tokens, [])).toThrow(HeadlensError);
  });

  it('atlasHTML with tokenFlow shows rollout beside flow and the ρ lines', () => {
    const html = atlasHTML({ model: { name: 'toy' }, scorers: [], tokenFlow: { tokens, outputPos: 4, columns, rho: ['flow vs input gradient: ρ = 0.50'] } });
    expect(html).toContain('id="attention-flow"');
    expect(html).toContain('flow vs input gradient: ρ = 0.50');
    expect(html).toContain('aria-label="rollout and flow"');
  });
});

describe('layerAttention and headEmbeddingPlot (Clark et al. 2019, Figures 2 and 6)', () => {
  const cls = [[0.1, 0.3], [0.6, 0.8], [0.2, 0.4]];
  const punct = [[0.05, 0.1], [0.02, 0.04], [0.3, 0.1]];
  const v = layerAttention([{ label: '[CLS]', scores: cls }, { label: '. or ,', scores: punct }], { title: 'attention to special tokens' });

  it('layerAttention(series) matches its snapshot', () => snapshot('layer-attention', v.svg));

  it('layerAttention draws a dot per head and series and a line through each layer mean', () => {
    const doc = svgDoc(v.svg);
    expect(doc.querySelectorAll('g[aria-label="dot"] circle').length).toBe(12);
    const titles = Array.from(doc.querySelectorAll('g[aria-label="dot"] title')).map((t) => t.textContent);
    expect(titles).toContain('L1H1 → [CLS]: 0.8');
    expect(doc.querySelectorAll('g[aria-label="line"] path').length).toBe(2);
    expect(svgDoc(layerAttention([{ label: 'prev', scores: cls }], { means: false }).svg).querySelectorAll('g[aria-label="line"] path').length).toBe(0);
    expect(() => layerAttention([])).toThrow(HeadlensError);
  });

  const points = [
    { layer: 0, head: 0, label: 'L0H0', x: -1, y: 0 },
    { layer: 0, head: 1, label: 'L0H1', x: -0.8, y: 0.2 },
    { layer: 1, head: 0, label: 'L1H0', x: 1, y: 0.1 },
    { layer: 1, head: 1, label: 'L1H1', x: 0.9, y: -0.3 },
  ];
  const e = headEmbeddingPlot(points, { title: 'heads by JS distance' });

  it('headEmbeddingPlot(points) matches its snapshot', () => snapshot('head-embedding', e.svg));

  it('headEmbeddingPlot colours heads by layer and labels each', () => {
    const doc = svgDoc(e.svg);
    const dots = Array.from(doc.querySelectorAll('g[aria-label="dot"] circle')).map((c) => c.getAttribute('fill'));
    expect(dots).toHaveLength(4);
    expect(dots[0]).toBe(dots[1]);
    expect(dots[0]).not.toBe(dots[2]);
    expect(e.svg).toContain('L1H1');
    expect(e.svg).toContain('layer 1');
  });

  it("atlasHTML with lookAt shows the panels and the embedding under 'what heads look at'", () => {
    const html = atlasHTML({ model: { name: 'toy' }, scorers: [], lookAt: { note: 'planted', panels: [{ title: 'attention to special tokens', series: [{ label: '[CLS]', scores: cls }] }], embedding: { points, note: 'classical MDS' } } });
    expect(html).toContain('id="what-heads-look-at"');
    expect(html).toContain('aria-label="attention to special tokens"');
    expect(html).toContain('aria-label="heads embedded by attention distance"');
  });
});
