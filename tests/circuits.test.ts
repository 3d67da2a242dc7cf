/**
 * Circuits from edge scores (top-n, greedy, pruning, as hannamw/EAP-IG's graph.py) on a hand-made score graph
 * with hand-worked answers; circuit evaluation (evaluate.py's edge ablation) against path patching and the
 * clean/corrupted runs; TransformerLens' (dest, src) pattern patching against one full runWithHooks per entry.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { greedyCircuit, nodeFrequency, pruneCircuit, topNCircuit } from '../src/interp/circuit.js';
import { circuitFaithfulness, evaluateCircuits } from '../src/interp/interventions/circuit_faithfulness.js';
import { edgeAttribution, type Edge } from '../src/interp/interventions/eap.js';
import { pathPatch } from '../src/interp/interventions/path_patching.js';
import { patchHeadPatternDestSrc } from '../src/interp/interventions/patching.js';
import { logitDiff, metricValue } from '../src/interp/metrics.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { circuitGraph } from '../src/viz/circuit_graph.js';
import { headlensError } from './expect_error.js';
import { FIXTURES } from './helpers.js';

const CLEAN = [
  [10, 20, 30, 40, 50],
  [11, 21, 31, 41, 51],
];
const CORRUPTED = [
  [10, 25, 30, 40, 55],
  [13, 21, 31, 41, 51],
];
const metric = logitDiff([7, 8], [9, 12]);
let noNorm: HookedTransformer;
let gpt2: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  noNorm = HookedTransformer.random(
    makeConfig({ d_model: 16, n_layers: 2, n_heads: 3, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: null }),
    { seed: 8, std: 0.4 },
  );
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
});
afterAll(() => [noNorm, gpt2].forEach((m) => m.dispose()));

const metricOf = (model: HookedTransformer, tokens: number[][]) => {
  const logits = model.forward(tokens);
  const v = metricValue(metric, logits);
  logits.dispose();
  return v;
};

// A hand-made score graph of a 2-layer, 2-head attention-only model (only the edges that matter; the rest 0).
const E = (from: string, to: string, score: number): Edge => ({ from, to, score });
const GRAPH: Edge[] = [
  E('embed', 'L0H0.q', 1.0), E('embed', 'L0H1.q', 0.2), E('embed', 'L1H0.q', 0.1), E('embed', 'L1H1.q', 0), E('embed', 'logits', 0.05),
  E('L0H0', 'L1H0.q', 0.3), E('L0H1', 'L1H0.q', 2.0), E('L0H0', 'L1H1.q', 0), E('L0H1', 'L1H1.q', 0),
  E('L0H0', 'logits', 0.5), E('L0H1', 'logits', 0.01), E('L1H0', 'logits', -0.4), E('L1H1', 'logits', 0),
];
const pairs = (c: { edges: Edge[] }) => c.edges.map((e) => `${e.from}>${e.to}`).sort();

describe('circuit extraction (top-n, greedy, prune)', () => {
  it('greedyCircuit grows from the logits: n = 3 takes L0H0→logits, embed→L0H0.q, L1H0→logits, and pruning drops the unfed L1H0', () => {
    // by hand: candidates into logits; best |score| 0.5 (L0H0) → L0H0 enters, embed→L0H0.q (1.0) becomes a
    // candidate and is taken next; then |−0.4| (L1H0→logits); L1H0 has no kept input, so prune removes it
    const unpruned = greedyCircuit(GRAPH, 3, { prune: false });
    expect(pairs(unpruned)).toEqual(['L0H0>logits', 'L1H0>logits', 'embed>L0H0.q'].sort());
    const c = greedyCircuit(GRAPH, 3);
    expect(pairs(c)).toEqual(['L0H0>logits', 'embed>L0H0.q']);
    expect(c.nodes.sort()).toEqual(['L0H0', 'embed', 'logits']);
    // n = 5: then L0H1→L1H0.q (2.0), then L0H0→L1H0.q (0.3); L0H1 is unfed (embed→L0H1.q not taken) and pruned
    expect(pairs(greedyCircuit(GRAPH, 5))).toEqual(['L0H0>L1H0.q', 'L0H0>logits', 'L1H0>logits', 'embed>L0H0.q'].sort());
  });

  it('greedyCircuit with absolute false ranks by signed score: the −0.4 edge comes after 0.05', () => {
    // by hand: 0.5 (L0H0→logits), 1.0 (embed→L0H0.q), then among 0.05, 0.01, −0.4, 0, 0: embed→logits
    expect(pairs(greedyCircuit(GRAPH, 3, { absolute: false }))).toEqual(['L0H0>logits', 'embed>L0H0.q', 'embed>logits'].sort());
  });

  it('topNCircuit keeps the n largest |scores| then prunes: n = 3 leaves embed→L0H0.q→logits', () => {
    // by hand: 2.0 (L0H1→L1H0.q), 1.0 (embed→L0H0.q), 0.5 (L0H0→logits); L0H1 has no input, L1H0 no output
    expect(pairs(topNCircuit(GRAPH, 3, { prune: false }))).toEqual(['L0H0>logits', 'L0H1>L1H0.q', 'embed>L0H0.q'].sort());
    const c = topNCircuit(GRAPH, 3);
    expect(pairs(c)).toEqual(['L0H0>logits', 'embed>L0H0.q']);
    expect(c.settings).toMatchObject({ method: 'top-n', n: 3, absolute: true, pruned: true, edgesKept: 2 });
  });

  it('pruneCircuit removes a dangling node (a head with an input but no path to the logits) and its edge', () => {
    const c = pruneCircuit([E('embed', 'L0H0.q', 1), E('L0H0', 'logits', 1), E('embed', 'L0H1.q', 1), E('L0H1', 'L1H1.q', 1)]);
    expect(pairs(c)).toEqual(['L0H0>logits', 'embed>L0H0.q']);
    expect(c.nodes.sort()).toEqual(['L0H0', 'embed', 'logits']);
  });

  it('nodeFrequency counts the share of circuits holding each node', () => {
    const f = nodeFrequency([greedyCircuit(GRAPH, 3), greedyCircuit(GRAPH, 5)]);
    expect(Object.fromEntries(f)).toEqual({ embed: 1, L0H0: 1, L1H0: 0.5 });
  });

  it('bad n is refused with a clear error', () => {
    expect(headlensError(() => topNCircuit(GRAPH, 99)).message).toMatch(/greater than the number of edges/);
    expect(headlensError(() => greedyCircuit(GRAPH, -1)).message).toMatch(/non-negative integer/);
  });

  it('circuitGraph draws an extracted circuit: one node per kept node', () => {
    const svg = circuitGraph(greedyCircuit(GRAPH, 5).edges).svg;
    for (const n of ['embed', 'L0H0', 'L1H0', 'logits']) expect(svg).toContain(`data-node="${n}"`);
    expect(svg).not.toContain('data-node="L0H1"');
  });
});

describe('circuit evaluation (edge ablation)', () => {
  it('every edge in: the full model (faithfulness 1); no edge in: the corrupted run (normalized 0), on gpt2 with MLPs and LayerNorm', () => {
    const all = edgeAttribution(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric }).edges;
    const f = circuitFaithfulness(gpt2, all, { clean: CLEAN, corrupted: CORRUPTED, metric });
    const clean = metricOf(gpt2, CLEAN);
    const corrupted = metricOf(gpt2, CORRUPTED);
    expect(Math.abs(clean - corrupted)).toBeGreaterThan(1e-3);
    expect(Math.abs(f.full - clean)).toBeLessThan(1e-6);
    expect(Math.abs(f.circuit - clean)).toBeLessThan(1e-5);
    expect(Math.abs(f.ratio - 1)).toBeLessThan(1e-4);
    expect(Math.abs(f.empty - corrupted)).toBeLessThan(1e-4);
    expect(f.settings).toEqual({ ablation: 'patching', edges: all.length, prompts: 2 });
  });

  it('full circuit = clean run and empty circuit = corrupted run also under GQA, rotary positions and parallel blocks', async () => {
    for (const name of ['llama-gqa', 'pythia-parallel']) {
      const m = await loadPretrained(path.join(FIXTURES, name));
      try {
        const all = edgeAttribution(m, { clean: CLEAN, corrupted: CORRUPTED, metric }).edges;
        const f = circuitFaithfulness(m, all, { clean: CLEAN, corrupted: CORRUPTED, metric });
        expect(Math.abs(f.circuit - metricOf(m, CLEAN)), name).toBeLessThan(1e-4);
        expect(Math.abs(f.empty - metricOf(m, CORRUPTED)), name).toBeLessThan(1e-4);
        expect(Math.abs(metricOf(m, CLEAN) - metricOf(m, CORRUPTED)), name).toBeGreaterThan(1e-4);
      } finally {
        m.dispose();
      }
    }
  });

  it('all edges but one head → logits equals path patching that head to the logits (attention-only, no norm)', () => {
    const all = edgeAttribution(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric }).edges;
    const cuts = [[0, 1], [1, 2]];
    const vals = evaluateCircuits(noNorm, cuts.map(([l, h]) => all.filter((e) => !(e.from === `L${l}H${h}` && e.to === 'logits'))), { clean: CLEAN, corrupted: CORRUPTED, metric });
    cuts.forEach(([l, h], i) => {
      const exact = pathPatch(noNorm, [{ layer: l, head: h }], { kind: 'logits' }, { clean: CLEAN, corrupted: CORRUPTED, metric });
      expect(Math.abs(vals[i] - exact), `L${l}H${h}`).toBeLessThan(1e-4);
    });
    expect(Math.abs(vals[0] - metricOf(noNorm, CLEAN))).toBeGreaterThan(1e-3);
  });

  it("'mean-positional' ablation of embed → logits alone adds (mean embedding − clean embedding) to the final residual, by hand", () => {
    const all = edgeAttribution(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric }).edges;
    const circuit = all.filter((e) => !(e.from === 'embed' && e.to === 'logits'));
    const [v] = evaluateCircuits(noNorm, [circuit], { clean: CLEAN, metric, ablation: 'mean-positional', meanOver: CORRUPTED });
    const names = ['hook_embed', 'hook_pos_embed'];
    const a = noNorm.runWithCache(CLEAN, { names });
    const b = noNorm.runWithCache(CORRUPTED, { names });
    const shift = tf.tidy(() => names.map((n) => b.cache.get(n).mean(0, true).sub(a.cache.get(n))).reduce((s, t) => s.add(t)));
    const logits = noNorm.runWithHooks(CLEAN, { fwdHooks: [[actName('resid_post', 1), (x) => x.add(shift)]] });
    const byHand = metricValue(metric, logits);
    [a.logits, b.logits, shift, logits].forEach((t) => t.dispose());
    a.cache.dispose();
    b.cache.dispose();
    expect(Math.abs(v - byHand)).toBeLessThan(1e-4);
    expect(Math.abs(v - metricOf(noNorm, CLEAN))).toBeGreaterThan(1e-3);
  });

  it('an edge the model does not have is refused', () => {
    expect(headlensError(() => evaluateCircuits(noNorm, [[E('L1H0', 'L0H1.q', 1)]], { clean: CLEAN, corrupted: CORRUPTED, metric })).message).toMatch(/does not come before/);
    expect(headlensError(() => evaluateCircuits(noNorm, [[E('L0H0', 'L0.mlp', 1)]], { clean: CLEAN, corrupted: CORRUPTED, metric })).message).toMatch(/not an edge/);
    expect(headlensError(() => evaluateCircuits(noNorm, [[]], { clean: CLEAN, metric })).message).toMatch(/needs corrupted/);
  });
});

describe('patchHeadPatternDestSrc (TransformerLens get_act_patch_attn_head_pattern_dest_src_pos)', () => {
  it('each entry equals one full runWithHooks patching that (layer, head, dest, src) entry of the pattern alone', () => {
    const r = patchHeadPatternDestSrc(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric });
    expect(r.axes.map((a) => a.name)).toEqual(['layer', 'head', 'dest_pos', 'src_pos']);
    expect(r.shape).toEqual([2, 4, 5, 5]);
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [actName('pattern', 0), actName('pattern', 1)] });
    logits.dispose();
    let moved = 0;
    for (const [l, h, q, k] of [[0, 1, 4, 1], [1, 3, 3, 0], [1, 0, 4, 4], [0, 2, 1, 3]]) {
      const hook = (p: tf.Tensor) => tf.tidy(() => {
        const m = tf.buffer([1, 4, 5, 5]);
        m.set(1, 0, h, q, k);
        return tf.where(m.toTensor().cast('bool'), cache.get(actName('pattern', l)), p);
      });
      const out = gpt2.runWithHooks(CORRUPTED, { fwdHooks: [[actName('pattern', l), hook]] });
      const byHand = metricValue(metric, out);
      out.dispose();
      expect(Math.abs(r.get(l, h, q, k) - byHand), `L${l}H${h} ${q}←${k}`).toBeLessThan(1e-5);
      moved = Math.max(moved, Math.abs(byHand - (r.meta.corrupted as number)));
    }
    cache.dispose();
    expect(moved).toBeGreaterThan(1e-4); // some entry changes the metric
    expect(Math.abs(r.get(0, 2, 1, 3) - (r.meta.corrupted as number))).toBeLessThan(1e-6); // above the diagonal: 0 in both runs
  });
});

describe('leaks', () => {
  it('evaluateCircuits, circuitFaithfulness and patchHeadPatternDestSrc leave tf.memory().numTensors unchanged', () => {
    const all = edgeAttribution(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric }).edges;
    const some = topNCircuit(all, 20);
    const before = tf.memory().numTensors;
    evaluateCircuits(gpt2, [some, all.slice(0, 5)], { clean: CLEAN, corrupted: CORRUPTED, metric });
    circuitFaithfulness(gpt2, some, { clean: CLEAN, metric, ablation: 'mean', meanOver: CORRUPTED });
    patchHeadPatternDestSrc(noNorm, { clean: CLEAN, corrupted: CORRUPTED, metric });
    expect(tf.memory().numTensors).toBe(before);
  });
});
