/**
 * `headlens explore` in a real browser (Debian's chromium driven by playwright-core): the page bundled from the
 * library loads toy-lm from the served folder on the wasm backend, and every number it shows equals what the
 * library computes in Node: the next-token probabilities, the IOI logit difference with the model card's name
 * mover L3H0 ablated (runWithAblatedHeads), and activation patching over heads (activationPatching). Bad input
 * (a folder without config.json, an unsupported model_type, a prompt longer than n_ctx) gives its one message
 * and the page keeps working. A screenshot is saved to out/browser/explore.png.
 *
 * Needs /usr/bin/chromium; without it this test FAILS and says so.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { actName } from '../src/hooks/act_name.js';
import { activationPatching } from '../src/interp/interventions/patching.js';
import { runWithAblatedHeads } from '../src/interp/interventions/ablation.js';
import { logitDiff } from '../src/interp/metrics.js';
import { loadPretrained } from '../src/loading/load.js';
import { siteOptions } from '../src/cli/explore.js';
import { exploreSite, exportExplore } from '../src/viz/explore/site.js';
import { inProcess } from './cli_in_process.js';
import { acting, startExplorer, type Explorer } from './explore_page.js';

const PROMPT = 'When Mary and John went to the store, John gave a drink to';
const CORRUPTED = 'When Mary and John went to the store, Mary gave a drink to';
const ARTEFACTS = path.join(import.meta.dirname, '..', 'out', 'browser');

let model: HookedTransformer;
let explorer: Explorer;
let page: Page;
let errors: string[];
let requests: string[];
let ids: number[];
let mary: number;
let john: number;

/** logit(Mary) − logit(John) at the last position of a [1, pos, d_vocab] run (disposed). */
function diffOf(logits: tf.Tensor3D): number {
  const last = logits.arraySync()[0][ids.length - 1];
  logits.dispose();
  return last[mary] - last[john];
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained('toy-lm');
  ids = model.toTokens(PROMPT)[0];
  mary = model.toSingleToken(' Mary');
  john = model.toSingleToken(' John');
  explorer = await startExplorer('toy-lm');
  ({ page, errors, requests } = await explorer.open(`?model=toy-lm&prompt=${encodeURIComponent(PROMPT)}&answer=${encodeURIComponent(' Mary')}&wrong=${encodeURIComponent(' John')}&corrupted=${encodeURIComponent(CORRUPTED)}`));
});

afterAll(async () => {
  await explorer?.close();
  model?.dispose();
});

describe('headlens explore in chromium', () => {
  it('loads toy-lm from the served folder on wasm, with no console error and no request leaving 127.0.0.1', async () => {
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
    expect(await page.textContent('#backend')).toMatch(/^wasm/);
    expect(await page.textContent('#model-info')).toContain('toy-lm: 4 layers × 4 heads');
    expect(errors).toEqual([]);
    expect(requests.filter((u) => !u.startsWith(explorer.url))).toEqual([]);
    expect(requests.some((u) => u.endsWith('models/toy-lm/model.safetensors'))).toBe(true);
    expect(requests.some((u) => u.endsWith('.wasm'))).toBe(true);
    // the tokens shown are the model's own
    const shown = await page.$$eval('#tokens .hl-tok', (els) => els.length);
    expect(shown).toBe(ids.length);
    expect(await page.$$eval('#pattern svg', (s) => s.length)).toBe(1);
  });

  it('the next-token list shows " Mary" first with the probability the library computes in Node', async () => {
    const rows = await page.$$eval('#next tr[data-id]', (trs) => trs.map((t) => ({ id: Number(t.getAttribute('data-id')), token: t.getAttribute('data-token'), prob: Number(t.getAttribute('data-prob')) })));
    const probs = tf.tidy(() => tf.softmax(model.forward([ids]).slice([0, ids.length - 1, 0], [1, 1, -1]).reshape([-1])).arraySync() as number[]);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
    // toy-lm's tokenizer is word-level: the answer " Mary" is the token "Mary"
    expect(order[0]).toBe(mary);
    expect(rows[0].id).toBe(mary);
    expect(rows[0].token).toBe(model.toStrTokens([mary])[0]);
    expect(rows[0].token).toBe('Mary');
    expect(Math.abs(rows[0].prob - probs[mary])).toBeLessThan(1e-4);
    rows.forEach((r, k) => expect(Math.abs(r.prob - probs[order[k]]), `row ${k}`).toBeLessThan(1e-4));
  });

  it('ablating L3H0 (the card\'s name mover) moves the IOI logit difference by what runWithAblatedHeads gives in Node', async () => {
    const clean = diffOf(model.forward([ids]));
    const zeroed = diffOf(runWithAblatedHeads(model, [ids], [{ layer: 3, head: 0 }], { kind: 'zero' }));
    expect(Math.abs(zeroed - clean)).toBeGreaterThan(0.5); // the head matters, so the comparison below means something
    expect(await acting(page, () => page.click('#grid input.ablate[data-head="L3H0"]'))).toBe('ready');
    const box = await page.$eval('#answer-box', (b) => ({ diff: Number(b.getAttribute('data-diff')), base: Number(b.getAttribute('data-base-diff')) }));
    expect(Math.abs(box.base - clean)).toBeLessThan(1e-4);
    expect(Math.abs(box.diff - box.base - (zeroed - clean))).toBeLessThan(1e-4);
    expect(new URL(page.url()).searchParams.get('ablate')).toBe('L3H0');

    // mean-ablation: the head's z averaged over this prompt's positions, as the page says
    const ref = model.runWithCache([ids], { names: [actName('z', 3)] });
    ref.logits.dispose();
    const meaned = diffOf(runWithAblatedHeads(model, [ids], [{ layer: 3, head: 0 }], { kind: 'mean', reference: ref.cache, perPosition: false }));
    ref.cache.dispose();
    expect(await acting(page, () => page.selectOption('#kind', 'mean'))).toBe('ready');
    const diffMean = await page.$eval('#answer-box', (b) => Number(b.getAttribute('data-diff')));
    expect(Math.abs(diffMean - meaned)).toBeLessThan(1e-4);
    expect(meaned).not.toBeCloseTo(zeroed, 2);
  });

  it('the URL holds the state: a new page opened on it shows the same ablated view', async () => {
    const again = await explorer.open(new URL(page.url()).search);
    try {
      expect(await again.page.isChecked('#grid input.ablate[data-head="L3H0"]')).toBe(true);
      expect(await again.page.inputValue('#kind')).toBe('mean');
      const [a, b] = await Promise.all([page, again.page].map((p) => p.$eval('#answer-box', (x) => x.getAttribute('data-diff'))));
      expect(b).toBe(a);
    } finally {
      await again.page.close();
    }
    // back to no interventions for the next test
    expect(await acting(page, () => page.click('#clear'))).toBe('ready');
  });

  it('every recomputation leaves the page with the same number of tensors (after one warm-up round)', async () => {
    const tensors = () => page.evaluate(() => Number(document.body.dataset.tensors));
    const round = async () => {
      const seen: number[] = [];
      for (const kind of ['zero', 'mean', 'uniform']) {
        await acting(page, () => page.selectOption('#kind', kind));
        await acting(page, () => page.click('#grid input.ablate[data-head="L2H1"]'));
        seen.push(await tensors());
        await acting(page, () => page.click('#clear'));
      }
      await acting(page, () => page.click('#patch'));
      await acting(page, () => page.click('#attribute'));
      await acting(page, () => page.dispatchEvent('#prompt', 'change'));
      return [...seen, await tensors()];
    };
    // the first round may allocate what lives as long as the model (as in tests/leaks.test.ts)
    const first = await round();
    const second = await round();
    expect(second).toEqual(first);
    expect(second[0]).toBeGreaterThan(0);
    await acting(page, () => page.selectOption('#kind', 'zero'));
  });

  it('activation patching over heads in the page equals activationPatching in Node', async () => {
    const corrupted = model.toTokens(CORRUPTED)[0];
    const r = activationPatching(model, 'head-out', { clean: [ids], corrupted: [corrupted], metric: logitDiff(mary, john), byPos: false });
    expect(await acting(page, () => page.click('#patch'))).toBe('ready');
    const cells = await page.$$eval('#patching td[data-head]', (tds) => tds.map((t) => ({ head: t.getAttribute('data-head')!, value: Number(t.getAttribute('data-value')) })));
    expect(cells.length).toBe(16);
    for (const c of cells) {
      const [, l, h] = /^L(\d+)H(\d+)$/.exec(c.head)!.map(Number);
      expect(Math.abs(c.value - r.get(l, h)), c.head).toBeLessThan(1e-4);
    }
    expect(Math.max(...cells.map((c) => Math.abs(c.value)))).toBeGreaterThan(0.5);

    // heads × positions
    const rp = activationPatching(model, 'head-out', { clean: [ids], corrupted: [corrupted], metric: logitDiff(mary, john), byPos: true });
    await page.check('#by-pos');
    expect(await acting(page, () => page.click('#patch'))).toBe('ready');
    const byPos = await page.$$eval('#patching td[data-head][data-pos]', (tds) => tds.map((t) => ({ head: t.getAttribute('data-head')!, pos: Number(t.getAttribute('data-pos')), value: Number(t.getAttribute('data-value')) })));
    expect(byPos.length).toBe(16 * ids.length);
    for (const c of byPos) {
      const [, l, h] = /^L(\d+)H(\d+)$/.exec(c.head)!.map(Number);
      expect(Math.abs(c.value - rp.get(l, c.pos, h)), `${c.head} at ${c.pos}`).toBeLessThan(1e-4);
    }
    await page.uncheck('#by-pos');
  });

  it('a folder without config.json, an unsupported model_type and a prompt longer than n_ctx each give one message, and the page keeps working', async () => {
    const dir = path.join(explorer.tmp, 'bad');
    mkdirSync(path.join(dir, 'noconfig'), { recursive: true });
    writeFileSync(path.join(dir, 'noconfig', 'tokenizer.json'), '{}');
    expect(await acting(page, () => page.setInputFiles('#files', path.join(dir, 'noconfig')))).toBe('error');
    expect(await page.textContent('#error')).toContain('noconfig has no config.json');

    mkdirSync(path.join(dir, 'bert'), { recursive: true });
    writeFileSync(path.join(dir, 'bert', 'config.json'), JSON.stringify({ model_type: 't5' }));
    writeFileSync(path.join(dir, 'bert', 'model.safetensors'), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{}      ')]));
    expect(await acting(page, () => page.setInputFiles('#files', path.join(dir, 'bert')))).toBe('error');
    expect(await page.textContent('#error')).toMatch(/model_type "t5" is not supported/);
    // an encoder loads, but the page's logit comparisons are next-token ones: refused, the model before it kept
    expect(await acting(page, () => page.setInputFiles('#files', path.join(import.meta.dirname, 'fixtures', 'hf', 'bert')))).toBe('error');
    expect(await page.textContent('#error')).toMatch(/bert is an encoder \(BertForMaskedLM\); this page compares next-token logits/);

    await page.fill('#prompt', Array.from({ length: 600 }, () => 'Mary').join(' '));
    expect(await acting(page, () => page.press('#prompt', 'Enter').then(() => page.dispatchEvent('#prompt', 'change')))).toBe('error');
    expect(await page.textContent('#error')).toMatch(/longer than toy-lm's context of 512/);
    expect(await page.$$eval('#error', (e) => e.length)).toBe(1);

    // still toy-lm, still working
    await page.fill('#prompt', PROMPT);
    expect(await acting(page, () => page.dispatchEvent('#prompt', 'change'))).toBe('ready');
    expect(await page.isHidden('#error')).toBe(true);
    expect(Number(await page.getAttribute('#next tr[data-id]', 'data-id'))).toBe(mary);
    expect(errors).toEqual([]);
  });

  it("a scan's JSON (headlens scan --out) shows as a head grid with its top heads; a scan of another shape is refused", async () => {
    const file = path.join(explorer.tmp, 'prev-token.json');
    const r = await inProcess('scan', '--model', 'toy-lm', '--task', 'prev-token', '--samples', '4', '--out', file, '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(file, 'utf8')) as { scores: number[][]; top: { layer: number; head: number; score: number }[] };
    await page.setInputFiles('#scan-file', file);
    await page.waitForSelector('#scores svg', { timeout: 30_000 });
    const top = await page.$$eval('#scores button.show-scored', (b) => b.map((x) => ({ head: x.getAttribute('data-head'), value: Number(x.getAttribute('data-value')) })));
    expect(top[0].head).toBe(`L${report.top[0].layer}H${report.top[0].head}`);
    expect(top[0].value).toBeCloseTo(report.scores[report.top[0].layer][report.top[0].head], 10);
    await page.click(`#scores button.show-scored[data-head="${top[0].head}"]`);
    expect(await page.textContent('#pattern-title')).toContain(`attention of ${top[0].head}`);

    const bad = path.join(explorer.tmp, 'other.json');
    writeFileSync(bad, JSON.stringify({ model: 'other', task: 'induction', scores: [[1, 2], [3, 4]] }));
    await page.setInputFiles('#scan-file', bad);
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    expect(await page.textContent('#error')).toContain("other.json scores 2 layers × 2 heads (model other), but toy-lm has 4 × 4");
    expect(await acting(page, () => page.dispatchEvent('#prompt', 'change'))).toBe('ready');
  });

  it('logit lens and DLA of the top heads show, and a screenshot is saved', async () => {
    expect(await acting(page, () => page.click('#attribute'))).toBe('ready');
    expect(await page.$$eval('#attribution table.lens tr', (t) => t.length)).toBe(1 + 4 + 1);
    expect(await page.$$eval('#attribution table.dla td[data-value]', (t) => t.length)).toBe(6);
    mkdirSync(ARTEFACTS, { recursive: true });
    await acting(page, () => page.click('#grid input.ablate[data-head="L3H0"]'));
    await page.click('#grid button.show[data-head="L3H0"]');
    expect(await page.textContent('#pattern-title')).toContain('attention of L3H0');
    // the token lines start on the shown head's layer and head; hovering a destination keeps only its lines
    expect(await page.inputValue('#lines select.hl-layer')).toBe('3');
    const opacities = () => page.$$eval('#lines line[data-q]', (ls) => ls.filter((l) => (l as SVGElement).style.display !== 'none').map((l) => [l.getAttribute('data-q'), (l as SVGElement).style.opacity]));
    expect((await opacities()).length).toBeGreaterThan(0);
    await page.hover('#lines text[data-side="dest"][data-pos="5"]');
    const after = await opacities();
    expect(after.filter(([q]) => q !== '5').every(([, o]) => o === '0.04')).toBe(true);
    expect(after.filter(([q]) => q === '5').every(([, o]) => o === '')).toBe(true);
    await page.setViewportSize({ width: 1320, height: 900 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.hover('#tokens .hl-tok:last-child');
    expect(await page.textContent('#hover-info')).toMatch(/^L3H0 from \(\d+\) to: strongest to \(\d+\) Mary/);
    const png = await page.screenshot({ path: path.join(ARTEFACTS, 'explore.png') });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('the explorer as files', () => {
  it('the server answers only the paths of the site: no traversal, no other file, no writes', async () => {
    const get = (p: string, method = 'GET') => new Promise<number>((resolve, reject) => {
      const req = http.request(new URL(p, explorer.url), { method }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.end();
    });
    expect(await get('/')).toBe(200);
    expect(await get('/models/toy-lm/config.json')).toBe(200);
    expect(await get('/models/toy-lm/README.md')).toBe(404);
    expect(await get('/models/../package.json')).toBe(404);
    expect(await get('/%2e%2e/%2e%2e/package.json')).toBe(404);
    expect(await get('/index.html', 'POST')).toBe(405);
    expect(explorer.url.startsWith('http://127.0.0.1:')).toBe(true);
  });

  it('--export writes the same tree, and the page works from it on a plain static server', async () => {
    const out = path.join(explorer.tmp, 'site');
    const opts = { ...(await siteOptions('toy-lm')), bundleDir: path.join(explorer.tmp, 'bundle') };
    const files = exportExplore(out, opts);
    const site = exploreSite(opts);
    expect(files.length).toBe(site.size);
    for (const [p, e] of site) expect(readFileSync(path.join(out, p)).equals('text' in e ? Buffer.from(e.text) : readFileSync(e.file)), p).toBe(true);
    // any static server: a file per path, nothing else
    const server = http.createServer((req, res) => {
      const p = path.join(out, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      try {
        const body = readFileSync(p.endsWith('/') ? path.join(p, 'index.html') : p);
        res.writeHead(200, { 'content-type': p.endsWith('.js') ? 'text/javascript' : p.endsWith('.wasm') ? 'application/wasm' : p.endsWith('.json') ? 'application/json' : 'text/html' });
        res.end(body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const other = await explorer.browser.newPage();
    try {
      await other.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/?model=toy-lm`);
      await other.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 60_000 });
      expect(await other.evaluate(() => document.body.dataset.state)).toBe('ready');
      expect(Number(await other.getAttribute('#next tr[data-id]', 'data-id'))).toBe(mary);
    } finally {
      await other.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('headlens explore (the command)', () => {
  it('--export writes the site from the built bundle; a missing model or a bad port is one line and exit code 2', async () => {
    const out = path.join(explorer.tmp, 'cli-site');
    const ok = await inProcess('explore', '--model', 'toy-lm', '--export', out);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^wrote 1\d files to /);
    expect(JSON.parse(readFileSync(path.join(out, 'models.json'), 'utf8'))).toEqual({ models: ['tiny-gpt2-random', 'toy-induction-2l', 'toy-lm'], default: 'toy-lm' });
    const missing = await inProcess('explore', '--model', path.join(explorer.tmp, 'nothing-here'), '--export', out);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^headlens: no model folder at .*nothing-here/);
    const port = await inProcess('explore', '--port', 'abc');
    expect(port.code).toBe(2);
    expect(port.stderr).toContain("--port 'abc' is not a non-negative integer");
  });
});
