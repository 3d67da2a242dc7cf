/**
 * The causal checks beside the scores (maskHeadsCheck, with src/interp/ablation.ts): on the planted model,
 * masking the planted head breaks its task while masking as many random heads mostly does not, and the
 * control metric does not move.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { FwdHook, HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { maskHeadsCheck } from '../src/interp/scores/mask_heads.js';
import { answerRecall, greedyDecode } from '../src/interp/scores/retrieval.js';
import { PLANTED, letterPrompts, needleTrials, plantedModel, temporalPairs } from './scores_planted.js';

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});
afterAll(() => model.dispose());

function lastLogProbs(tokens: number[], fwdHooks: FwdHook[]): Float32Array {
  const logits = model.runWithHooks([tokens], { fwdHooks });
  const lp = tf.tidy(() => tf.logSoftmax(logits.slice([0, tokens.length - 1, 0], [1, 1, -1]).reshape([-1])).dataSync() as Float32Array);
  logits.dispose();
  return lp;
}

describe('maskHeadsCheck', () => {
  it('masking the retrieval head (uniform attention, as Wu et al.) fails every needle; 1 random head mostly does not', () => {
    const trials = needleTrials().filter((_, i) => i % 3 === 0);
    const accuracy = (h: FwdHook[]) => ({ main: trials.filter((t) => answerRecall(model, t, greedyDecode(model, t.tokens, { maxNewTokens: 4, fwdHooks: h })) > 0.5).length / trials.length });
    const r = maskHeadsCheck(model, [PLANTED.induction], accuracy, { metric: 'needle accuracy' }, { draws: 5, seed: 1 });
    console.log('retrieval causal', JSON.stringify({ baseline: r.baseline, top: r.top, random: r.random.map((x) => [x.heads, x.main]) }));
    expect(r.baseline.main).toBe(1);
    expect(r.top.main).toBe(0);
    expect(r.randomMean.main).toBeGreaterThan(0.5);
    // the only random head that can hurt is L0H1, the previous-token half of the same circuit
    for (const d of r.random) if (!d.heads.some((h) => h.layer === 0 && h.head === 1)) expect(d.main).toBe(1);
  });

  it('knocking out the temporal head moves time-dependent answers, not time-invariant controls', () => {
    const pairs = temporalPairs();
    const mean = (kind: string, h: FwdHook[]) => {
      const ps = pairs.filter((p) => p.kind === kind);
      return ps.reduce((a, p) => a + lastLogProbs(p.clean, h)[p.answer], 0) / ps.length;
    };
    const r = maskHeadsCheck(model, [PLANTED.temporal], (h) => ({ main: mean('temporal', h), control: mean('control', h) }), { metric: 'log p(answer)', control: 'controls' }, { ablation: { kind: 'zero' }, seed: 2 });
    console.log('temporal causal', JSON.stringify({ baseline: r.baseline, top: r.top, randomMean: r.randomMean }));
    expect(r.baseline.main).toBeGreaterThan(-0.01);
    expect(r.top.main).toBeLessThan(-4); // the answer logit falls from 10 to 0 under the others (3.5 and below)
    expect(Math.abs(r.top.control! - r.baseline.control!)).toBeLessThan(1e-4);
    expect(r.randomMean.main).toBeGreaterThan(r.top.main + 4);
  });

  it('masking the correct-letter head drops letter accuracy to chance or below', () => {
    const prompts = letterPrompts(8, true);
    const acc = (h: FwdHook[]) => {
      let hit = 0;
      for (const p of prompts) {
        const lp = lastLogProbs(p.tokens, h);
        const on = p.labelTokens.map((t) => lp[t]);
        hit += on.indexOf(Math.max(...on)) === p.correct ? 1 : 0;
      }
      return { main: hit / prompts.length };
    };
    const r = maskHeadsCheck(model, [PLANTED.induction], acc, { metric: 'letter accuracy' }, { seed: 3 });
    console.log('correct-letter causal', JSON.stringify({ baseline: r.baseline, top: r.top, randomMean: r.randomMean }));
    expect(r.baseline.main).toBe(1);
    expect(r.top.main).toBeLessThanOrEqual(0.25);
  });

  it('maskHeadsCheck leaves no tensors behind', () => {
    const metric = (h: FwdHook[]) => ({ main: lastLogProbs([0, 22, 23, 22], h)[23] });
    maskHeadsCheck(model, [PLANTED.induction], metric, { metric: 'x' }, { draws: 2 });
    const before = tf.memory().numTensors;
    maskHeadsCheck(model, [PLANTED.induction], metric, { metric: 'x' }, { draws: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
