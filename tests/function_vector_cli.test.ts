/**
 * `headlens function-vector` in process on toy-lm (small prompt counts): its JSON equals functionVectors run by
 * the library on the same task, template and seed; a word that is not one token and an unknown task are clear errors.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { ICL_TASKS, iclTaskTokens } from '../src/datasets/icl_tasks.js';
import { functionVectors } from '../src/interp/interventions/function_vectors.js';
import { loadPretrained } from '../src/loading/load.js';
import { inProcess } from './cli_in_process.js';

beforeAll(async () => {
  process.env.HEADLENS_BACKEND = 'wasm';
  await initBackend({ backend: 'wasm' });
});

describe('headlens function-vector', () => {
  it('--json reports what functionVectors computes on the same prompts', async () => {
    const args = ['--shots', '3', '--mean-prompts', '8', '--effect-prompts', '4', '--eval-prompts', '6', '--top', '2', '--sep', ':', '--end', ',', '--seed', '4'];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-fv-'));
    const report = path.join(dir, 'fv.html');
    const r = await inProcess('function-vector', '--model', 'toy-lm', '--task', 'letter-successor', ...args, '--json', '--report', report);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { effects: number[][]; iclAccuracy: number; top: { head: string }[]; byLayer: { accuracy: { with: number } }[]; layer: number };
    const model = await loadPretrained('toy-lm');
    const tok = model.tokenizer!;
    const lib = functionVectors(model, iclTaskTokens(ICL_TASKS['letter-successor'], tok), {
      shots: 3, meanPrompts: 8, effectPrompts: 4, evalPrompts: 6, topHeads: 2, seed: 4,
      template: { bos: model.bosToken()!, sep: tok.encode(':'), end: tok.encode(',') },
    });
    expect(got.top.map((h) => h.head)).toEqual(lib.top.map((h) => h.label));
    got.effects.forEach((row, l) => row.forEach((x, h) => expect(x).toBeCloseTo(lib.effects[l][h], 6)));
    expect(got.iclAccuracy).toBe(lib.iclAccuracy);
    expect(got.layer).toBe(1);
    expect(got.byLayer).toHaveLength(4);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('function vectors: toy-lm, task letter-successor');
    expect(html).toContain('indirect effect');
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
  });

  it('bad input: an unknown task; a word that is several tokens', async () => {
    const r = await inProcess('function-vector', '--model', 'toy-lm', '--task', 'antonym');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown --task 'antonym'/);
    const model = await loadPretrained('toy-lm');
    expect(() => iclTaskTokens([['dog', 'smoked paprika'], ['cat', 'dog']], model.tokenizer!)).toThrow(HeadlensError);
    model.dispose();
  });
});
