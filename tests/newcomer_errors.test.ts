/**
 * Issue 20's raw errors, each as a call: the library names the problem the caller made, never one it made up and
 * never a TypeError from inside.
 */
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { needleTextTrials } from '../src/datasets/needle.js';
import { logitDiff } from '../src/interp/metrics.js';
import { pathPatchingSweep } from '../src/interp/interventions/path_patching.js';
import { plantedModel } from '../src/zoo/planted.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

it('pathPatchingSweep with a receiver outside the model names the receiver, not a sender the caller never gave', () => {
  const model = plantedModel(); // 2 layers
  const tokens = [[1, 2, 3, 4]];
  try {
    const call = () => pathPatchingSweep(model, { kind: 'heads', heads: [{ layer: 7, head: 0 }], inputs: ['q'] }, { clean: tokens, corrupted: tokens, metric: logitDiff(1, 2) });
    expect(call).toThrow(HeadlensError);
    expect(call).toThrow(/receiver head \{"layer":7,"head":0\} is not in the model/);
    expect(() => pathPatchingSweep(model, { kind: 'heads', heads: [], inputs: ['q'] }, { clean: tokens, corrupted: tokens, metric: logitDiff(1, 2) })).toThrow(/at least one head/);
  } finally {
    model.dispose();
  }
});

it('needleTextTrials without a tokenizer (model.tokenizer of a model with no tokenizer.json) is a HeadlensError saying so', () => {
  const call = () => needleTextTrials({ tokenizer: null as never, contextLengths: [64], depths: [50] });
  expect(call).toThrow(HeadlensError);
  expect(call).toThrow(/no tokenizer given/);
});
