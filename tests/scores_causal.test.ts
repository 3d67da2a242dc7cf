/**
 * The causal checks beside the scores (maskHeadsCheck, with src/interp/interventions/ablation.ts): on the planted model,
 * masking the planted head breaks its task while masking as many random heads mostly does not, and the
 * control metric does not move.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { FwdHook, HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { inductionSequences } from '../src/datasets/induction.js';
import { headAblationHooks, kvHeadAblationHooks } from '../src/interp/interventions/ablation.js';
import { maskHeadsCheck } from '../src/interp/scores/mask_heads.js';
import { answerRecall, greedyDecode } from '../src/interp/scores/retrieval.js';
import { PLANTED, PLANTED_TOK as TOK, plantedLetterPrompts as letterPrompts, plantedNeedleTrials as needleTrials, plantedModel, plantedTemporalPairs as temporalPairs } from '../src/zoo/planted.js';

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

describe("'window' ablation (DuoAttention's streaming attention)", () => {
  const seqs = () => inductionSequences({ n: 3, halfLength: 20, pool: TOK.CONTENT, bos: TOK.BOS, seed: 5 }).sequences;
  const repeatAcc = (h: FwdHook[]) => {
    let hit = 0;
    let n = 0;
    for (const s of seqs()) {
      const logits = model.runWithHooks([s], { fwdHooks: h });
      const pred = tf.tidy(() => Array.from(logits.squeeze([0]).argMax(1).dataSync()));
      logits.dispose();
      for (let p = 21; p < s.length - 1; p++) (hit += pred[p] === s[p + 1] ? 1 : 0), n++;
    }
    return { main: hit / n };
  };

  it('a windowed head attends only to the sink and the recent keys, with its weights summing to 1', () => {
    const s = seqs()[0];
    const hooks = headAblationHooks(model, [PLANTED.induction], { kind: 'window', sinkTokens: 2, recent: 3 });
    const { logits, cache } = model.runWithCache([s], { names: ['blocks.1.attn.hook_pattern'], fwdHooks: hooks });
    const pat = tf.tidy(() => cache.get('blocks.1.attn.hook_pattern').squeeze([0]).arraySync() as number[][][]); // [head, query_pos, key_pos]
    cache.dispose();
    logits.dispose();
    for (let q = 0; q < s.length; q++) {
      const row = pat[PLANTED.induction.head][q];
      for (let k = 0; k < s.length; k++) if (k >= 2 && k <= q - 3) expect(row[k]).toBe(0);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // the other heads of the layer are untouched
    expect(pat[PLANTED.sink.head][30][0]).toBeGreaterThan(0.99);
  });

  it('windowing the sink head costs nothing; windowing the induction head (which reads 20 back) breaks the repeat', () => {
    const opts = { kind: 'window' as const, sinkTokens: 1, recent: 4 };
    const base = repeatAcc([]).main;
    const sink = repeatAcc(headAblationHooks(model, [PLANTED.sink], opts)).main;
    const induction = repeatAcc(headAblationHooks(model, [PLANTED.induction], opts)).main;
    console.log('window ablation', JSON.stringify({ base, sink, induction }));
    expect(base).toBeGreaterThan(0.5);
    expect(sink).toBe(base);
    expect(induction).toBeLessThan(base / 3);
  });

  it('rejects a negative window, naming it, and MLPs or key/value heads, which have no attention scores', () => {
    expect(() => headAblationHooks(model, [PLANTED.sink], { kind: 'window', recent: 0 })).toThrow(/recent 0/);
    expect(() => kvHeadAblationHooks(model, [{ layer: 1, kvHead: 0 }], { kind: 'window' })).toThrow(/'window' ablation acts on query heads/);
  });
});
