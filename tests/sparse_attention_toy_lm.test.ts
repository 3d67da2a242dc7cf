/**
 * Sparse attention decomposition against path patching on toy-lm's IOI prompts (issue 23 item 3): the head
 * whose output moves the name mover L3H0's query towards IO and away from S2 (the contrast IO − S2 at END)
 * is the head path patching finds on L3H0's query (ABC corruption, logit difference).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { decomposeAttentionScore, upstreamHeadRanking } from '../src/interp/attribution/sparse_attention.js';
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
  it('L3H0 at END: a few of 32 components carry IO − S2, and the top query-side writer is path patching’s top sender to L3H0’s query', () => {
    const { prompts } = ioiTask(model, { samples: 8, seed: 3 });
    const end = prompts[0].clean.length - 1;
    const items = prompts.map((p) => ({ tokens: p.clean, queryPos: end, keyPos: p.ioPos, contrastKeyPos: p.s2Pos }));
    const sizes = items.map((p) => decomposeAttentionScore(model, p.tokens, 3, 0, p.queryPos, p.keyPos, { contrastKeyPos: p.contrastKeyPos }).carrying.length);
    const sparse = upstreamHeadRanking(model, items, 3, 0).sort((a, b) => Math.abs(b.query) - Math.abs(a.query));
    const sweep = pathPatchingSweep(model, { kind: 'heads', heads: [{ layer: 3, head: 0 }], inputs: ['q'] }, {
      clean: prompts.map((p) => p.clean),
      corrupted: prompts.map((p) => p.corrupted),
      metric: logitDiff(prompts.map((p) => p.io), prompts.map((p) => p.s)),
    });
    const clean = sweep.meta.clean as number;
    const H = model.cfg.n_heads;
    const patched = Array.from(sweep.values, (v, i) => ({ label: `L${Math.floor(i / H)}H${i % H}`, effect: v - clean })).sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
    console.log(`carrying components (of 32): ${sizes.join(', ')}`);
    console.log(`sparse, query side: ${sparse.slice(0, 4).map((s) => `${s.label} ${s.query.toFixed(2)}`).join(', ')}`);
    console.log(`path patching → L3H0.q: ${patched.slice(0, 4).map((s) => `${s.label} ${s.effect.toFixed(3)}`).join(', ')}`);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(8); // sparse: at most a quarter of the components
    expect(sparse[0].label).toBe(patched[0].label);
    expect(sparse[0].query).toBeGreaterThan(0); // it raises IO over S2
    expect(patched[0].effect).toBeLessThan(0); // and corrupting it lowers the logit difference
  });
});
