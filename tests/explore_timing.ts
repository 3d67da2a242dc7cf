/**
 * How fast the explorer is in headless chromium here (wasm): page start → first attention picture, and each
 * intervention (one head ablated, activation patching over every head, logit lens + DLA), on toy-lm and on a
 * model of GPT-2 small's shape with random weights (bench's 'gpt2-small' preset, saved to a temporary folder
 * with the tiny GPT-2 fixture's byte-level tokenizer). Not a test: timings vary with the machine's load.
 *
 *   npx vite-node tests/explore_timing.ts [toy-lm] [gpt2-small]
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { PRESETS } from '../src/bench/bench.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { ZOO_DIR } from '../src/loading/load.js';
import { saveModel } from '../src/loading/save.js';
import { HFTokenizer } from '../src/loading/tokenizer.js';
import { makeConfig } from '../src/model/config.js';
import { acting, startExplorer } from './explore_page.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function gpt2SmallDir(): Promise<string> {
  await initBackend({ backend: 'wasm' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpt2-small-random-'));
  const model = HookedTransformer.random(makeConfig(PRESETS['gpt2-small'].model), { seed: 0 }) as HookedTransformer;
  model.tokenizer = HFTokenizer.fromDir(path.join(ZOO_DIR, 'tiny-gpt2-random'));
  await saveModel(model, dir);
  model.dispose();
  copyFileSync(path.join(ZOO_DIR, 'tiny-gpt2-random', 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  return dir;
}

async function measure(name: string, model: string, q: Record<string, string>, ablate: string, reps: number): Promise<void> {
  const explorer = await startExplorer(model);
  try {
    const t = Date.now();
    const { page, errors } = await explorer.open(`?${new URLSearchParams(q)}`);
    const wall = Date.now() - t;
    const state = await page.evaluate(() => document.body.dataset.state);
    if (state !== 'ready') throw new Error(`${name}: ${await page.textContent('#error')} ${errors.join('; ')}`);
    const ms = () => page.evaluate(() => Number(document.body.dataset.updateMs));
    const first = await page.evaluate(() => Number(document.body.dataset.firstPictureMs));
    const ablation: number[] = [];
    for (let i = 0; i < reps; i++) {
      await acting(page, () => page.click(`#grid input.ablate[data-head="${ablate}"]`)); // on
      ablation.push(await ms());
      await acting(page, () => page.click(`#grid input.ablate[data-head="${ablate}"]`)); // off
      ablation.push(await ms());
    }
    const patching: number[] = [];
    for (let i = 0; i < Math.max(1, Math.floor(reps / 2)); i++) {
      await acting(page, () => page.click('#patch'));
      patching.push(await ms());
    }
    const attribution: number[] = [];
    for (let i = 0; i < Math.max(1, Math.floor(reps / 2)); i++) {
      await acting(page, () => page.click('#attribute'));
      attribution.push(await ms());
    }
    const tokens = await page.$$eval('#tokens .hl-tok', (e) => e.length);
    console.log(JSON.stringify({ model: name, tokens, backend: await page.evaluate(() => document.body.dataset.backend), firstPictureMs: first, gotoToReadyMs: wall, ablateOneHeadMs: median(ablation), patchEveryHeadMs: median(patching), lensAndDlaMs: median(attribution), runs: { ablation: ablation.length, patching: patching.length, attribution: attribution.length } }));
  } finally {
    await explorer.close();
  }
}

const which = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const all = which.length ? which : ['toy-lm', 'gpt2-small'];
const IOI = { prompt: 'When Mary and John went to the store, John gave a drink to', answer: ' Mary', wrong: ' John', corrupted: 'When Mary and John went to the store, Mary gave a drink to' };
if (all.includes('toy-lm')) await measure('toy-lm', 'toy-lm', { model: 'toy-lm', ...IOI }, 'L3H0', 5);
if (all.includes('gpt2-small')) {
  const dir = await gpt2SmallDir();
  try {
    // byte-level tokenizer: 15 one-byte tokens; answer and wrong are single bytes
    await measure('gpt2-small shape (random)', dir, { model: path.basename(dir), prompt: 'abcdefgh abcdef', answer: 'g', wrong: 'x', corrupted: 'abcdefgx abcdef' }, 'L11H0', 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
