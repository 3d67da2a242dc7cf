/**
 * Function vectors (Todd et al. 2024) on the planted in-context model (src/zoo/planted_icl.ts), whose every
 * number follows from its construction: the task head L1H0 writes τ when a demonstration shows the mapping,
 * the mapper L2H0 turns τ and x_q into y_q. Indirect effects, the function vector and the zero-shot accuracy
 * with and without it are checked against those hand values; the prompts and the leak check too.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import {
  functionVector,
  functionVectorEffect,
  functionVectors,
  iclPrompts,
  indirectEffects,
  meanHeadOutputs,
  rankHeads,
  type IclPrompt,
} from '../src/interp/interventions/function_vectors.js';
import { PLANTED_ICL, PLANTED_ICL_TOK, plantedIclModel, plantedIclPairs } from '../src/zoo/planted_icl.js';

const { COPY, vocab: V } = PLANTED_ICL;
const N = PLANTED_ICL_TOK.X.length;
const Z = Math.exp(COPY) + Math.E + (V - 2); // softmax denominator: one token at COPY, x_q at 1, the rest at 0
const P_HI = Math.exp(COPY) / Z; // the answer wins
const P_LO = 1 / Z; // NULL wins

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedIclModel();
});

/** Whether a shuffled prompt kept some demonstration's own label (then L1H0 still finds a match). */
function hasFixedPoint(p: IclPrompt): boolean {
  const t = p.tokens;
  for (let i = 1; i + 1 < t.length; i += 2) if (PLANTED_ICL_TOK.X.indexOf(t[i]) === PLANTED_ICL_TOK.Y.indexOf(t[i + 1])) return true;
  return false;
}

describe('function vectors on the planted in-context model', () => {
  const pairs = plantedIclPairs();
  const clean = iclPrompts(pairs, { shots: 4, n: 20, seed: 1, template: { bos: PLANTED_ICL_TOK.BOS } });
  const corrupted = iclPrompts(pairs, { shots: 4, n: 16, seed: 2, shuffleLabels: true, template: { bos: PLANTED_ICL_TOK.BOS } });

  it('iclPrompts lays out [BOS, x, y, …, x_q] with distinct pairs; shuffled prompts keep the inputs and permute the labels', () => {
    for (const p of clean) {
      expect(p.tokens).toHaveLength(1 + 4 * 2 + 1);
      const xs = p.tokens.filter((_, i) => i % 2 === 1);
      expect(new Set(xs).size).toBe(5);
      for (let i = 1; i + 1 < p.tokens.length; i += 2) expect(PLANTED_ICL_TOK.Y.indexOf(p.tokens[i + 1])).toBe(PLANTED_ICL_TOK.X.indexOf(p.tokens[i]));
      expect(p.answer).toBe(PLANTED_ICL_TOK.Y[PLANTED_ICL_TOK.X.indexOf(p.tokens.at(-1)!)]);
    }
    expect(corrupted.filter((p) => !hasFixedPoint(p)).length).toBeGreaterThan(4); // the test needs both kinds
    expect(() => iclPrompts(pairs, { shots: N })).toThrow(HeadlensError);
    expect(() => iclPrompts([{ input: [2], output: 3 }, { input: [2, 2], output: 3 }], { shots: 1 })).toThrow(HeadlensError);
  });

  it('the model does what it was built for: clean prompts p(answer) = e^COPY/Z, zero-shot and deranged prompts 1/Z', () => {
    const prob = (ps: IclPrompt[]) =>
      tf.tidy(() => {
        const logits = model.forward(ps.map((p) => p.tokens));
        const last = logits.slice([0, logits.shape[1] - 1, 0], [-1, 1, -1]).reshape([ps.length, V]);
        const sm = tf.softmax(last).arraySync() as number[][];
        return ps.map((p, i) => sm[i][p.answer]);
      });
    for (const p of prob(clean)) expect(p).toBeCloseTo(P_HI, 6);
    prob(corrupted).forEach((p, i) => expect(p).toBeCloseTo(hasFixedPoint(corrupted[i]) ? P_HI : P_LO, 6));
  });

  it('meanHeadOutputs and indirectEffects equal the hand values: L1H0 = P_HI − p(corrupted), L2H0 from the query frequencies, the rest 0', () => {
    const mean = meanHeadOutputs(model, clean);
    expect(mean[1][0][0]).toBeCloseTo(1, 6); // the task head read m = 1
    expect(Math.max(...mean[1][0].slice(1).map(Math.abs))).toBeLessThan(1e-6);
    const f = PLANTED_ICL_TOK.X.map((x) => clean.filter((p) => p.tokens.at(-1) === x).length / clean.length);
    mean[2][0].slice(0, N).forEach((v, i) => expect(v).toBeCloseTo(f[i], 6)); // the mapper's one-hot of x_q, averaged
    for (const l of [0, 1, 2]) expect(Math.max(...mean[l][1].map(Math.abs))).toBe(0); // zero-weight heads write nothing
    const pCorrupted = corrupted.map((p) => (hasFixedPoint(p) ? P_HI : P_LO));
    const base = pCorrupted.reduce((a, b) => a + b, 0) / corrupted.length;
    const ie = indirectEffects(model, corrupted, mean);
    expect(ie.corruptedProbability).toBeCloseTo(base, 6);
    expect(ie.effects[1][0]).toBeCloseTo(P_HI - base, 6);
    // L2H0 patched: logits COPY·f_i on every y_i, 1 on x_q, 0 on the other V − N − 1 tokens
    const zMap = f.reduce((a, fi) => a + Math.exp(COPY * fi), 0) + Math.E + (V - N - 1);
    const pMap = corrupted.map((p) => Math.exp(COPY * f[PLANTED_ICL_TOK.X.indexOf(p.tokens.at(-1)!)]) / zMap);
    expect(ie.effects[2][0]).toBeCloseTo(pMap.reduce((a, b) => a + b, 0) / corrupted.length - base, 6);
    for (const [l, h] of [[0, 0], [0, 1], [1, 1], [2, 1]]) expect(Math.abs(ie.effects[l][h])).toBeLessThan(1e-6);
    expect(rankHeads(ie.effects)[0].label).toBe('L1H0');
    expect(() => indirectEffects(model, corrupted, mean.slice(1))).toThrow(HeadlensError);
  });

  it('the function vector of the top head is τ; added before the mapper it makes zero-shot prompts answer (accuracy 0 → 1)', () => {
    const mean = meanHeadOutputs(model, clean);
    const fv = functionVector(model, mean, [{ layer: 1, head: 0 }]);
    const tau = V + PLANTED_ICL.nCtx + 1;
    expect(fv[tau]).toBeCloseTo(1, 6);
    expect(Math.max(...fv.filter((_, i) => i !== tau).map(Math.abs))).toBeLessThan(1e-6);
    const zeroShot = iclPrompts(pairs, { shots: 0, n: 10, seed: 3, template: { bos: PLANTED_ICL_TOK.BOS } });
    expect(zeroShot[0].tokens).toHaveLength(2);
    const at1 = functionVectorEffect(model, zeroShot, fv, 1);
    expect(at1.accuracy).toEqual({ without: 0, with: 1 });
    expect(at1.probability.without).toBeCloseTo(P_LO, 6);
    expect(at1.probability.with).toBeCloseTo(P_HI, 6);
    expect(functionVectorEffect(model, zeroShot, fv, 2).accuracy.with).toBe(0); // after the mapper: too late
    expect(() => functionVectorEffect(model, zeroShot, fv.slice(1), 1)).toThrow(HeadlensError);
  });

  it('functionVectors runs the whole pipeline: ICL 1, FV from L1H0 first, zero-shot 0 → 1 at layers 0 and 1; no tensor leaks', () => {
    const opts = { shots: 4, meanPrompts: 12, effectPrompts: 8, evalPrompts: 6, topHeads: 1, template: { bos: PLANTED_ICL_TOK.BOS } };
    const r = functionVectors(model, pairs, opts);
    expect(r.iclAccuracy).toBe(1);
    expect(r.top.map((t) => t.label)).toEqual(['L1H0']);
    expect(r.layer).toBe(1);
    expect(r.zeroShot.accuracy).toEqual({ without: 0, with: 1 });
    expect(r.byLayer.map((e) => e.accuracy.with)).toEqual([1, 1, 0]);
    const before = tf.memory().numTensors;
    functionVectors(model, pairs, opts);
    expect(tf.memory().numTensors).toBe(before);
  });
});
