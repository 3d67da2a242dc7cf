/**
 * `headlens patch` as a user runs it (the built dist/cli/main.js in a child process): the JSON it writes
 * agrees with activationPatching called in-process, and bad input exits with code 2 and one line.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { logitDiff, normalized } from '../src/interp/metrics.js';
import { activationPatching } from '../src/interp/interventions/patching.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES, runHeadlens } from './helpers.js';

const ROOT = path.join(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const GPT2 = path.join(FIXTURES, 'gpt2');
const CLEAN = 'When M and J met, J gave it to';
const CORRUPTED = 'When M and J met, M gave it to';

const headlens = (...args: string[]) => runHeadlens(args);

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(GPT2);
});
afterAll(() => model.dispose());

describe('headlens patch', () => {
  it('patch --component head-out writes [layer, head] normalised logit differences that match activationPatching', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-patch-')), 'r.json');
    const r = await headlens('patch', '--model', GPT2, '--clean', CLEAN, '--corrupted', CORRUPTED, '--answer', 'M', '--wrong', 'J', '--component', 'head-out', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(out, 'utf8'));
    const [answer, wrong] = model.tokenizer!.encode('MJ');
    expect([json.answer, json.wrong]).toEqual([answer, wrong]);
    expect(json.result.axes).toEqual([{ name: 'layer', labels: ['0', '1'] }, { name: 'head', labels: ['H0', 'H1', 'H2', 'H3'] }]);
    const clean = model.toTokens(CLEAN);
    const corrupted = model.toTokens(CORRUPTED);
    const m = normalized(logitDiff(answer, wrong), json.clean_logit_diff, json.corrupted_logit_diff);
    const api = activationPatching(model, 'head-out', { clean, corrupted, metric: m });
    json.result.values.forEach((v: number, i: number) => expect(Math.abs(v - api.values[i])).toBeLessThan(1e-5));
    expect(api.meta.clean).toBeCloseTo(1, 5);
    expect(api.meta.corrupted).toBeCloseTo(0, 5);
  });

  it('patch --component resid-pre --by-pos with token ids writes [layer, pos]', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-patch-')), 'r.json');
    const r = await headlens('patch', '--model', GPT2, '--clean', '5,6,7,8', '--corrupted', '5,9,7,8', '--answer', '12', '--wrong', '13', '--component', 'resid-pre', '--by-pos', '--direction', 'noising', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(out, 'utf8'));
    expect(json.result.shape).toEqual([2, 4]);
    expect(json.direction).toBe('noising');
    // noising resid_pre 0 at the corrupted position gives the corrupted run: 0 after normalising
    expect(json.result.values[1]).toBeCloseTo(0, 5);
    expect(json.result.values[0]).toBeCloseTo(1, 5);
  });

  it('patch with a bad component, a multi-token answer or prompts of different lengths exits 2 with one line', async () => {
    const base = ['patch', '--model', GPT2, '--out', path.join(os.tmpdir(), 'never.json')];
    for (const args of [
      ['--clean', '1,2', '--corrupted', '1,3', '--answer', '4', '--wrong', '5', '--component', 'heads'],
      ['--clean', '1,2', '--corrupted', '1,3', '--answer', 'MJ', '--wrong', '5', '--component', 'head-out'],
      ['--clean', '1,2', '--corrupted', '1,3,4', '--answer', '4', '--wrong', '5', '--component', 'head-out'],
    ]) {
      const r = await headlens(...base, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n').length).toBe(1);
      expect(r.stderr).toMatch(/^headlens: /);
    }
  });
});
