/**
 * Sparse attention decomposition against path patching on toy-lm's IOI prompts (issue 23 item 3): the head
 * whose output, projected on the singular directions that carry the name mover L3H0's score at END (to IO,
 * and IO − S2), steers L3H0's query most is the head path patching finds on L3H0's query (ABC corruption,
 * logit difference): L2H0, the S-inhibition head. Their trace from L3H0 reaches it too.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { decomposeAttentionScore, traceSparseCircuit, upstreamHeadRanking } from '../src/interp/attribution/sparse_attention.js';
import { pathPatchingSweep } from '../src/interp/interventions/path_patching.js';
import { logitDiff } from '../src/interp/metrics.js';
import { ioiTask } from '../src/interp/scores/tasks.js';
import { loadPretrained, ZOO_DIR } from '../src/loading/load.js';

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(path.join(ZOO_DIR, 'toy-lm'));
});
afterAll(() => model.dispose());

describe('sparse attention decomposition on toy-lm IOI', () => {
  it('L3H0 at END → IO: 1–2 of 32 components carry the score; the top query-side writer is path patching’s top sender to L3H0’s query', () => {
    const { prompts } = ioiTask(model, { samples: 8, seed: 3 });
    const end = prompts[0].clean.length - 1;
    const items = prompts.map((p) => ({ tokens: p.clean, queryPos: end, keyPos: p.ioPos }));
    const sizes = items.map((p) => decomposeAttentionScore(model, p.tokens, 3, 0, p.queryPos, p.keyPos).carrying.length);
    const byQuery = (r: ReturnType<typeof upstreamHeadRanking>) => r.sort((a, b) => Math.abs(b.query) - Math.abs(a.query));
    const sparse = byQuery(upstreamHeadRanking(model, items, 3, 0));
    const contrast = byQuery(upstreamHeadRanking(model, prompts.map((p, i) => ({ ...items[i], contrastKeyPos: p.s2Pos })), 3, 0));
    const sweep = pathPatchingSweep(model, { kind: 'heads', heads: [{ layer: 3, head: 0 }], inputs: ['q'] }, {
      clean: prompts.map((p) => p.clean),
      corrupted: prompts.map((p) => p.corrupted),
      metric: logitDiff(prompts.map((p) => p.io), prompts.map((p) => p.s)),
    });
    const clean = sweep.meta.clean as number;
    const H = model.cfg.n_heads;
    const patched = Array.from(sweep.values, (v, i) => ({ label: `L${Math.floor(i / H)}H${i % H}`, effect: v - clean })).sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
    console.log(`carrying components (of 32): ${sizes.join(', ')}`);
    console.log(`sparse, query side (score to IO): ${sparse.slice(0, 4).map((s) => `${s.label} ${s.query.toFixed(2)}`).join(', ')}`);
    console.log(`sparse, query side (IO − S2):     ${contrast.slice(0, 4).map((s) => `${s.label} ${s.query.toFixed(2)}`).join(', ')}`);
    console.log(`path patching → L3H0.q: ${patched.slice(0, 4).map((s) => `${s.label} ${s.effect.toFixed(3)}`).join(', ')}`);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4); // sparse: a handful of 32
    expect(sparse[0].label).toBe(patched[0].label);
    expect(contrast[0].label).toBe(patched[0].label);
    expect(patched[0].effect).toBeLessThan(0); // corrupting it lowers the logit difference
    // their trace (toy-lm's L3H0 scores are negative everywhere, so the positive-score rule is off)
    const trace = traceSparseCircuit(model, prompts[0].clean, { layer: 3, head: 0, queryPos: end, keyPos: prompts[0].ioPos }, { positiveScoresOnly: false });
    console.log(trace.edges.map((e) => `${e.from}@${e.fromPos} → ${e.to} (${e.toQuery}→${e.toKey}) ${e.side} ${e.contribution.toFixed(3)}`).join('\n'));
    expect(trace.edges.some((e) => e.from === patched[0].label && e.to === 'L3H0' && e.side === 'query')).toBe(true);
  });
});
