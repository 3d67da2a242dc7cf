/**
 * Temporal heads by Park et al.'s method (EAP-IG circuits, node frequency against time-invariant circuits,
 * ablation scored over the candidate answers) on the planted model, whose L1H2 is the temporal head by
 * construction (src/zoo/planted.ts) and whose invariant task (copying, L1H0) never needs it.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { candidateProbability, temporalCircuits, temporalHeadAblation, type CandidateItem, type TemporalCircuitTask } from '../src/interp/scores/temporal_circuits.js';
import { edgeAttribution } from '../src/interp/interventions/eap.js';
import { logitDiff } from '../src/interp/metrics.js';
import { PLANTED_TOK as T, plantedModel } from '../src/zoo/planted.js';
import { headlensError } from './expect_error.js';
import { EVENT_ALIASES, INVARIANT_FACTS, temporalCircuitData } from '../src/datasets/temporal.js';
import type { TextTokenizer } from '../src/model/tokenizer.js';

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});
afterAll(() => model.dispose());

const Y = T.YEARS.length;
// one temporal task per year (numeric and, separately, the spelled-out alias), corrupted by the next year
const temporalTasks: TemporalCircuitTask[] = [false, true].flatMap((alias) =>
  Array.from({ length: Y }, (_, i) => {
    const j = (i + 1) % Y;
    const yr = alias ? T.ALIASES : T.YEARS;
    return {
      name: `${alias ? 'alias' : 'year'}-${i}`, kind: 'temporal' as const, group: alias ? 'alias' : 'year',
      clean: T.SUBJECTS.map((s) => [T.BOS, yr[i], s, T.R_T]), corrupted: T.SUBJECTS.map((s) => [T.BOS, yr[j], s, T.R_T]),
      answer: T.SUBJECTS.map(() => T.YEAR_ANSWERS[i]), wrong: T.SUBJECTS.map(() => T.YEAR_ANSWERS[j]),
    };
  }),
);
// time-invariant tasks: a fixed attribute recalled in context ([BOS, a, b, c, a] → b), corrupted by another subject
const C = T.CONTENT;
const invariantTasks: TemporalCircuitTask[] = [0, 1, 2].map((k) => {
  const rows = [0, 1].map((r) => C.slice(6 * k + 3 * r, 6 * k + 3 * r + 3));
  const other = rows.map((_, r) => rows[1 - r]);
  return {
    name: `copy-${k}`, kind: 'invariant' as const,
    clean: rows.map(([a, b, c]) => [T.BOS, a, b, c, a]), corrupted: other.map(([a, b], r) => [T.BOS, a, b, rows[r][2], a]),
    answer: rows.map(([, b]) => b), wrong: other.map(([, b]) => b),
  };
});

describe('temporalCircuits (Park et al. 2025)', () => {
  it('on the temporal task the two top EAP-IG edges are L1H2 → logits and embed → L1H2.v, each −20 by hand', () => {
    // by hand: clean L1H2 writes COPY = 10 on the year's answer, corrupted on the other: each edge carries the whole
    // logit difference 10 − (−10) = 20, removed when noised, and the metric is linear along both paths
    const t = temporalTasks[0];
    const attr = edgeAttribution(model, { clean: t.clean, corrupted: t.corrupted, metric: logitDiff(t.answer, t.wrong), method: 'eap-ig', steps: 10 });
    const top = [...attr.edges].sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
    expect(top.slice(0, 2).map((e) => `${e.from}>${e.to}`).sort()).toEqual(['L1H2>logits', 'embed>L1H2.v']);
    for (const e of top.slice(0, 2)) expect(Math.abs(e.score + 20), `${e.from}>${e.to}`).toBeLessThan(1e-3);
    expect(Math.abs(top[2].score)).toBeLessThan(1e-3);
  });

  it('finds L1H2 alone: in every temporal and alias circuit, in no invariant one', () => {
    const r = temporalCircuits(model, [...temporalTasks, ...invariantTasks], { steps: 10, topN: 3 });
    expect(r.temporalHeads).toEqual(['L1H2']);
    expect(r.frequency.year.L1H2).toBe(1);
    expect(r.frequency.alias.L1H2).toBe(1);
    expect(r.frequency.invariant.L1H2).toBeUndefined();
    expect(r.frequency.invariant.L1H0).toBe(1); // the copying head is the invariant tasks' own
    expect(r.settings).toMatchObject({ steps: 10, topN: 3, threshold: 0.9, tasks: 11, groups: ['year', 'alias', 'invariant'] });
    for (const c of r.circuits.filter((x) => x.kind === 'temporal')) expect(c.circuit.nodes.sort()).toEqual(['L1H2', 'embed', 'logits']);
  });

  it('a head in one invariant circuit is not temporal, however often it is in temporal ones', () => {
    // the same temporal task given as invariant: its L1H2 circuit disqualifies L1H2
    const r = temporalCircuits(model, [...temporalTasks, { ...temporalTasks[0], name: 'as-invariant', kind: 'invariant', group: undefined }], { steps: 2, topN: 3 });
    expect(r.temporalHeads).toEqual([]);
  });

  it('refuses tasks without invariant controls or with equal answers', () => {
    expect(headlensError(() => temporalCircuits(model, temporalTasks, { steps: 2 })).message).toMatch(/no time-invariant task/);
    expect(headlensError(() => temporalCircuits(model, [{ ...temporalTasks[0], wrong: temporalTasks[0].answer }, ...invariantTasks])).message).toMatch(/equals its corrupted answer/);
  });
});

describe('temporalHeadAblation: the answer probability normalised over the candidates', () => {
  const temporalItems: CandidateItem[] = Array.from({ length: Y }, (_, i) => ({ prompt: [T.BOS, T.YEARS[i], T.SUBJECTS[0], T.R_T], candidates: T.YEAR_ANSWERS.map((a) => [a]), correct: i }));
  const invariantItems: CandidateItem[] = invariantTasks.map((t) => ({ prompt: t.clean[0], candidates: [[t.answer[0]], [t.wrong[0]], [C[25]]], correct: 0 }));

  it('ablating L1H2 takes temporal facts from e^10/(e^10+3) to 1/4 exactly and leaves invariant facts at e^10/(e^10+2)', () => {
    const r = temporalHeadAblation(model, ['L1H2'], { temporal: temporalItems, invariant: invariantItems }, { draws: 2, seed: 3 });
    const e10 = Math.exp(10);
    expect(Math.abs(r.baseline.temporal - e10 / (e10 + 3))).toBeLessThan(1e-5);
    expect(Math.abs(r.ablated.temporal - 0.25)).toBeLessThan(1e-5);
    expect(Math.abs(r.baseline.invariant - e10 / (e10 + 2))).toBeLessThan(1e-5);
    expect(Math.abs(r.ablated.invariant - r.baseline.invariant)).toBeLessThan(1e-6);
    expect(r.random).toHaveLength(2);
    for (const d of r.random) expect(d.heads).not.toContain('L1H2');
  });

  it('a two-token candidate is scored by its summed log-probability', () => {
    // [a1, a2] after the prompt: log p(a1 | prompt) + log p(a2 | prompt, a1); compare with one candidate pair by hand
    const item: CandidateItem = { prompt: temporalItems[1].prompt, candidates: [[T.YEAR_ANSWERS[1], T.SEP], [T.YEAR_ANSWERS[0], T.SEP]], correct: 0 };
    const lp = (c: number[]) => {
      const logits = model.forward([[...item.prompt, ...c]]);
      const v = tf.tidy(() => {
        const l = tf.logSoftmax(logits.squeeze([0])).arraySync() as number[][];
        return l[item.prompt.length - 1][c[0]] + l[item.prompt.length][c[1]];
      });
      logits.dispose();
      return v;
    };
    const [a, b] = item.candidates.map(lp);
    expect(Math.abs(candidateProbability(model, [item]) - Math.exp(a) / (Math.exp(a) + Math.exp(b)))).toBeLessThan(1e-5);
  });

  it('leaves tf.memory().numTensors unchanged', () => {
    const before = tf.memory().numTensors;
    candidateProbability(model, temporalItems.slice(0, 1));
    temporalCircuits(model, [temporalTasks[0], invariantTasks[0]], { steps: 2, topN: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('temporalCircuitData', () => {
  // one id per word or punctuation mark, [UNK] = 1 for the words listed as unknown
  const words = new Map<string, number>();
  const unknown = new Set(['Roman', 'numeral']);
  const tok: TextTokenizer = {
    encode: (t) => (t.match(/\w+|[^\w\s]+/g) ?? []).map((w) => (unknown.has(w) ? 1 : (words.get(w) ?? (words.set(w, words.size + 2), words.size + 1)))),
    decode: (ids) => ids.map((i) => [...words].find(([, v]) => v === i)?.[0] ?? '[UNK]').join(' '),
    tokenText: (i) => String(i),
  };
  const d = temporalCircuitData(tok, { prefix: [0], unk: 1 });
  const text = (ids: number[]) => tok.decode(ids.slice(1));

  it('event aliases name the year by an event of another relation, and pair it with another event of another answer', () => {
    const ev = d.tasks.filter((t) => t.group === 'event');
    expect(ev.map((t) => t.name).sort()).toEqual(['uk-prime-minister-event-2004', 'uk-prime-minister-event-2008', 'uk-prime-minister-event-2012', 'us-president-event-2006', 'us-president-event-2014', 'us-president-event-2022'].sort());
    const t = ev.find((x) => x.name === 'uk-prime-minister-event-2004')!;
    expect(text(t.clean[0])).toBe(`In the year ${EVENT_ALIASES[2004]} , the Prime Minister of the United Kingdom was`);
    // 2008 (Brown) and 2012 (Cameron) have other answers; 2014 (Cameron, "… was won by Germany") is a word longer: dropped,
    // and with it the whole 2014 task (its other-answer years 2004 and 2008 are both a word shorter)
    expect(t.corrupted.map(text).map((s) => s.split(' ').slice(3, 10).join(' '))).toEqual(['the Summer Olympics were held in Beijing', 'the Summer Olympics were held in London']);
    expect(d.dropped.some((x) => x.clean.includes('won by Germany') && x.reason.startsWith('corrupted is'))).toBe(true);
  });

  it('time-invariant tasks are fixed attributes with no year, corrupted by another subject; unknown words are dropped and listed', () => {
    const inv = d.tasks.filter((t) => t.kind === 'invariant');
    expect(inv.length).toBeGreaterThan(10);
    for (const t of inv) for (const row of [...t.clean, ...t.corrupted]) expect(text(row)).not.toMatch(/\d{4}|year/);
    expect(inv.some((t) => t.name.startsWith('roman-numeral'))).toBe(false);
    expect(d.dropped.filter((x) => x.reason === 'unknown token').length).toBe(Object.keys(INVARIANT_FACTS[3].objects).length * (Object.keys(INVARIANT_FACTS[3].objects).length - 1));
    const france = inv.find((t) => t.name === 'capital-France')!;
    expect(text(france.clean[0])).toBe('The capital of France is');
    expect(france.answer[0]).toBe(tok.encode(' Paris')[0]);
    expect(new Set(france.wrong).has(france.answer[0])).toBe(false);
  });
});
