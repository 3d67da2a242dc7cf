/**
 * The explorer in headless chromium, for tests/explore.test.ts and tests/explore_timing.ts: builds the bundle
 * into a temporary folder (never a stale dist/), serves it with the shipped models (and `extra` folders) on
 * 127.0.0.1, and opens a page on it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { siteOptions } from '../src/cli/explore.js';
import { bundleExplorer } from '../src/viz/explore/bundle.js';
import { serveExplore } from '../src/viz/explore/site.js';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Explorer {
  url: string;
  browser: Browser;
  tmp: string;
  open(query: string): Promise<{ page: Page; errors: string[]; requests: string[] }>;
  close(): Promise<void>;
}

export async function startExplorer(model = 'toy-lm'): Promise<Explorer> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'headlens-explore-'));
  const bundleDir = await bundleExplorer(path.join(tmp, 'bundle'));
  const server = await serveExplore({ ...(await siteOptions(model)), bundleDir, port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  return {
    url: server.url,
    browser,
    tmp,
    async open(query: string) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`${server.url}${query}`);
      await settled(page);
      return { page, errors, requests };
    },
    async close() {
      await browser.close();
      await server.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Waits until the page has finished what it was doing (ready or error). */
export async function settled(page: Page, timeout = 120_000): Promise<string> {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout });
  return page.evaluate(() => document.body.dataset.state!);
}

/** Does `act`, then waits for the page to go busy and settle again. */
export async function acting(page: Page, act: () => Promise<unknown>): Promise<string> {
  await page.evaluate(() => { document.body.dataset.state = 'acting'; });
  await act();
  return settled(page);
}
