/**
 * Attention flow: Edmonds–Karp against graphs with known maximum flows and against brute-force minimum cuts
 * (max-flow = min-cut), flow on hand-made patterns and on the planted model against hand computations,
 * flow and rollout against networkx on the graph of the paper's code (tests/fixtures/make_flow_fixture.py),
 * the importances against finite differences and direct runs, Spearman against scipy's documented value.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { rolloutFromPatterns } from '../src/interp/attribution/attention_rollout.js';
import { attentionFlow, attentionGraph, blankOutImportance, flowCorrelations, flowFromPatterns, inputGradientImportance, inputGradients } from '../src/interp/attribution/attention_flow.js';
import { loadPretrained } from '../src/loading/load.js';
import { FlowNetwork, maxFlow, type FlowEdge } from '../src/util/max_flow.js';
import { averageRanks, spearman } from '../src/util/rank_correlation.js';
import { Random } from '../src/util/random.js';
import { plantedModel, PLANTED_TOK } from '../src/zoo/planted.js';
import { FIXTURES } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** The minimum s–t cut by enumerating every node set that holds s and not t. */
function bruteMinCut(nodes: number, edges: FlowEdge[], s: number, t: number): number {
  const others = Array.from({ length: nodes }, (_, i) => i).filter((i) => i !== s && i !== t);
  let best = Infinity;
  for (let mask = 0; mask < 1 << others.length; mask++) {
    const inS = new Set([s, ...others.filter((_, j) => mask & (1 << j))]);
    const cut = edges.filter((e) => inS.has(e.from) && !inS.has(e.to)).reduce((a, e) => a + e.capacity, 0);
    best = Math.min(best, cut);
  }
  return best;
}

describe('maxFlow (Edmonds–Karp)', () => {
  it('finds 23 on the textbook network (Cormen et al., Introduction to Algorithms, fig. 26.1)', () => {
    const E = (from: number, to: number, capacity: number) => ({ from, to, capacity });
    const edges = [E(0, 1, 16), E(0, 2, 13), E(1, 3, 12), E(2, 1, 4), E(2, 4, 14), E(3, 2, 9), E(3, 5, 20), E(4, 3, 7), E(4, 5, 4)];
    expect(maxFlow(6, edges, 0, 5)).toBe(23);
  });

  it('needs the reverse edge: s→a→b→t blocks s→b, a→t unless flow is pushed back along a→b', () => {
    // BFS finds s-a-t and s-b-t here; with the cross edge first (DFS order) a path s-a-b-t must later be undone
    const edges = [{ from: 0, to: 1, capacity: 1 }, { from: 1, to: 2, capacity: 1 }, { from: 2, to: 3, capacity: 1 }, { from: 0, to: 2, capacity: 1 }, { from: 1, to: 3, capacity: 1 }];
    expect(maxFlow(4, edges, 0, 3)).toBe(2);
    expect(maxFlow(4, edges, 3, 0)).toBe(0); // no edge leaves t
    expect(maxFlow(4, edges, 2, 2)).toBe(0);
  });

  it('equals the brute-force minimum cut on 40 random real-valued graphs of 7 nodes', () => {
    const rng = new Random(3);
    for (let trial = 0; trial < 40; trial++) {
      const edges: FlowEdge[] = [];
      for (let a = 0; a < 7; a++) for (let b = 0; b < 7; b++) if (a !== b && rng.next() < 0.45) edges.push({ from: a, to: b, capacity: rng.next() });
      const net = new FlowNetwork(7, edges);
      for (const [s, t] of [[0, 6], [2, 5]]) expect(net.maxFlow(s, t)).toBeCloseTo(bruteMinCut(7, edges, s, t), 10);
    }
  });

  it('bad graphs are HeadlensErrors', () => {
    expect(() => maxFlow(2, [{ from: 0, to: 2, capacity: 1 }], 0, 1)).toThrow(HeadlensError);
    expect(() => maxFlow(2, [{ from: 0, to: 1, capacity: -1 }], 0, 1)).toThrow(HeadlensError);
    expect(() => maxFlow(2, [{ from: 0, to: 1, capacity: 1 }], 0, 5)).toThrow(HeadlensError);
  });
});

describe('spearman', () => {
  it('matches scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233 (scipy docs), ties averaged', () => {
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12);
    expect(averageRanks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    expect(spearman([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(Number.isNaN(spearman([1, 1, 1], [1, 2, 3]))).toBe(true);
    expect(() => spearman([1], [1])).toThrow(HeadlensError);
  });
});

describe('attention flow', () => {
  it('flowFromPatterns on two hand-made layers: flow [0.65, 0.6] where rollout is [0.55, 0.45]', () => {
    // one head; Â = 0.5·A + 0.5·I: Â0 = [[1,0],[0.25,0.75]], Â1 = [[1,0],[0.4,0.6]]
    // into (2,1): to token 0 via (1,0) min(0.4, 1) + via (1,1) min(0.6, 0.25) = 0.65; to token 1 via (1,1) min(0.6, 0.75) = 0.6
    const a0 = tf.tensor4d([[[[1, 0], [0.5, 0.5]]]]);
    const a1 = tf.tensor4d([[[[1, 0], [0.8, 0.2]]]]);
    const f = flowFromPatterns([a0, a1], { pos: 1 });
    expect(f.pos).toBe(1);
    f.raw[0].forEach((v, i) => expect(v).toBeCloseTo([0.65, 0.6][i], 6));
    f.normalized[0].forEach((v, i) => expect(v).toBeCloseTo([0.65 / 1.25, 0.6 / 1.25][i], 6));
    const into0 = flowFromPatterns([a0, a1], { pos: 0 });
    expect(into0.raw[0]).toEqual([1]);
    expect(() => flowFromPatterns([])).toThrow(HeadlensError);
    expect(() => flowFromPatterns([a0], { pos: 2 })).toThrow(HeadlensError);
    expect(() => flowFromPatterns([a0], { residualWeight: 1.5 })).toThrow(HeadlensError);
    tf.dispose([a0, a1]);
  });

  it('flowFromPatterns equals networkx (edmonds_karp) on the graph of Abnar & Zuidema\'s code, 4 random causal cases (make_flow_fixture.py)', () => {
    const fx = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'attention_flow.json'), 'utf8')) as {
      cases: { patterns: number[][][][]; pos: number; raw: number[]; normalized: number[]; rollout_row: number[] }[];
    };
    for (const c of fx.cases) {
      const patterns = c.patterns.map((l) => tf.tensor4d([l]));
      const f = flowFromPatterns(patterns, { pos: c.pos });
      f.raw[0].forEach((v, k) => expect(v).toBeCloseTo(c.raw[k], 5));
      f.normalized[0].forEach((v, k) => expect(v).toBeCloseTo(c.normalized[k], 5));
      const r = rolloutFromPatterns(patterns);
      (r.arraySync() as number[][][])[0][c.pos].forEach((v, k) => expect(v).toBeCloseTo(c.rollout_row[k], 5));
      tf.dispose([...patterns, r]);
    }
  });

  it('attentionFlow on the planted model: hand patterns of [BOS, x, y], flow equals their brute-force minimum cut', () => {
    const model = plantedModel();
    const [x, y] = PLANTED_TOK.CONTENT;
    const tokens = [[PLANTED_TOK.BOS, x, y]];
    // mean over the three heads, by what each was built to do (src/zoo/planted.ts):
    // L0: duplicate (x: BOS; y: BOS and x alike), previous token, zero weights (uniform)
    const A0 = [[1, 0, 0], [5 / 6, 1 / 6, 0], [5 / 18, 11 / 18, 1 / 9]];
    // L1: induction (no earlier copy: uniform), sink (BOS), temporal (no relation token: uniform)
    const A1 = [[1, 0, 0], [2 / 3, 1 / 3, 0], [5 / 9, 2 / 9, 2 / 9]];
    const { logits, cache } = model.runWithCache(tokens, { names: [actName('pattern', 0), actName('pattern', 1)] });
    [A0, A1].forEach((A, l) => {
      const got = (cache.get(actName('pattern', l)).mean(1).arraySync() as number[][][])[0];
      A.forEach((row, q) => row.forEach((v, k) => expect(got[q][k]).toBeCloseTo(v, 6)));
    });
    tf.dispose([logits]);
    cache.dispose();
    const hat = (A: number[][]) => A.map((row, q) => row.map((v, k) => 0.5 * v + (q === k ? 0.5 : 0)));
    const { nodes, edges } = attentionGraph([hat(A0), hat(A1)]);
    const expected = [0, 1, 2].map((k) => bruteMinCut(nodes, edges, 2 * 3 + 2, k));
    const f = attentionFlow(model, tokens, { pos: -1 });
    f.raw[0].forEach((v, k) => expect(v).toBeCloseTo(expected[k], 5));
    // and one value by hand: into token 2 only through (1,2) (0.5·2/9 + 0.5) then (0,2) (0.5·1/9 + 0.5): min = 5/9
    expect(f.raw[0][2]).toBeCloseTo(5 / 9, 5);
    expect(f.normalized[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    expect(() => attentionFlow(model, tokens, { layer: 2 })).toThrow(HeadlensError);
    model.dispose();
  });
});

describe('importance and correlations', () => {
  let model: HookedTransformer;
  const TOKENS = [[3, 14, 15, 92, 65], [7, 1, 8, 2, 8]];
  beforeAll(async () => {
    model = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  });

  it('inputGradients agree with finite differences along random directions; the importances reduce them per token', () => {
    const answer = 11;
    const g = inputGradients(model, TOKENS, { pos: 3, answer });
    const d = model.cfg.d_model;
    const rng = new Random(5);
    const eps = 1e-2;
    let largest = 0;
    for (let k = 0; k < 4; k++) {
      const u = Array.from({ length: d }, () => rng.next() - 0.5);
      const logitWith = (scale: number) =>
        tf.tidy(() => {
          const dir = tf.oneHot([k], 5).reshape([1, 5, 1]).mul(tf.tensor1d(u).reshape([1, 1, d])).mul(scale);
          const l = model.runWithHooks(TOKENS, { fwdHooks: [[actName('resid_pre', 0), (act) => act.add(dir)]] });
          return Array.from(l.slice([0, 3, answer], [-1, 1, 1]).dataSync());
        });
      const [up, down] = [logitWith(eps), logitWith(-eps)];
      up.forEach((x, b) => {
        const fd = (x - down[b]) / (2 * eps);
        largest = Math.max(largest, Math.abs(fd));
        const dot = g[b][k].reduce((a, gi, i) => a + gi * u[i], 0);
        expect(Math.abs(dot - fd)).toBeLessThan(2e-3 + 2e-2 * Math.abs(fd));
      });
    }
    expect(largest).toBeGreaterThan(0.05); // the comparison is not between two zeros
    expect(g[0][4].every((x) => x === 0)).toBe(true); // position 4 comes after the output position
    const l2 = inputGradientImportance(model, TOKENS, { pos: 3, answer });
    const absSum = inputGradientImportance(model, TOKENS, { pos: 3, answer, reduce: 'abs-sum' });
    expect(l2[1][2]).toBeCloseTo(Math.hypot(...g[1][2]), 5);
    expect(absSum[1][2]).toBeCloseTo(Math.abs(g[1][2].reduce((a, x) => a + x, 0)), 6);
    // GPT-2 is pre-LN: every reader of the residual subtracts its mean, so Σ_d g_d vanishes (why 'l2' is the default)
    expect(absSum[1][2]).toBeLessThan(1e-4 * l2[1][2] + 1e-6);
  });

  it('blankOutImportance is p(answer) − p(answer with token k blanked), from direct runs', () => {
    const imp = blankOutImportance(model, [TOKENS[0]], 0, { pos: 2, answer: 5 });
    const p = (row: number[]) => tf.tidy(() => tf.softmax(model.forward([row]).slice([0, 2, 0], [1, 1, -1]).reshape([-1])).dataSync()[5]);
    const base = p(TOKENS[0]);
    for (let k = 0; k < 3; k++) expect(imp[0][k]).toBeCloseTo(base - p(TOKENS[0].map((t, j) => (j === k ? 0 : t))), 6);
    expect(() => blankOutImportance(model, TOKENS, model.cfg.d_vocab)).toThrow(HeadlensError);
  });

  it('flowCorrelations: ρ of each method and importance from its own scores; no tensor leaks', () => {
    const r = flowCorrelations(model, TOKENS, { pos: -1, blank: 0 });
    expect(r.pos).toBe(4);
    for (const m of ['raw', 'rollout', 'flow'] as const) {
      for (const imp of ['gradient', 'blankOut'] as const) {
        const s = r.rho[m][imp]!;
        s.perPrompt.forEach((rho, b) => expect(rho).toBeCloseTo(spearman(r.scores[m][b], r.importance[imp]![b]), 12));
        expect(s.perPrompt).toHaveLength(2);
      }
    }
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      flowCorrelations(model, TOKENS, { pos: 3, blank: 0 });
      attentionFlow(model, TOKENS);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => flowCorrelations(model, TOKENS, { pos: 0 })).toThrow(HeadlensError);
  });
});
