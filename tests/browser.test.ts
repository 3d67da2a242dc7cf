/**
 * The atlas in a real browser (Debian's chromium driven by playwright-core): it loads from file:// with no
 * console error and no request leaving the page, hovering a token changes which tokens are highlighted and
 * by how much (the weights must equal the model's attention), picking another head changes them again, and
 * the token lines dim when a token is hovered. A screenshot is saved to out/browser/atlas.png.
 *
 * Needs /usr/bin/chromium (.ci/run installs it: apt-get install chromium). Without it this test FAILS and
 * says so: a browser test that silently skips would pass CI while testing nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { atlasHeads, writeAtlas, type AtlasData } from '../src/viz/atlas.js';
import { attentionPatternSVG } from '../src/viz/attention_pattern.js';
import { svdSpectrum } from '../src/viz/svd_spectrum.js';
import { FIXTURES } from './helpers.js';
import { modelAtlasData } from './viz_atlas_data.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTEFACTS = path.join(import.meta.dirname, '..', 'out', 'browser');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let model: HookedTransformer;
let data: AtlasData;
let dir: string;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];
const requests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  }
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  data = modelAtlasData(model);
  dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-browser-'));
  const file = writeAtlas(path.join(dir, 'atlas.html'), data);
  context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 900 },
  });
  page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
});

afterAll(async () => {
  await context?.close();
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The explorer's per-token weights and backgrounds. */
async function tokenState(): Promise<{ weight: number; bg: string }[]> {
  return page.$$eval('.hl-attn .hl-tok', (els) => els.map((e) => ({ weight: Number(e.getAttribute('data-weight')), bg: (e as HTMLElement).style.backgroundColor })));
}

describe('atlas in chromium', () => {
  it('loads with no console error and requests nothing but itself', async () => {
    expect(await page.title()).toContain('head atlas');
    expect(consoleErrors).toEqual([]);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    expect(requests.length).toBe(1);
  });

  it('hovering a token highlights its sources with the model\'s attention weights', async () => {
    const before = await tokenState();
    expect(before.every((t) => t.weight === 0 && t.bg === '')).toBe(true);
    const heads = atlasHeads(data);
    const q = 10;
    await page.hover(`.hl-attn .hl-tok[data-pos="${q}"]`);
    const after = await tokenState();
    const expected = data.patterns![heads[0].layer][heads[0].head][q];
    after.forEach((t, k) => expect(t.weight).toBeCloseTo(k <= q ? expected[k] : 0, 3));
    expect(after.filter((t) => t.bg !== '').length).toBe(after.length);
    expect(after.slice(0, q + 1).some((t) => t.bg !== 'rgba(33, 102, 172, 0)')).toBe(true);
    expect(await page.textContent('.hl-attn .hl-info')).toContain(`(${q})`);

    // another head: the same hover now shows that head's row
    await page.selectOption('.hl-attn select.hl-head', '1');
    await page.hover(`.hl-attn .hl-tok[data-pos="${q - 1}"]`);
    await page.hover(`.hl-attn .hl-tok[data-pos="${q}"]`);
    const other = await tokenState();
    const expected2 = data.patterns![heads[1].layer][heads[1].head][q];
    other.forEach((t, k) => expect(t.weight).toBeCloseTo(k <= q ? expected2[k] : 0, 3));
    expect(other.map((t) => t.weight)).not.toEqual(after.map((t) => t.weight));
  });

  it('hovering a token in the token lines dims the lines that do not touch it', async () => {
    const opacities = () => page.$$eval('.hl-lines line[data-q]', (ls) => ls.filter((l) => (l as SVGElement).style.display !== 'none').map((l) => [l.getAttribute('data-q'), (l as SVGElement).style.opacity]));
    const before = await opacities();
    expect(before.length).toBeGreaterThan(0);
    expect(before.every(([, o]) => o === '')).toBe(true);
    await page.hover('.hl-lines text[data-side="dest"][data-pos="4"]');
    const after = await opacities();
    expect(after.filter(([q]) => q === '4').every(([, o]) => o === '')).toBe(true);
    expect(after.filter(([q]) => q !== '4').every(([, o]) => o === '0.04')).toBe(true);
  });

  it('saves a screenshot as a test artefact', async () => {
    mkdirSync(ARTEFACTS, { recursive: true });
    await page.mouse.move(0, 0);
    await page.setViewportSize({ width: 1280, height: 1240 });
    await page.evaluate(() => document.getElementById('head-scores')!.scrollIntoView());
    await page.hover('.hl-attn .hl-tok[data-pos="14"]');
    const file = path.join(ARTEFACTS, 'atlas.png');
    const png = await page.screenshot({ path: file, fullPage: false });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    await page.screenshot({ path: path.join(ARTEFACTS, 'atlas-full.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
  });
});

describe('SVG files in chromium', () => {
  it('attentionPatternSVG and svdSpectrum written to disk open as SVG documents and render in <img>', async () => {
    const files = {
      'pattern.svg': attentionPatternSVG([data.patterns![0][0]], { labels: data.tokens, headLabels: ['L0H0'] }),
      'spectrum.svg': `<?xml version="1.0" encoding="UTF-8"?>\n${svdSpectrum([{ label: 'L0H0 QK', values: [3, 2, 1] }]).svg}\n`,
    };
    const svgPage = await context.newPage();
    try {
      for (const [name, text] of Object.entries(files)) {
        const file = path.join(dir, name);
        writeFileSync(file, text);
        await svgPage.goto(pathToFileURL(file).href, { waitUntil: 'load' });
        // without xmlns chromium shows "This XML file does not appear to have any style information" and an XML tree
        expect(await svgPage.evaluate(() => document.documentElement.namespaceURI), name).toBe('http://www.w3.org/2000/svg');
      }
      writeFileSync(path.join(dir, 'img.html'), `<!DOCTYPE html><html><body>${Object.keys(files).map((f) => `<img src="${f}">`).join('')}</body></html>`);
      await svgPage.goto(pathToFileURL(path.join(dir, 'img.html')).href, { waitUntil: 'load' });
      const widths = await svgPage.$$eval('img', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
      expect(widths.every((w) => w > 0), JSON.stringify(widths)).toBe(true); // a broken image has naturalWidth 0
    } finally {
      await svgPage.close();
    }
  });
});
