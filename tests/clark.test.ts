/**
 * "What Does BERT Look At?" (Clark et al. 2019): the special-token, entropy, head-distance and syntactic-probe
 * analyses on planted maps with hand-computed values, classical MDS on known layouts, the scan tasks on toy-lm
 * (structure and invariants), and leak checks.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { attentionEntropy, attentionEntropyOf } from '../src/interp/scores/attention_entropy.js';
import { attentionMaps, attentionMapsOf, readAttentionMaps } from '../src/interp/scores/attention_maps.js';
import { runScorer } from '../src/interp/scores/head_scores.js';
import { headDistances, headEmbedding } from '../src/interp/scores/head_distances.js';
import { specialTokenAttention, specialTokenScores, specialTokensScorer } from '../src/interp/scores/special_tokens.js';
import { syntaxProbe, type DependencyExample } from '../src/interp/scores/syntax_probe.js';
import { scanTask } from '../src/interp/scores/tasks.js';
import { classicalMds } from '../src/linalg/mds.js';
import { loadPretrained } from '../src/loading/load.js';
import { inProcess } from './cli_in_process.js';
import { FIXTURES, encoderFixtureModels, reference } from './helpers.js';

/** A [layer=1][head][query][key] map from per-head row functions. */
function planted(n: number, heads: ((q: number) => number[])[]): number[][][][] {
  return [heads.map((row) => Array.from({ length: n }, (_, q) => row(q)))];
}
const oneHot = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i === k ? 1 : 0));
const uniform = (n: number) => new Array<number>(n).fill(1 / n);
const causalUniform = (n: number) => (q: number) => Array.from({ length: n }, (_, k) => (k <= q ? 1 / (q + 1) : 0));

describe('attention to special tokens (Clark et al. 2019, §3.1)', () => {
  const tokens = ['[CLS]', 'the', '.', '[SEP]'];
  it('a head that puts all its attention on [SEP] scores 1.0 on sep and 0 on cls and punctuation; a uniform head 1/n per token', () => {
    const r = specialTokenAttention([{ tokens, maps: planted(4, [() => oneHot(4, 3), () => uniform(4)]) }]);
    expect(r.tables.sep[0][0]).toBeCloseTo(1, 12);
    expect(r.tables.cls[0][0]).toBe(0);
    expect(r.tables.punct[0][0]).toBe(0);
    expect(r.tables['sep->sep'][0][0]).toBeCloseTo(1, 12);
    expect(r.tables['rest->sep'][0][0]).toBeCloseTo(1, 12);
    // uniform: 1/4 on each class; self 1/4; prev and next exist for 3 of 4 queries, divided by all 4 (their eye(n, n, ±1))
    for (const c of ['cls', 'sep', 'punct', 'self']) expect(r.tables[c][0][1]).toBeCloseTo(0.25, 6);
    expect(r.tables.prev[0][1]).toBeCloseTo(3 / 16, 6);
    expect(r.tables.next[0][1]).toBeCloseTo(3 / 16, 6);
    expect(r.absent).toEqual([]);
  });

  it('matches their notebook formulas on a random map with two [SEP]s (sep_sep over 2, rest_sep over n − 2)', () => {
    const toks = ['[CLS]', 'a', ',', '[SEP]', 'b', '.', '[SEP]'];
    const n = toks.length;
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const row = () => {
      const r = Array.from({ length: n }, rnd);
      const s = r.reduce((a, b) => a + b, 0);
      return r.map((x) => x / s);
    };
    const A = Array.from({ length: n }, row);
    const r = specialTokenAttention([{ tokens: toks, maps: [[A]] }, { tokens: toks, maps: [[A.map((x) => x.slice().reverse())]] }]);
    // their selectors, written out for example 1 (example 2 is checked through the mean)
    const their = (B: number[][]) => {
      const sep = toks.map((t) => (t === '[SEP]' ? 1 : 0));
      const punct = toks.map((t) => (t === '.' || t === ',' ? 1 : 0));
      let s = 0, p = 0, ss = 0, rs = 0, left = 0;
      B.forEach((r, q) => r.forEach((a, k) => {
        s += a * sep[k];
        p += a * punct[k];
        ss += a * sep[k] * sep[q];
        rs += a * sep[k] * (1 - sep[q]);
        if (k === q - 1) left += a;
      }));
      return { sep: s / n, punct: p / n, sepSep: ss / 2, restSep: rs / (n - 2), prev: left / n };
    };
    const t1 = their(A);
    const t2 = their(A.map((x) => x.slice().reverse()));
    expect(r.tables.sep[0][0]).toBeCloseTo((t1.sep + t2.sep) / 2, 6);
    expect(r.tables.punct[0][0]).toBeCloseTo((t1.punct + t2.punct) / 2, 6);
    expect(r.tables['sep->sep'][0][0]).toBeCloseTo((t1.sepSep + t2.sepSep) / 2, 6);
    expect(r.tables['rest->sep'][0][0]).toBeCloseTo((t1.restSep + t2.restSep) / 2, 6);
    expect(r.tables.prev[0][0]).toBeCloseTo((t1.prev + t2.prev) / 2, 6);
  });

  it('classes match RoBERTa and GPT-2 token strings (Ġ-marked punctuation, <s>, <|endoftext|>); a class in no example is left out and named', () => {
    const maps = planted(4, [() => uniform(4)]);
    const roberta = specialTokenAttention([{ tokens: ['<s>', 'Ġthe', 'Ġ.', '</s>'], maps }]);
    expect(roberta.tables.cls[0][0]).toBeCloseTo(0.25, 6);
    expect(roberta.tables.sep[0][0]).toBeCloseTo(0.25, 6);
    expect(roberta.tables.punct[0][0]).toBeCloseTo(0.25, 6);
    const gpt2 = specialTokenAttention([{ tokens: ['<|endoftext|>', 'the', ',', 'cat'], maps }]);
    expect(gpt2.tables.cls[0][0]).toBeCloseTo(0.25, 6);
    expect(gpt2.absent).toEqual(['sep']);
    expect(Object.keys(gpt2.tables).sort()).toEqual(['cls', 'next', 'prev', 'punct', 'self']);
    const custom = specialTokenAttention([{ tokens: ['x', 'y', 'x', 'z'], maps }], { classes: { ex: ['x'] } });
    expect(custom.tables.ex[0][0]).toBeCloseTo(0.5, 6);
  });

  it('bad input is named: tokens of the wrong length, maps that are not [layer, head, query, key]', () => {
    expect(() => specialTokenAttention([{ tokens: ['a', 'b'], maps: planted(4, [() => uniform(4)]) }])).toThrow(/2 tokens for attention maps over 4 positions/);
    expect(() => specialTokenAttention([{ tokens: ['a'], maps: [[[0.5, 0.5]]] as unknown as number[][][][] }])).toThrow(/\[layer, head, query_pos, key_pos\]/);
    expect(() => specialTokenAttention([])).toThrow(/no examples/);
  });
});

describe('attention entropy (Clark et al. 2019, §3.3)', () => {
  it("uniform attention over n keys has entropy ln n (their smoothing leaves it uniform), equal to the uniform reference", () => {
    const r = attentionEntropy([planted(5, [() => uniform(5)])]);
    expect(r.entropy[0][0]).toBeCloseTo(Math.log(5), 6);
    expect(r.uniform).toBeCloseTo(Math.log(5), 12);
    expect(r.summary[0][0]).toBeCloseTo(Math.log(5), 6);
    expect(r.summaryRow).toBe('position 0 ([CLS])');
  });

  it('a one-hot head has entropy 0 unsmoothed and their smoothed value with 1e-4', () => {
    const n = 4;
    const maps = planted(n, [(q) => oneHot(n, (q + 1) % n)]);
    expect(attentionEntropy([maps], { smoothing: 0 }).entropy[0][0]).toBe(0);
    const big = 0.9999 + 0.0001 / n;
    const small = 0.0001 / n;
    expect(attentionEntropy([maps]).entropy[0][0]).toBeCloseTo(-(big * Math.log(big) + (n - 1) * small * Math.log(small)), 6);
  });

  it('on causal maps the uniform reference is the mean of ln(q + 1) and the summary row is the last position', () => {
    const n = 6;
    const e = attentionEntropyOf(attentionMaps(planted(n, [causalUniform(n)])));
    expect(e.summaryPosition).toBe(n - 1);
    const want = Array.from({ length: n }, (_, q) => Math.log(q + 1)).reduce((a, b) => a + b) / n;
    expect(e.uniform).toBeCloseTo(want, 12);
    expect(e.entropy[0][0]).toBeCloseTo(want, 6);
    expect(e.summary[0][0]).toBeCloseTo(Math.log(n), 6);
  });
});

describe('head distances and their embedding (Clark et al. 2019, §6)', () => {
  it('identical heads are 0 apart; heads with disjoint one-hot rows ln 2 unsmoothed, their smoothed value with 1e-3', () => {
    const n = 4;
    const a = (q: number) => oneHot(n, q);
    const b = (q: number) => oneHot(n, (q + 2) % n);
    const maps = planted(n, [a, a, b]);
    const d = headDistances([maps], { smoothing: 0 });
    expect(d.labels).toEqual(['L0H0', 'L0H1', 'L0H2']);
    expect(d.distances[0][1]).toBe(0);
    expect(d.distances[0][2]).toBeCloseTo(Math.LN2, 12);
    expect(d.distances[2][0]).toBe(d.distances[0][2]);
    expect(d.queries).toBe(n);
    // their smoothing: p' = 0.999 p + 0.001/n; the two rows share the small entries
    const hi = 0.999 + 0.001 / n;
    const lo = 0.001 / n;
    const m = (hi + lo) / 2;
    const js = hi * Math.log(hi / m) + lo * Math.log(lo / m); // ½(KL(P‖M) + KL(Q‖M)) over the two differing keys
    expect(headDistances([maps]).distances[0][2]).toBeCloseTo(js, 9);
  });

  it('averages per query over examples (their summed divergence divided by the queries)', () => {
    const n = 3;
    const same = planted(n, [uniform.bind(null, n), uniform.bind(null, n)]);
    const apart = planted(n, [(q) => oneHot(n, q), (q) => oneHot(n, (q + 1) % n)]);
    const d = headDistances([same, apart, apart], { smoothing: 0 });
    expect(d.distances[0][1]).toBeCloseTo((2 * Math.LN2) / 3, 12);
    expect(d.queries).toBe(3 * n);
  });

  it('classical MDS recovers collinear points 0, 1, 3 as centred coordinates ±(−4/3, −1/3, 5/3) with eigenvalue 42/9', () => {
    const x = [0, 1, 3];
    const r = classicalMds(x.map((a) => x.map((b) => Math.abs(a - b))), 2);
    const sign = Math.sign(r.points[2][0]);
    expect(r.points.map((p) => sign * p[0])).toEqual([expect.closeTo(-4 / 3, 9), expect.closeTo(-1 / 3, 9), expect.closeTo(5 / 3, 9)]);
    expect(r.eigenvalues[0]).toBeCloseTo(42 / 9, 9);
    expect(Math.abs(r.eigenvalues[1])).toBeLessThan(1e-9);
    expect(r.points.every((p) => p[1] === 0)).toBe(true);
    expect(r.explained).toBeCloseTo(1, 12);
  });

  it('classical MDS recovers a 2-D layout up to rotation: the centred Gram matrix and every distance come back', () => {
    const pts = [[0, 0], [1, 0], [0, 2], [3, 1], [-1, 2]];
    const D = pts.map((p) => pts.map((q) => Math.hypot(p[0] - q[0], p[1] - q[1])));
    const r = classicalMds(D, 2);
    const cx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
    const cy = pts.reduce((a, p) => a + p[1], 0) / pts.length;
    const c = pts.map(([x, y]) => [x - cx, y - cy]);
    for (let i = 0; i < pts.length; i++) {
      for (let j = 0; j < pts.length; j++) {
        expect(r.points[i][0] * r.points[j][0] + r.points[i][1] * r.points[j][1]).toBeCloseTo(c[i][0] * c[j][0] + c[i][1] * c[j][1], 9);
        expect(Math.hypot(r.points[i][0] - r.points[j][0], r.points[i][1] - r.points[j][1])).toBeCloseTo(D[i][j], 9);
      }
    }
    expect(r.explained).toBeCloseTo(1, 9);
    expect(() => classicalMds([[0, 1], [2, 0]])).toThrow(/not symmetric/);
  });

  it('headEmbedding puts identical heads on one point and labels every head with its layer', () => {
    const n = 3;
    const a = (q: number) => oneHot(n, q);
    const b = (q: number) => oneHot(n, (q + 1) % n);
    const maps = [[a, a].map((f) => Array.from({ length: n }, (_, q) => f(q))), [b, a].map((f) => Array.from({ length: n }, (_, q) => f(q)))];
    const e = headEmbedding(headDistances([maps], { smoothing: 0 }));
    expect(e.points.map((p) => p.label)).toEqual(['L0H0', 'L0H1', 'L1H0', 'L1H1']);
    expect(e.points.map((p) => p.layer)).toEqual([0, 0, 1, 1]);
    const [p0, p1, p2, p3] = e.points;
    expect(Math.hypot(p0.x - p1.x, p0.y - p1.y)).toBeLessThan(1e-9);
    expect(Math.hypot(p0.x - p3.x, p0.y - p3.y)).toBeLessThan(1e-9);
    expect(Math.hypot(p0.x - p2.x, p0.y - p2.y)).toBeGreaterThan(0.1);
    expect(e.method).toBe('classical MDS');
  });
});

describe('the syntactic probe (Clark et al. 2019, §4.2)', () => {
  // tokens: 0 [CLS], 1 the, 2 dog, 3 ##s, 4 barked, 5 [SEP]; words: the (1), dogs (2, 3), barked (4)
  // arcs: det the → dogs, nsubj dogs → barked, root barked
  const n = 6;
  const rows = (r: Record<number, Record<number, number>>) => Array.from({ length: n }, (_, q) => Array.from({ length: n }, (_, k) => r[q]?.[k] ?? (r[q] ? 0 : k === q ? 1 : 0)));
  // head 0: the dependent attends to its head. "the" puts 0.4 on "barked" but 0.25 + 0.25 on the two tokens of
  // "dogs" (summed: 0.5); "dogs" tokens: the first looks at "barked", the second at "the" (mean: the 0.45, barked 0.25)
  const dep = rows({ 1: { 2: 0.25, 3: 0.25, 4: 0.4, 0: 0.1 }, 2: { 4: 0.5, 0: 0.5 }, 3: { 1: 0.9, 0: 0.1 }, 4: { 0: 1 } });
  // head 1: the head attends to its dependent: "dogs" tokens look at "the", "barked" at "dogs"
  const head = rows({ 1: { 0: 1 }, 2: { 1: 0.6, 0: 0.4 }, 3: { 1: 0.6, 0: 0.4 }, 4: { 2: 0.4, 3: 0.4, 1: 0.1, 0: 0.1 } });
  const example: DependencyExample = {
    maps: [[dep, head]],
    wordTokens: [[1], [2, 3], [4]],
    arcs: [{ dependent: 0, head: 1, relation: 'det' }, { dependent: 1, head: 2, relation: 'nsubj' }, { dependent: 2, head: null, relation: 'root' }],
  };

  it('scores each head per relation in both directions: summing over the head word\'s tokens, averaging over the dependent\'s', () => {
    const r = syntaxProbe([example]);
    expect(r.relations[0]).toBe('all');
    expect(r.counts).toEqual({ all: 3, det: 1, nsubj: 1, root: 1 });
    const acc = r.accuracy;
    expect(acc['dep->head'].det[0][0]).toBe(1); // 0.5 on "dogs" beats 0.4 on "barked" only when summed
    expect(acc['dep->head'].nsubj[0][0]).toBe(0); // mean over the tokens of "dogs": "the" 0.45 > "barked" 0.25
    expect(acc['head->dep'].det[0][1]).toBe(1);
    expect(acc['head->dep'].nsubj[0][1]).toBe(1);
    expect(acc['dep->head'].root[0][0]).toBe(0); // attention never predicts ROOT
    expect(acc['head->dep'].all[0][1]).toBeCloseTo(2 / 3, 12);
    expect(r.best.nsubj).toEqual({ layer: 0, head: 1, direction: 'head->dep', accuracy: 1 });
  });

  it("fromWord 'first' reads the first token's row (their extraction default): then head 0 gets nsubj right", () => {
    expect(syntaxProbe([example], { fromWord: 'first' }).accuracy['dep->head'].nsubj[0][0]).toBe(1);
  });

  it('the offset baseline predicts the word a fixed distance away (ROOT before the first word) and keeps the best offset per relation', () => {
    const r = syntaxProbe([example]);
    expect(r.offsets['1']).toEqual({ all: 2 / 3, det: 1, nsubj: 1, root: 0 });
    expect(r.offsets['-3'].root).toBe(1); // barked − 3 is before the first word: ROOT
    expect(r.baseline.det).toEqual({ offset: 1, accuracy: 1 });
    expect(r.baseline.root).toEqual({ offset: -3, accuracy: 1 });
    expect(r.baseline.all).toEqual({ offset: 1, accuracy: 2 / 3 });
  });

  it("their possessive rule: a poss arc followed by 's is judged by the 's word's prediction", () => {
    // John 's dog: poss John → dog. John (token 0) attends to 's; 's (token 1) attends to dog
    const m = [[[[0, 1, 0], [0, 0, 1], [0, 1, 0]]]];
    const ex: DependencyExample = { maps: m, wordTokens: [[0], [1], [2]], arcs: [{ dependent: 0, head: 2, relation: 'poss' }], words: ['John', "'s", 'dog'] };
    expect(syntaxProbe([ex]).accuracy['dep->head'].poss[0][0]).toBe(1);
    expect(syntaxProbe([ex], { possessive: false }).accuracy['dep->head'].poss[0][0]).toBe(0);
  });

  it('bad input is named', () => {
    expect(() => syntaxProbe([{ ...example, wordTokens: [[1], [2, 9], [4]] }])).toThrow(/token position 9, outside the 6 positions/);
    expect(() => syntaxProbe([{ ...example, arcs: [{ dependent: 5, head: 0, relation: 'x' }] }])).toThrow(/dependent 5 is not a word index/);
    expect(() => syntaxProbe([{ ...example, arcs: [] }])).toThrow(/no arcs/);
  });
});

describe("against their code (clarkkev/attention-analysis run by tests/fixtures/make_clark_fixture.py)", () => {
  const ref = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'clark.json'), 'utf8'));
  const g = ref.general;
  const close = (got: number[][], want: number[][], digits = 5) => got.forEach((row, l) => row.forEach((v, h) => expect(v, `[${l}][${h}]`).toBeCloseTo(want[l][h], digits)));

  it("special tokens: [CLS], [SEP], punctuation, self / prev / next and [SEP] split by query equal their avg_attns", () => {
    const r = specialTokenAttention(g.examples.map((e: { tokens: string[]; maps: number[][][][] }) => ({ tokens: e.tokens, maps: e.maps })), { classes: { cls: ['[CLS]'], sep: ['[SEP]'], punct: ['.', ','] } });
    const pairs: [string, string][] = [['cls', 'cls'], ['sep', 'sep'], ['punct', 'punct'], ['self', 'self'], ['prev', 'left'], ['next', 'right'], ['sep->sep', 'sep_sep'], ['rest->sep', 'rest_sep']];
    for (const [mine, theirs] of pairs) close(r.tables[mine], g.avg_attns[theirs]);
  });

  it('entropy, entropy from [CLS] and the uniform reference equal theirs', () => {
    const r = attentionEntropy(g.examples.map((e: { maps: number[][][][] }) => e.maps));
    close(r.entropy, g.entropies);
    close(r.summary, g.entropies_cls);
    expect(r.uniform).toBeCloseTo(g.uniform_attn_entropy, 10);
  });

  it('head distances equal their summed Jensen–Shannon divergences divided by the query tokens', () => {
    const d = headDistances(g.examples.map((e: { maps: number[][][][] }) => e.maps));
    expect(d.queries).toBe(g.total_queries);
    close(d.distances, (g.js_sum as number[][]).map((row) => row.map((x) => x / g.total_queries)), 6);
  });

  it("the probe's accuracies per head, relation and direction, and the offset baseline, equal theirs (a relation they never get wrong is missing from theirs: 1)", () => {
    const examples: DependencyExample[] = ref.syntax.examples.map((e: { maps: number[][][][]; wordTokens: number[][]; words: string[]; heads: number[]; relns: string[] }) => ({
      maps: e.maps,
      wordTokens: e.wordTokens,
      words: e.words,
      arcs: e.heads.map((h, i) => ({ dependent: i, head: h === 0 ? null : h - 1, relation: e.relns[i] })),
    }));
    const r = syntaxProbe(examples);
    const want = (m: Record<string, number>, rel: string) => m[rel] ?? 1;
    let compared = 0;
    for (const dir of ['dep->head', 'head->dep'] as const) {
      for (let l = 0; l < ref.layers; l++) for (let h = 0; h < ref.heads; h++) for (const rel of r.relations) {
        expect(r.accuracy[dir][rel][l][h], `${dir} L${l}H${h} ${rel}`).toBeCloseTo(want(ref.syntax.accuracy[dir][l][h], rel), 12);
        compared++;
      }
    }
    for (const [o, m] of Object.entries(ref.syntax.offsets as Record<string, Record<string, number>>)) for (const rel of r.relations) expect(r.offsets[o][rel], `offset ${o} ${rel}`).toBeCloseTo(want(m, rel), 12);
    expect(compared).toBe(2 * ref.layers * ref.heads * 9); // all + 8 relations
  });
});

describe.each(encoderFixtureModels())("on transformers' own %s attentions (the encoder fixture's first, unpadded row)", (name) => {
  const ref = reference(name);
  const tokens = (JSON.parse(readFileSync(path.join(FIXTURES, name, 'inputs.json'), 'utf8')) as { tokens: string[] }).tokens;
  const layers = ref.names.filter((k) => k.startsWith('attentions.')).length;
  const maps = Array.from({ length: layers }, (_, l) => {
    const [, heads, n] = ref.info(`attentions.${l}`).shape;
    const a = ref.float32(`attentions.${l}`); // [batch, head, query_pos, key_pos]
    return Array.from({ length: heads }, (_, h) => Array.from({ length: n }, (_, q) => Array.from(a.subarray(((h * n + q) * n), (h * n + q + 1) * n))));
  });
  it('the maps read as bidirectional; [CLS]/<s>, [SEP]/</s> and "." are found; every class together takes all the attention', () => {
    expect(maps[0][0].length).toBe(tokens.length);
    expect(attentionMaps(maps).causal).toBe(false);
    const r = specialTokenAttention([{ tokens, maps }]);
    expect(r.absent).toEqual([]);
    for (const c of ['cls', 'sep', 'punct']) expect(r.tables[c].flat().every((x) => x > 0 && x < 1)).toBe(true);
    const all = specialTokenAttention([{ tokens, maps }], { classes: { every: [...new Set(tokens)] } });
    expect(all.tables.every.flat().every((x) => Math.abs(x - 1) < 1e-5)).toBe(true);
  });
  it('entropy is read from the [CLS] row and stays under the uniform ln n', () => {
    const e = attentionEntropy([maps]);
    expect(e.summaryRow).toBe('position 0 ([CLS])');
    expect(e.uniform).toBeCloseTo(Math.log(tokens.length), 12);
    expect(e.entropy.flat().every((x) => x > 0 && x <= e.uniform + 1e-9)).toBe(true);
  });
});

describe('the scan tasks on toy-lm', () => {
  let model: HookedTransformer;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    model = await loadPretrained('toy-lm');
  });
  afterAll(() => model?.dispose());

  it('special-tokens: BOS (cls), punctuation and positions per head; no [SEP] in a decoder, so sep is left out and named', () => {
    const r = runScorer(model, scanTask(model, 'special-tokens', { samples: 4 }).scorer);
    const { n_layers, n_heads } = model.cfg;
    expect(r.settings.absent).toEqual(['sep']);
    expect(Object.keys(r.tables ?? {}).sort()).toEqual(['next', 'prev', 'punct', 'self']);
    expect(r.scores.length).toBe(n_layers);
    expect(r.scores.every((row) => row.length === n_heads && row.every((x) => x >= 0 && x <= 1 + 1e-6))).toBe(true);
    // causal: nothing attends to the next token
    expect(r.tables!.next.flat().every((x) => Math.abs(x) < 1e-6)).toBe(true);
    // the alias runs the same scorer
    expect(runScorer(model, scanTask(model, 'bert-special-tokens', { samples: 4 }).scorer).scores).toEqual(r.scores);
  });

  it('special-tokens: a class holding every token string gets all the attention (rows sum to 1)', () => {
    const seqs = scanTask(model, 'special-tokens', { samples: 3 }).scorer.items as number[][];
    const strings = [...new Set(seqs.flat().map((id) => model.tokenizer!.tokenText(id)))];
    const r = specialTokenScores(model, seqs, { classes: { every: strings } });
    expect(r.scores.flat().every((x) => Math.abs(x - 1) < 1e-5)).toBe(true);
  });

  it('attention-entropy: every head at most the uniform reference, which is mean ln(q + 1) on these causal items', () => {
    const setup = scanTask(model, 'attention-entropy', { samples: 3, lines: ['Mary and John went to the market .', 'The dog , the sheep and the horse .', 'Peter sent a letter to Mary .'] });
    const seqs = setup.scorer.items as number[][];
    const r = runScorer(model, setup.scorer);
    const want = seqs.map((s) => s.reduce((a, _, q) => a + Math.log(q + 1), 0) / s.length).reduce((a, b) => a + b) / seqs.length;
    expect(r.tables!.uniform[0][0]).toBeCloseTo(want, 6);
    expect(r.scores.flat().every((e, i) => e > 0 && e <= r.tables!.uniform.flat()[i] + 1e-9)).toBe(true);
  });

  it('headlens scan --task special-tokens --text FILE --json writes the scan format; --text with another task is refused', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'clark-'));
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, 'Mary and John went to the market .\n\nJohn gave a drink to Mary .\n');
    const out = path.join(dir, 'scan.json');
    const r = await inProcess('scan', '--model', 'toy-lm', '--task', 'special-tokens', '--text', file, '--samples', '8', '--distances', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.task).toBe('special-tokens');
    expect(j.settings.text).toBe(file);
    expect(j.counted).toEqual({ used: 2, total: 2 });
    expect(j.scores.length).toBe(4);
    expect(Object.keys(j.tables).sort()).toEqual(['next', 'prev', 'punct', 'self']);
    // --distances: the 16 × 16 Jensen–Shannon matrix (symmetric, zero diagonal, at most ln 2) and the embedding
    const d = j.headDistances;
    expect(d.labels).toHaveLength(16);
    expect(d.queries).toBe(9 + 8); // BOS and 8 words, BOS and 7 words
    d.distances.forEach((row: number[], a: number) => row.forEach((x, b) => {
      expect(x).toBe(d.distances[b][a]);
      expect(a === b ? x === 0 : x > 0 && x <= Math.LN2).toBe(true);
    }));
    expect(d.embedding.points).toHaveLength(16);
    expect(d.embedding.method).toBe('classical MDS');
    const bad = await inProcess('scan', '--model', 'toy-lm', '--task', 'induction', '--text', file, '--json');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--text applies to --task special-tokens/);
  });

  it('attentionMapsOf, readAttentionMaps and specialTokenScores leave no tensor behind', () => {
    const ids = model.toTokens('Mary and John went to the market .')[0];
    const t = attentionMapsOf(model, ids);
    expect(t.shape).toEqual([model.cfg.n_layers, model.cfg.n_heads, ids.length, ids.length]);
    expect(attentionMaps(t).causal).toBe(true);
    t.dispose();
    readAttentionMaps(model, ids);
    specialTokenScores(model, [ids]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      readAttentionMaps(model, ids);
      specialTokenScores(model, [ids]);
      runScorer(model, scanTask(model, 'attention-entropy', { samples: 1 }).scorer);
      tf.dispose(attentionMapsOf(model, ids));
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('specialTokensScorer refuses sequences longer than the context, naming the fix', () => {
    const long = new Array<number>(model.cfg.n_ctx + 1).fill(2);
    expect(() => runScorer(model, specialTokensScorer([long], (id) => model.tokenizer!.tokenText(id)))).toThrow(/longer than the context/);
  });
});
