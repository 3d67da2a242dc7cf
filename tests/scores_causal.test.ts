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
import { scanTask } from '../src/interp/scores/tasks.js';
import { retrievalTaskWith } from '../src/interp/scores/tasks/retrieval.js';
import { answerRecall, decodesExactly, greedyDecode } from '../src/interp/scores/retrieval.js';
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

  it("masking at decoding steps only (Wu et al.'s masking) spares the previous-token head, whose work on the needle's keys is done at prefill; masking every position does not", () => {
    // L1H0 finds the needle by K-composition with L0H1: the keys of the needle carry their previous token,
    // written by L0H1 when the prompt is run. Masked while decoding only, L0H1 loses nothing L1H0 reads
    // (the queries use token identity); masked everywhere, the needle's keys lose their previous tokens.
    const trials = needleTrials();
    const prev = headAblationHooks(model, [PLANTED.previous], { kind: 'uniform' });
    const induction = headAblationHooks(model, [PLANTED.induction], { kind: 'uniform' });
    const exact = (t: (typeof trials)[number], o: { fwdHooks?: FwdHook[]; decodeHooks?: FwdHook[] }) => {
      const out = greedyDecode(model, t.tokens, { maxNewTokens: t.answer.length, ...o });
      const viaForced = decodesExactly(model, t.tokens, t.answer, o.fwdHooks, o.decodeHooks);
      const same = out.every((x, j) => x === t.answer[j]);
      expect(viaForced).toBe(same); // one teacher-forced pass says what decoding says, with decode hooks too
      return same ? 1 : 0;
    };
    const count = (o: { fwdHooks?: FwdHook[]; decodeHooks?: FwdHook[] }) => trials.reduce((a, t) => a + exact(t, o), 0);
    expect(count({})).toBe(trials.length);
    expect(count({ decodeHooks: prev })).toBe(trials.length); // prefill intact: every needle still decoded
    expect(count({ fwdHooks: prev })).toBe(0); // every position: no needle
    expect(count({ decodeHooks: induction })).toBe(0); // the retrieval head itself fails them either way
    expect(count({ fwdHooks: induction })).toBe(0);
  });

  it('random control heads come from outside the top N of a ranking (heads above 0), N clipped so that k heads remain', () => {
    const seen: string[][] = [];
    const record = (h: FwdHook[]) => (seen.push(h.map(([n]) => String(n))), { main: 0 });
    const labels = (hs: { layer: number; head: number }[]) => hs.map((h) => `L${h.layer}H${h.head}`).sort();
    // scores: L1H0 0.9, L0H0 0.5, L0H1 0.3, L1H1 0.2; L0H2 and L1H2 score 0
    const ranking = [[0.5, 0.3, 0], [0.9, 0.2, 0]];
    const all = maskHeadsCheck(model, [PLANTED.induction], record, { metric: 'm' }, { ranking, draws: 6, seed: 3 }); // avoidTop 100
    expect(all.settings.avoided).toEqual(['L1H0', 'L0H0', 'L0H1', 'L1H1']);
    for (const d of all.random) expect(['L0H2', 'L1H2']).toContain(labels(d.heads)[0]);
    const two = maskHeadsCheck(model, [PLANTED.induction], record, { metric: 'm' }, { ranking, avoidTop: 2, draws: 12, seed: 3 });
    expect(two.settings.avoided).toEqual(['L1H0', 'L0H0']);
    expect(new Set(two.random.map((d) => labels(d.heads)[0]))).toEqual(new Set(['L0H1', 'L0H2', 'L1H1', 'L1H2']));
    // every head above 0 and k = 2: the 100 are clipped to 6 − 2 = 4, the masked two among them; the other two are drawn
    const full = [[0.6, 0.5, 0.4], [0.9, 0.8, 0.7]];
    const clipped = maskHeadsCheck(model, [{ layer: 1, head: 0 }, { layer: 1, head: 1 }], record, { metric: 'm' }, { ranking: full, draws: 3 });
    expect(clipped.settings.avoided).toEqual(['L1H0', 'L1H1', 'L1H2', 'L0H0']);
    for (const d of clipped.random) expect(labels(d.heads)).toEqual(['L0H1', 'L0H2']);
    // no ranking: every head but the masked ones, as before
    const plain = maskHeadsCheck(model, [PLANTED.induction], record, { metric: 'm' }, { draws: 2 });
    expect(plain.settings).toMatchObject({ ablation: 'uniform', randomFrom: 'every head but the masked ones', avoided: [] });
  });

  it("the retrieval scan task follows Wu et al. by default and writes its choices into the settings; retrievalTaskWith gives back the old ones", () => {
    const now = scanTask(model, 'retrieval', { samples: 2 });
    expect(now.scorer.settings).toMatchObject({ span: 'answer', maxNewTokens: 50, stopTokens: [] }); // the planted model has no EOS or newline
    expect(now.causal).toMatchObject({ avoidTop: 100, settings: { maskAt: 'decoding steps (from the last prompt token; the prompt before it intact)', maxNewTokens: 50 } });
    const old = retrievalTaskWith({ span: 'needle', maxNewTokens: 16, maskAt: 'all', avoidTop: null })(model, { samples: 2, seed: 0, bos: TOK.BOS, prefix: [TOK.BOS] });
    expect(old.scorer.settings).toMatchObject({ span: 'needle', maxNewTokens: 16 });
    expect(old.causal!.avoidTop).toBeUndefined();
    expect(old.causal!.settings).toMatchObject({ maskAt: 'every position' });
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
    const ranking = [[0.5, 0.3, 0], [0.9, 0.2, 0]];
    maskHeadsCheck(model, [PLANTED.induction], metric, { metric: 'x' }, { draws: 2, ranking });
    const before = tf.memory().numTensors;
    maskHeadsCheck(model, [PLANTED.induction], metric, { metric: 'x' }, { draws: 2, ranking });
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
