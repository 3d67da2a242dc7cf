/**
 * Batches of unequal length (src/model/padding.ts): a padded batch with its attention mask gives, at every real
 * position, the logits each prompt gives run alone (the reference: per-prompt runs, themselves checked against
 * transformers by parity.test.ts), for learned positions (gpt2), partial rotary with parallel blocks (pythia)
 * grouped-query rotary (llama) and a sliding window (mistral), padded on either side; generate with left padding decodes what each prompt
 * decodes alone.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { headlensError } from './expect_error.js';
import { FIXTURES } from './helpers.js';

// and a sliding window shorter than the longest prompt (mistral): padding is contiguous, so distances between real tokens are unchanged
const MODELS = ['gpt2', 'pythia-parallel', 'llama-gqa', 'mistral-sliding'];
const PROMPTS = [
  [3, 17, 42, 5, 99, 7, 23],
  [61, 8, 150, 4],
  [9, 33, 2, 71, 18, 120, 44, 6, 81, 15],
];
const models = new Map<string, HookedTransformer>();

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of MODELS) models.set(name, await loadPretrained(path.join(FIXTURES, name)));
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

/** Rows padded to one length with `id` on `side`, and their mask. */
function padRows(rows: number[][], side: 'left' | 'right', id = 0): { tokens: number[][]; attentionMask: number[][] } {
  const len = Math.max(...rows.map((r) => r.length));
  const fill = (n: number, x: number) => new Array<number>(n).fill(x);
  return {
    tokens: rows.map((r) => (side === 'left' ? [...fill(len - r.length, id), ...r] : [...r, ...fill(len - r.length, id)])),
    attentionMask: rows.map((r) => (side === 'left' ? [...fill(len - r.length, 0), ...fill(r.length, 1)] : [...fill(r.length, 1), ...fill(len - r.length, 0)])),
  };
}

/** Largest |padded − alone| over every real position of every row. */
function paddedVsAlone(model: HookedTransformer, side: 'left' | 'right'): number {
  const { tokens, attentionMask } = padRows(PROMPTS, side, 1);
  const padded = model.forward(tokens, { attentionMask });
  const all = padded.arraySync();
  padded.dispose();
  let worst = 0;
  PROMPTS.forEach((p, b) => {
    const alone = model.forward([p]);
    const ref = alone.arraySync()[0];
    alone.dispose();
    const start = side === 'left' ? tokens[b].length - p.length : 0;
    ref.forEach((row, i) => row.forEach((x, v) => (worst = Math.max(worst, Math.abs(all[b][start + i][v] - x)))));
  });
  return worst;
}

describe('a padded batch computes what each prompt computes alone', () => {
  for (const name of MODELS) {
    for (const side of ['left', 'right'] as const) {
      it(`forward(tokens, { attentionMask }) with ${side} padding on ${name}: every real position's logits within 1e-4`, () => {
        expect(paddedVsAlone(models.get(name)!, side)).toBeLessThan(1e-4);
      });
    }
  }

  it('runWithCache with left padding: no NaN anywhere, the padded rows of hook_pattern are 0, padded keys get 0 attention', () => {
    const model = models.get('llama-gqa')!;
    const { tokens, attentionMask } = padRows(PROMPTS, 'left');
    const { logits, cache } = model.runWithCache(tokens, { attentionMask, names: ['blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_post'] });
    expect(tf.tidy(() => tf.any(tf.isNaN(logits)).dataSync()[0])).toBe(0);
    expect(tf.tidy(() => tf.any(tf.isNaN(cache.get('blocks.1.hook_resid_post'))).dataSync()[0])).toBe(0);
    const pattern = cache.get('blocks.0.attn.hook_pattern').arraySync() as number[][][][]; // [batch, head, query_pos, key_pos]
    const padLen = tokens[1].length - PROMPTS[1].length; // row 1 is the shortest
    for (const head of pattern[1]) {
      head.forEach((row, q) => {
        if (q < padLen) expect(row.every((x) => x === 0)).toBe(true);
        else {
          expect(row.slice(0, padLen).every((x) => x === 0)).toBe(true);
          expect(row.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
        }
      });
    }
    cache.dispose();
    logits.dispose();
  });

  it('runWithHooksFrom(layer, resid, { attentionMask }) continues a padded run: the logits of the whole padded forward', () => {
    const model = models.get('gpt2')!;
    const { tokens, attentionMask } = padRows(PROMPTS, 'left', 1);
    const { logits, cache } = model.runWithCache(tokens, { attentionMask, names: ['blocks.1.hook_resid_pre'] });
    const rest = model.runWithHooksFrom(1, cache.get('blocks.1.hook_resid_pre') as tf.Tensor3D, { attentionMask });
    expect(tf.tidy(() => tf.max(tf.abs(rest.sub(logits))).dataSync()[0])).toBeLessThan(1e-5);
    tf.dispose([rest, logits]);
    cache.dispose();
  });

  it('a mask of all ones computes exactly the unmasked forward', () => {
    const model = models.get('gpt2')!;
    const ones = [PROMPTS[0].map(() => 1)];
    const a = model.forward([PROMPTS[0]], { attentionMask: ones });
    const b = model.forward([PROMPTS[0]]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([a, b]);
  });

  for (const name of MODELS) {
    it(`generate with left padding on ${name} decodes, row by row, what each prompt decodes alone`, () => {
      const model = models.get(name)!;
      const { tokens, attentionMask } = padRows(PROMPTS, 'left', 2);
      const batch = model.generate(tokens, { attentionMask, maxNewTokens: 6 });
      PROMPTS.forEach((p, b) => expect(batch.tokens[b], `row ${b}`).toEqual(model.generate([p], { maxNewTokens: 6 }).tokens[0]));
    });
  }

  it('generate refuses right padding, naming the fix', () => {
    const model = models.get('gpt2')!;
    const { tokens, attentionMask } = padRows(PROMPTS, 'right');
    const e = headlensError(() => model.generate(tokens, { attentionMask, maxNewTokens: 2 }));
    expect(e.message).toContain('padding after a real token');
    expect(e.fix).toContain("padding: 'left'");
  });

  it('a mask of the wrong shape, with values other than 0 and 1, or a row of padding only is an error', () => {
    const model = models.get('gpt2')!;
    expect(headlensError(() => model.forward([[1, 2, 3]], { attentionMask: [[1, 1]] })).message).toContain('attentionMask is [1, 2] but the tokens are [1, 3]');
    expect(headlensError(() => model.forward([[1, 2, 3]], { attentionMask: [[1, 2, 1]] })).message).toContain('not 0 or 1');
    expect(headlensError(() => model.forward([[1, 2, 3]], { attentionMask: [[0, 0, 0]] })).message).toContain('no real token');
  });

  it('toTokens(texts, { padding }) pads with EOS on the side asked and marks the padding 0', () => {
    const model = models.get('gpt2')!;
    const texts = ['Hello there, friend', 'Hi'];
    const ids = texts.map((t) => model.toTokens(t)[0]);
    const n = ids[0].length - ids[1].length;
    expect(n).toBeGreaterThan(0);
    const eos = model.cfg.eos_token_id;
    // the gpt2 fixture's EOS (50256) is outside its 257 tokens: padding falls back to 0 there
    const pad = eos !== null && eos < model.cfg.d_vocab ? eos : 0;
    const right = model.toTokens(texts, { padding: 'right' });
    expect(right.tokens).toEqual([ids[0], [...ids[1], ...new Array(n).fill(pad)]]);
    expect(right.attentionMask[1]).toEqual([...ids[1].map(() => 1), ...new Array(n).fill(0)]);
    const left = model.toTokens(texts, { padding: 'left' });
    expect(left.tokens[1]).toEqual([...new Array(n).fill(pad), ...ids[1]]);
    expect(left.attentionMask[1]).toEqual([...new Array(n).fill(0), ...ids[1].map(() => 1)]);
    expect(left.attentionMask[0].every((x) => x === 1)).toBe(true);
  });

  it('forward, runWithCache and generate with a padded batch, repeated, leave numTensors unchanged', () => {
    const model = models.get('llama-gqa')!;
    const { tokens, attentionMask } = padRows(PROMPTS, 'left');
    const once = () => {
      model.forward(tokens, { attentionMask }).dispose();
      const { logits, cache } = model.runWithCache(tokens, { attentionMask, names: 'all' });
      cache.dispose();
      logits.dispose();
      model.generate(tokens, { attentionMask, maxNewTokens: 2 });
      model.loss(tokens, { attentionMask }).dispose();
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) once();
    expect(tf.memory().numTensors).toBe(before);
  });
});
