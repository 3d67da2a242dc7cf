import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { headAblationHooks } from '../src/interp/interventions/ablation.js';
import { factAccuracy, ioiLogitDiff, letterAccuracy } from '../src/interp/scores/task_metrics.js';
import { PLANTED, plantedIoiPrompts as ioiPrompts, plantedLetterPrompts as letterPrompts, plantedModel, plantedTemporalPairs as temporalPairs } from '../src/zoo/planted.js';

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});
afterAll(() => model.dispose());

describe('task metrics (the numbers causal checks compare)', () => {
  it('ioiLogitDiff is 9 on the planted model, as computed by hand (copy of IO 10, direct path of S 1), and falls with the name mover masked', () => {
    const prompts = ioiPrompts(4);
    expect(ioiLogitDiff(model, prompts)).toBeCloseTo(9, 3);
    expect(ioiLogitDiff(model, prompts, headAblationHooks(model, [PLANTED.induction], { kind: 'zero' }))).toBeLessThan(1);
  });

  it('letterAccuracy: the planted correct-letter head answers every question; masked, accuracy falls', () => {
    const prompts = letterPrompts(8, true);
    const intact = letterAccuracy(model, prompts);
    const masked = letterAccuracy(model, prompts, headAblationHooks(model, [PLANTED.induction], { kind: 'uniform' }));
    console.log('letterAccuracy', JSON.stringify({ intact, masked }));
    expect(intact.accuracy).toBe(1);
    expect(intact.letterRate).toBe(1);
    expect(masked.accuracy).toBeLessThan(0.5);
  });

  it('factAccuracy: temporal answers depend on the planted temporal head, controls do not', () => {
    const pairs = temporalPairs();
    const of = (k: string) => pairs.filter((p) => p.kind === k);
    const hooks = headAblationHooks(model, [PLANTED.temporal], { kind: 'zero' });
    const r = { temporal: [factAccuracy(model, of('temporal')), factAccuracy(model, of('temporal'), hooks)], control: [factAccuracy(model, of('control')), factAccuracy(model, of('control'), hooks)] };
    console.log('factAccuracy', JSON.stringify(r));
    expect(r.temporal[0]).toBe(1);
    expect(r.temporal[1]).toBeLessThan(0.5);
    expect(r.control[1]).toBe(r.control[0]);
  });

  it('each metric refuses an empty prompt list and leaves tf.memory().numTensors unchanged', () => {
    expect(() => ioiLogitDiff(model, [])).toThrow(/no prompts/);
    const calls = [() => ioiLogitDiff(model, ioiPrompts(1)), () => letterAccuracy(model, letterPrompts(1, false)), () => factAccuracy(model, temporalPairs().slice(0, 2))];
    for (const call of calls) {
      call();
      const before = tf.memory().numTensors;
      call();
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
