/**
 * `headlens scan` as a user runs it (dist/cli/main.js in a child process) on the planted model saved to disk:
 * it finds the planted head, runs the causal check, and --resume continues a killed scan to the same result.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { saveModel } from '../src/loading/save.js';
import { loadPretrained } from '../src/loading/load.js';
import { scan } from '../src/interp/scores/scan.js';
import { scanTask } from '../src/interp/scores/tasks.js';
import { plantedModel } from '../src/zoo/planted.js';
import { runHeadlens } from './helpers.js';

const ROOT = path.join(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'headlens-scan-cli-'));
let dir: string;

const headlens = (...args: string[]) => runHeadlens(args);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const m = plantedModel();
  dir = path.join(tmp(), 'planted');
  await saveModel(m, dir);
  m.dispose();
});

describe('headlens scan', () => {
  it('scan --task induction --causal --json finds L1H0 and masking it breaks copying', async () => {
    const r = await headlens('scan', '--model', dir, '--task', 'induction', '--samples', '3', '--causal', '--k', '1', '--draws', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'planted-heads', task: 'induction', settings: { samples: 3, seed: 0 } });
    expect(out.scores).toHaveLength(2);
    expect(out.scores[0]).toHaveLength(3);
    expect(out.top[0]).toMatchObject({ layer: 1, head: 0 });
    console.log('cli causal', JSON.stringify(out.causal));
    expect(out.causal.top.heads).toEqual([{ layer: 1, head: 0 }]);
    expect(out.causal.top.main).toBeLessThan(out.causal.baseline.main - 0.5);
  });

  it('scan --resume continues a scan killed after 2 items and gives what an uninterrupted scan gives', async () => {
    const d = tmp();
    const whole = await headlens('scan', '--model', dir, '--task', 'sink', '--samples', '5', '--out', path.join(d, 'whole.json'));
    expect(whole.code, whole.stderr).toBe(0);
    // the crash: the same scan (as the command builds it) stops after 2 items, leaving its checkpoint
    const model: HookedTransformer = await loadPretrained(dir, { backend: 'wasm' });
    const { scorer } = scanTask(model, 'sink', { samples: 5, seed: 0 });
    const crashing = { ...scorer, scoreItem: (m: HookedTransformer, item: number[], i: number) => { if (i === 2) throw new Error('killed'); return scorer.scoreItem(m, item, i); } };
    const resumedOut = path.join(d, 'resumed.json');
    expect(() => scan(model, crashing, { checkpoint: `${resumedOut}.partial.json` })).toThrow('killed');
    model.dispose();
    const again = await headlens('scan', '--model', dir, '--task', 'sink', '--samples', '5', '--out', resumedOut);
    expect(again.code).toBe(2); // the checkpoint is there: a fresh scan would overwrite it
    expect(again.stderr).toMatch(/--resume/);
    const r = await headlens('scan', '--model', dir, '--task', 'sink', '--samples', '5', '--resume', '--out', resumedOut);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(resumedOut, 'utf8')).toBe(readFileSync(path.join(d, 'whole.json'), 'utf8'));
  });

  it('bad input exits 2 with one line: unknown task, no output, text tasks without a tokenizer', async () => {
    for (const [args, msg] of [
      [['--task', 'nope', '--json'], /unknown task 'nope'/],
      [['--task', 'induction'], /--json .*, --out FILE or --report FILE.html/],
      [['--task', 'temporal', '--json'], /needs a model with a tokenizer/],
      [['--task', 'ioi', '--json'], /needs a model with a tokenizer/],
    ] as const) {
      const r = await headlens('scan', '--model', dir, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe('size flags are bounded up front, and long runs report progress', () => {
  /** Exit 2 with one line on stderr that matches `msg`. */
  const refused = (r: { code: number | null; stderr: string }, msg: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  };

  it.each([
    ['scan --samples 1e9 (a documented cap)', ['scan', '--model', 'toy-lm', '--task', 'induction', '--samples', '1e9', '--json'], /--samples 1000000000 is more than 100000, the most headlens scan takes/],
    ['scan --task ioi --samples 100000 (all prompts in one batch)', ['scan', '--model', 'toy-lm', '--task', 'ioi', '--samples', '100000', '--json'], /--samples 100000 is more than \d+, the most that fits in 4\.0 GiB for --task ioi on toy-lm/],
    ['scan --causal --k 16 on 16 heads', ['scan', '--model', 'toy-lm', '--task', 'induction', '--causal', '--k', '16', '--json'], /--k 16 is more than 15, the most that fits among toy-lm's 16 heads/],
    ['scan --draws 1e6', ['scan', '--model', 'toy-lm', '--task', 'induction', '--causal', '--draws', '1000000', '--json'], /--draws 1000000 is more than 1000/],
    ['train --steps 1e9', ['train', '--recipe', 'toy-lm', '--steps', '1e9', '--out', 'unused'], /--steps 1000000000 is more than 10000000/],
    ['train --batch-size 100000', ['train', '--recipe', 'toy-lm', '--batch-size', '100000', '--out', 'unused'], /--batch-size 100000 is more than \d+, the most that fits in 4\.0 GiB for toy-lm/],
    ['bench --pos 1000000', ['bench', '--pos', '1000000'], /--pos 1000000 is more than \d+, the most that fits in 4\.0 GiB for the gpt2-small preset/],
    ['bench --batch 100000', ['bench', '--quick', '--batch', '100000'], /--batch 100000 is more than \d+, the most that fits in 4\.0 GiB for the quick preset/],
    ['bench --trials 1e9', ['bench', '--quick', '--trials', '1e9'], /--trials 1000000000 is more than 1000/],
  ])('%s exits 2 with one line naming the largest that fits', async (_, args, msg) => {
    refused(await runHeadlens(args), msg);
  });

  it('HEADLENS_MEMORY_GIB raises the memory bound', async () => {
    const small = await runHeadlens(['train', '--recipe', 'toy-lm', '--batch-size', '100000', '--out', 'unused'], { HEADLENS_MEMORY_GIB: '1' });
    const big = await runHeadlens(['train', '--recipe', 'toy-lm', '--batch-size', '100000', '--out', 'unused'], { HEADLENS_MEMORY_GIB: '64' });
    const most = (r: { stderr: string }) => Number(/is more than (\d+)/.exec(r.stderr)?.[1]);
    expect(most(big)).toBeGreaterThan(32 * most(small));
  });

  it('scan --task ioi writes plain progress lines when stderr is not a terminal', async () => {
    const r = await runHeadlens(['scan', '--model', 'toy-lm', '--task', 'ioi', '--samples', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^ioi logits: (\d+)\/\1 sender sets$/m);
    expect(r.stderr).not.toMatch(/\x1b\[/); // no terminal escapes in a log
  });
});
