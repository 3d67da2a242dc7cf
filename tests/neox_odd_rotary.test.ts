/**
 * GPT-NeoX with an odd r = int(head_dim · rotary_pct): what transformers 5.x computes, written out by hand.
 *
 * modeling_rope_utils._compute_default_rope_parameters: dim = int(head_dim · partial_rotary_factor) = r,
 *   inv_freq = 1 / base ** (arange(0, r, 2) / r)                → ⌈r/2⌉ frequencies (r = 3: i = 0, 2 → 2 of them)
 * GPTNeoXRotaryEmbedding (LlamaRotaryEmbedding): emb = cat(freqs, freqs); cos, sin = emb.cos(), emb.sin()
 *                                                               → 2·⌈r/2⌉ = 4 columns
 * modeling_gpt_neox.apply_rotary_pos_emb: rotary_dim = cos.shape[-1] (4); q_rot, q_pass = q[..., :4], q[..., 4:];
 *   q_embed = cat(q_rot·cos + rotate_half(q_rot)·sin, q_pass), rotate_half(x) = cat(−x[2:4], x[0:2])
 * So 4 dimensions turn, at frequencies base^(−0/3) and base^(−2/3). headlens refused this config before.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { readModelConfig } from '../src/loading/load.js';
import { gptNeox } from '../src/loading/families/gpt_neox.js';
import { randomParams } from '../src/model/transformer.js';
import { FIXTURES } from './helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** The pythia fixture's config.json with 4 heads of 12 dimensions and rotary_pct 0.25: r = int(12 · 0.25) = 3. */
function oddConfigDir(partial = 0.25, hidden = 48): string {
  const hf = JSON.parse(readFileSync(path.join(FIXTURES, 'pythia-parallel', 'config.json'), 'utf8'));
  hf.hidden_size = hidden;
  hf.rope_parameters.partial_rotary_factor = partial;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-neox-odd-'));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hf));
  return dir;
}

it('a GPT-NeoX config with int(d_head · rotary_pct) = 3 loads: 4 rotated dimensions, frequencies over 3', () => {
  const { cfg } = readModelConfig(oddConfigDir());
  expect(cfg.d_head).toBe(12);
  expect(cfg.rotary_dim).toBe(4);
  expect(cfg.rotary_freq_dim).toBe(3);
  // saved back, it says rotary_pct 0.25 again (int(12 · 0.25) = 3)
  const back = gptNeox.hfConfig!(cfg) as { rotary_pct: number; rope_parameters: { partial_rotary_factor: number } };
  expect(back.rotary_pct).toBe(0.25);
  expect(back.rope_parameters.partial_rotary_factor).toBe(0.25);
});

it('hook_rot_q of an odd-r NeoX equals transformers\' rotation computed by hand (float64), and the rest of each head passes', () => {
  const { cfg } = readModelConfig(oddConfigDir());
  const model = new HookedTransformer(cfg, randomParams(cfg, { seed: 3, std: 0.5 }));
  const tokens = [[5, 17, 99, 3, 250, 42, 7]];
  const { logits, cache } = model.runWithCache(tokens, { names: (n) => n === 'blocks.0.attn.hook_q' || n === 'blocks.0.attn.hook_rot_q' });
  const q = cache.get('blocks.0.attn.hook_q').arraySync() as number[][][][]; // [batch, pos, head, d_head]
  const rot = cache.get('blocks.0.attn.hook_rot_q').arraySync() as number[][][][];
  const base = 10000;
  const r = 3;
  const inv = [0, 2].map((i) => 1 / base ** (i / r)); // arange(0, r, 2) / r
  let worst = 0;
  for (let p = 0; p < tokens[0].length; p++) {
    const cos = [...inv, ...inv].map((f) => Math.cos(p * f));
    const sin = [...inv, ...inv].map((f) => Math.sin(p * f));
    for (let h = 0; h < cfg.n_heads; h++) {
      const x = q[0][p][h];
      const half = [-x[2], -x[3], x[0], x[1]]; // rotate_half of the first 4
      const want = x.map((v, d) => (d < 4 ? v * cos[d] + half[d] * sin[d] : v));
      want.forEach((w, d) => (worst = Math.max(worst, Math.abs(w - rot[0][p][h][d]))));
    }
  }
  expect(worst).toBeLessThan(1e-5);
  // and it is not the even-r rotation of 2 dims (what dropping the odd dimension would give): position 1 moves dim 2 and 3
  expect(Math.abs(rot[0][1][0][2] - q[0][1][0][2])).toBeGreaterThan(1e-3);
  cache.dispose();
  logits.dispose();
  model.dispose();
});

it('an odd r whose 2·⌈r/2⌉ exceeds d_head (transformers fails too) is refused, naming why', () => {
  // hidden 12, 4 heads → d_head 3, rotary_pct 1 → r = 3 → 4 rotated dims > 3
  expect(() => readModelConfig(oddConfigDir(1, 12))).toThrow(/int\(d_head · rotary_pct\) is 3, odd, so transformers would rotate 4 dimensions/);
});
