/**
 * Long prompts (src/model/attention.ts, `attentionSlicing`): attention in slices of query rows when the whole
 * scores would be large and no hook needs them whole; a cache that keeps some query rows of the pattern gets
 * just those rows; `logits: 'last'` unembeds the last position alone. Checked against transformers' fixtures
 * (tests/fixtures/make_fixtures.py) with slices forced down to 2 query rows, and against the unsliced path.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { attentionSlicing } from '../src/model/attention.js';
import { FIXTURES, maxAbsDiff, reference } from './helpers.js';

// absolute positions (gpt2), partial rotary with parallel blocks (pythia), grouped-query rotary (llama), a sliding window (mistral)
const MODELS = ['gpt2', 'pythia-parallel', 'llama-gqa', 'mistral-sliding'];
const models = new Map<string, HookedTransformer>();
const defaultBytes = attentionSlicing.maxBytes;

/** Slices of `rows` query rows for this model and prompt shape. */
function sliceRows(m: HookedTransformer, batch: number, keyPos: number, rows: number): void {
  attentionSlicing.maxBytes = rows * batch * m.cfg.n_heads * keyPos * 4;
}

function refRows(name: string): number[][] {
  const ref = reference(name);
  const ids = ref.int32('input_ids');
  const [batch, pos] = ref.info('input_ids').shape;
  return Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * pos, (b + 1) * pos)));
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of MODELS) models.set(name, await loadPretrained(path.join(FIXTURES, name)));
});

afterEach(() => {
  attentionSlicing.maxBytes = defaultBytes;
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

describe.each(MODELS)('attention in slices of query rows: %s', (name) => {
  it("gives transformers' logits and hidden states, and the pattern rows a cache keeps", () => {
    const m = models.get(name)!;
    const ref = reference(name);
    const rows = refRows(name);
    const [batch, pos] = [rows.length, rows[0].length];
    sliceRows(m, batch, pos, 2);
    const keep = [0, 3, pos - 1];
    const { logits, cache } = m.runWithCache(rows, { names: (n) => /hook_resid_pre$|attn\.hook_pattern$/.test(n), patternRows: keep });
    expect(maxAbsDiff(logits, ref.float32('logits'), ref.info('logits').shape)).toBeLessThan(1e-4);
    for (let l = 0; l < m.cfg.n_layers; l++) {
      expect(maxAbsDiff(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`), ref.info(`hidden_states.${l}`).shape)).toBeLessThan(1e-4);
      const pat = cache.get(`blocks.${l}.attn.hook_pattern`);
      expect(pat.shape).toEqual([batch, m.cfg.n_heads, keep.length, pos]);
      // transformers' attentions [batch, head, query, key]: the kept rows
      const full = tf.tensor4d(ref.float32(`attentions.${l}`), ref.info(`attentions.${l}`).shape as [number, number, number, number]);
      const want = tf.gather(full, tf.tensor1d(keep, 'int32'), 2);
      expect(maxAbsDiff(pat, want.dataSync() as Float32Array, want.shape)).toBeLessThan(1e-4);
      tf.dispose([full, want]);
    }
    logits.dispose();
    cache.dispose();
  });

  it('equals the unsliced forward, with a KV cache too (generate), and frees every tensor', () => {
    const m = models.get(name)!;
    const rows = refRows(name);
    const whole = m.forward(rows);
    const greedyWhole = m.generate(rows, { maxNewTokens: 4 }).tokens;
    const before = tf.memory().numTensors;
    sliceRows(m, rows.length, rows[0].length, 3);
    const parts = m.forward(rows);
    expect(tf.tidy(() => tf.max(tf.abs(parts.sub(whole))).dataSync()[0])).toBeLessThan(1e-5);
    expect(m.generate(rows, { maxNewTokens: 4 }).tokens).toEqual(greedyWhole);
    tf.dispose([parts]);
    expect(tf.memory().numTensors).toBe(before);
    whole.dispose();
  });
});

describe('what turns slicing off, and the last position alone', () => {
  it('a hook that needs every row of the pattern sees it whole, and the run is unchanged', () => {
    const m = models.get('llama-gqa')!;
    const rows = refRows('llama-gqa');
    const plain = m.forward(rows);
    sliceRows(m, rows.length, rows[0].length, 1);
    const seen: number[][] = [];
    const hooked = m.runWithHooks(rows, { fwdHooks: [[(n) => n.endsWith('attn.hook_pattern'), (p) => void seen.push(p.shape)]] });
    expect(seen.length).toBe(m.cfg.n_layers);
    for (const s of seen) expect(s).toEqual([rows.length, m.cfg.n_heads, rows[0].length, rows[0].length]);
    expect(tf.tidy(() => tf.max(tf.abs(hooked.sub(plain))).dataSync()[0])).toBeLessThan(1e-5);
    tf.dispose([plain, hooked]);
  });

  it("logits: 'last' equals the last position of the full logits", () => {
    const m = models.get('gpt2')!;
    const rows = refRows('gpt2');
    const full = m.forward(rows);
    const last = m.runWithHooks(rows, { logits: 'last' });
    expect(last.shape).toEqual([rows.length, 1, m.cfg.d_vocab]);
    const want = full.slice([0, rows[0].length - 1, 0], [-1, 1, -1]);
    expect(tf.tidy(() => tf.max(tf.abs(last.sub(want))).dataSync()[0])).toBeLessThan(1e-6);
    tf.dispose([full, last, want]);
  });
});
