/**
 * The patching engine on a padded batch (stacked_runs.ts with an attention mask): activation patching of prompts of
 * unequal length, left-padded into one batch, gives the mean over prompts of what each prompt gives patched alone;
 * a metric that would read padding is refused; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { activationPatching } from '../src/interp/interventions/patching.js';
import { pathPatchingSweep } from '../src/interp/interventions/path_patching.js';
import { logitDiff } from '../src/interp/metrics.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

// clean and corrupted differ in one token; the prompts differ in length
const CLEAN = [
  [3, 17, 42, 5, 99, 7, 23],
  [61, 8, 150, 4],
  [9, 33, 2, 71, 18, 120, 44, 6, 81, 15],
];
const CORRUPTED = [
  [3, 17, 42, 11, 99, 7, 23],
  [61, 90, 150, 4],
  [9, 33, 2, 71, 18, 120, 200, 6, 81, 15],
];
const metric = logitDiff(12, 30);
const models = new Map<string, HookedTransformer>();

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of ['gpt2', 'llama-gqa']) models.set(name, await loadPretrained(path.join(FIXTURES, name)));
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

function leftPad(rows: number[][]): { tokens: number[][]; attentionMask: number[][] } {
  const len = Math.max(...rows.map((r) => r.length));
  return {
    tokens: rows.map((r) => [...new Array<number>(len - r.length).fill(1), ...r]),
    attentionMask: rows.map((r) => [...new Array<number>(len - r.length).fill(0), ...new Array<number>(r.length).fill(1)]),
  };
}

describe.each(['gpt2', 'llama-gqa'])('%s', (name) => {
  it('activationPatching(head-out, padded batch with its mask) = the mean over prompts of each patched alone, within 1e-4', () => {
    const model = models.get(name)!;
    const clean = leftPad(CLEAN);
    const corrupted = leftPad(CORRUPTED);
    expect(clean.attentionMask).toEqual(corrupted.attentionMask);
    const padded = activationPatching(model, 'head-out', { clean: clean.tokens, corrupted: corrupted.tokens, attentionMask: clean.attentionMask, metric });
    const alone = CLEAN.map((c, b) => activationPatching(model, 'head-out', { clean: [c], corrupted: [CORRUPTED[b]], metric }));
    let worst = 0;
    let spread = 0;
    padded.values.forEach((v, i) => {
      const mean = alone.reduce((a, r) => a + r.values[i], 0) / alone.length;
      worst = Math.max(worst, Math.abs(v - mean));
      spread = Math.max(spread, Math.abs(alone[0].values[i] - alone[1].values[i]));
    });
    expect(worst).toBeLessThan(1e-4);
    expect(spread).toBeGreaterThan(1e-2); // the prompts differ, so the mean is a real check of each row
    // without the mask the padding is attended to and the numbers move
    const unmasked = activationPatching(model, 'head-out', { clean: clean.tokens, corrupted: corrupted.tokens, metric });
    expect(Math.max(...unmasked.values.map((v, i) => Math.abs(v - padded.values[i])))).toBeGreaterThan(1e-3);
  });
});

it('pathPatchingSweep(padded batch with its mask), to the logits and to a head\'s queries, = the mean over prompts of each alone', () => {
  const model = models.get('gpt2')!; // 2 layers × 4 heads
  const clean = leftPad(CLEAN);
  const corrupted = leftPad(CORRUPTED);
  for (const receiver of [{ kind: 'logits' as const }, { kind: 'heads' as const, heads: [{ layer: 1, head: 2 }], inputs: ['q' as const] }]) {
    const padded = pathPatchingSweep(model, receiver, { clean: clean.tokens, corrupted: corrupted.tokens, attentionMask: clean.attentionMask, metric });
    const alone = CLEAN.map((c, b) => pathPatchingSweep(model, receiver, { clean: [c], corrupted: [CORRUPTED[b]], metric }));
    const worst = Math.max(...padded.values.map((v, i) => Math.abs(v - alone.reduce((a, r) => a + r.values[i], 0) / alone.length)));
    expect(worst, receiver.kind).toBeLessThan(1e-4);
    expect(padded.meta.clean).toBeCloseTo(alone.reduce((a, r) => a + (r.meta.clean as number), 0) / alone.length, 4);
  }
});

it('a metric that reads padding (right padding, last position) is refused, naming the prompt', () => {
  const model = models.get('gpt2')!;
  const len = Math.max(...CLEAN.map((r) => r.length));
  const right = (rows: number[][]) => rows.map((r) => [...r, ...new Array<number>(len - r.length).fill(1)]);
  const attentionMask = CLEAN.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(len - r.length).fill(0)]);
  const call = () => activationPatching(model, 'head-out', { clean: right(CLEAN), corrupted: right(CORRUPTED), attentionMask, metric });
  expect(call).toThrow(HeadlensError);
  expect(call).toThrow(/reads position 9, which is padding in prompt 0.*pad on the left/);
});

it('activationPatching with a mask frees every tensor it makes', () => {
  const model = models.get('gpt2')!;
  const clean = leftPad(CLEAN);
  const corrupted = leftPad(CORRUPTED);
  const run = () => activationPatching(model, 'resid-pre', { clean: clean.tokens, corrupted: corrupted.tokens, attentionMask: clean.attentionMask, metric });
  run();
  const before = tf.memory().numTensors;
  run();
  expect(tf.memory().numTensors).toBe(before);
});
