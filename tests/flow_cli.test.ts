/**
 * `headlens flow` in process on toy-lm: the JSON it prints equals the library's flowCorrelations on the same
 * tokens, [UNK] is the default blank token, --atlas writes the rollout-beside-flow section, bad input is a clear error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { flowCorrelations } from '../src/interp/attribution/attention_flow.js';
import { loadPretrained } from '../src/loading/load.js';
import { inProcess } from './cli_in_process.js';

const PROMPT = 'When Mary and John went to the store, John gave a drink to';

beforeAll(async () => {
  process.env.HEADLENS_BACKEND = 'wasm';
  await initBackend({ backend: 'wasm' });
});

describe('headlens flow', () => {
  it('--json prints rollout, flow, the importances and ρ as the library computes them; --atlas writes the page', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-flow-'));
    try {
      const atlas = path.join(dir, 'flow.html');
      const r = await inProcess('flow', '--model', 'toy-lm', '--prompt', PROMPT, '--pos=-3', '--json', '--atlas', atlas);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { tokens: number[]; output_pos: number; blank: number; flow: number[]; rollout: number[]; spearman: Record<string, Record<string, number>> };
      const model = await loadPretrained('toy-lm');
      expect(got.blank).toBe(model.tokenizer!.encode('[UNK]')[0]);
      expect(got.output_pos).toBe(got.tokens.length - 3);
      const lib = flowCorrelations(model, [got.tokens], { pos: -3, blank: got.blank });
      got.flow.forEach((v, k) => expect(v).toBeCloseTo(lib.scores.flow[0][k], 6));
      got.rollout.forEach((v, k) => expect(v).toBeCloseTo(lib.scores.rollout[0][k], 6));
      expect(got.spearman.flow.blank_out).toBeCloseTo(lib.rho.flow.blankOut!.perPrompt[0], 6);
      expect(got.flow).toHaveLength(got.output_pos + 1);
      const html = readFileSync(atlas, 'utf8');
      expect(html).toContain('id="attention-flow"');
      expect(html).toContain('flow vs blank out');
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a position outside the prompt is a clear error', async () => {
    const r = await inProcess('flow', '--model', 'toy-lm', '--prompt', 'Mary went', '--pos', '7');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/position 7 is outside the sequence/);
  });
});
