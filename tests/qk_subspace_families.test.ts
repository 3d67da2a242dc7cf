/** The query/key subspace analysis (correct_letter.ts) on every HF fixture family: its recomputed attention must be the run's. */
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { loadPretrained } from '../src/loading/load.js';
import { qkSubspaceAnalysis } from '../src/interp/scores/correct_letter.js';
import { FIXTURES, fixtureModels } from './helpers.js';
import path from 'node:path';
beforeAll(async () => { await initBackend({ backend: 'wasm' }); });
it('qkSubspaceAnalysis at rank d_head recomputes the clean attention on every family (rotary, GQA/MQA, sliding window)', async () => {
  for (const name of fixtureModels()) {
    const m = await loadPretrained(path.join(FIXTURES, name));
    const n = Math.min(m.cfg.n_ctx, 12);
    const prompts = [0, 1, 2].map((i) => ({ tokens: Array.from({ length: n }, (_, j) => (j * 7 + i * 3 + 1) % m.cfg.d_vocab), labelTokens: [1, 2, 3], labelPositions: [2, 4, 6], correct: i }));
    const r = qkSubspaceAnalysis(m, { layer: m.cfg.n_layers - 1, head: m.cfg.n_heads - 1 }, prompts);
    const last = r.rows[r.rows.length - 1];
    expect(last.attention).toBeCloseTo(r.full.attention, 5);
    m.dispose();
  }
});
