/**
 * MAPS and Talking Heads on the shipped toy-lm (issue 19 item 6), numbers printed beside the earlier variants:
 * - MAPS name copying (each of toy-lm's 40 IOI names → itself, k = 1): the name mover L3H0 leads with the
 *   authors' MLP₀ source, and scores higher than on the raw embedding;
 * - Talking Heads: the S-inhibition head L2H0 → name mover L3H0's query, per rank-1 component of L2H0's OV,
 *   and the drop in L3H0's preference for IO over S2 at END when each component is removed.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { ioiTask } from '../src/interp/scores/tasks.js';
import { relationScores } from '../src/interp/weights/maps.js';
import { componentComposition, componentInhibition } from '../src/interp/weights/talking_heads.js';
import { loadPretrained, ZOO_DIR } from '../src/loading/load.js';
import { IOI_HELD_OUT, IOI_TRAIN_NAMES } from '../src/zoo/toy_lm_data.js';

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(path.join(ZOO_DIR, 'toy-lm'));
});
afterAll(() => model.dispose());

describe('weights analyses on toy-lm', () => {
  it('MAPS name copying (k = 1): L3H0 leads with the MLP₀ source, above its raw-embedding score', () => {
    const tok = model.tokenizer!;
    const names = [...IOI_TRAIN_NAMES, ...IOI_HELD_OUT].map((n) => tok.encode(` ${n}`)).filter((ids) => ids.length === 1).map((ids) => ids[0]);
    const pairs = names.map((n) => [n, n] as [number, number]);
    const mlp0 = relationScores(model, pairs, { k: 1 }).sort((a, b) => b.score - a.score);
    const raw = relationScores(model, pairs, { k: 1, source: 'raw' });
    const rawL3H0 = raw.find((r) => r.label === 'L3H0')!;
    console.log(`${names.length} names; MLP0 source: ${mlp0.slice(0, 3).map((r) => `${r.label} ${r.score.toFixed(3)}`).join(', ')}; raw: L3H0 ${rawL3H0.score.toFixed(3)}`);
    expect(mlp0[0]).toMatchObject({ label: 'L3H0', source: 'mlp0', sourceAtLayer0: false });
    expect(mlp0[0].score).toBeGreaterThan(rawL3H0.score);
    expect(raw.find((r) => r.label === 'L0H0')!.source).toBe('raw');
  });

  it('Talking Heads L2H0 → L3H0 (query): components above the 1/√d baseline; removing L2H0 lowers L3H0’s IO-over-S2 preference', () => {
    const c = componentComposition(model, { layer: 2, head: 0 }, { layer: 3, head: 0 }, 'query');
    const { prompts } = ioiTask(model, { samples: 8, seed: 3 });
    const end = prompts[0].clean.length - 1;
    const inh = componentInhibition(model, prompts.map((p) => p.clean), { layer: 2, head: 0 }, { layer: 3, head: 0 }, {
      query: prompts.map(() => end),
      inhibited: prompts.map((p) => p.s2Pos),
      other: prompts.map((p) => p.ioPos),
      components: [0, 1, 2, 3, 4, 5],
    });
    console.log(`composition: whole ${c.full.toFixed(3)}, baseline ${c.baseline.toFixed(3)}, components 0–5 ${c.scores.slice(0, 6).map((x) => x.toFixed(3)).join(' ')}`);
    console.log(`inhibition: clean ${inh.clean.toFixed(3)}, whole head removed −${inh.whole.toFixed(3)}, per component ${inh.perComponent.map((p) => `${p.component}:${p.score.toFixed(3)}`).join(' ')}`);
    expect(c.best.score).toBeGreaterThan(2 * c.baseline);
    expect(inh.whole).toBeGreaterThan(0.1);
    expect(Math.max(...inh.perComponent.map((p) => p.score))).toBeGreaterThan(0);
  });
});
