/**
 * What a TransformerLens user reaches for first: toStrTokens, toSingleToken, toText, the BOS default of
 * toTokens, and loss. The loss's references: cross-entropy computed in float64 from transformers' own logits
 * (tests/fixtures/hf/NAME/reference.safetensors) and from headlens' logits by hand.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { headlensError } from './expect_error.js';
import { FIXTURES, reference } from './helpers.js';

let gpt2: HookedTransformer;
let llama: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  llama = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
});

afterAll(() => {
  gpt2.dispose();
  llama.dispose();
});

/** Next-token cross-entropy of flat logits [batch, pos, vocab] in float64: per position [batch][pos − 1]. */
function crossEntropy64(logits: ArrayLike<number>, ids: number[][], vocab: number): number[][] {
  const pos = ids[0].length;
  return ids.map((row, b) =>
    row.slice(1).map((next, i) => {
      const at = (b * pos + i) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, logits[at + v]);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[at + v] - max);
      return max + Math.log(sum) - logits[at + next];
    }),
  );
}

const mean = (xs: number[][]) => xs.flat().reduce((a, x) => a + x, 0) / xs.flat().length;

describe('loss', () => {
  for (const name of ['gpt2', 'pythia-parallel', 'llama-gqa']) {
    it(`model.loss(ids) on ${name} equals the cross-entropy of transformers' logits, computed in float64 (1e-4)`, async () => {
      const model = name === 'gpt2' ? gpt2 : name === 'llama-gqa' ? llama : await loadPretrained(path.join(FIXTURES, name));
      const ref = reference(name);
      const [batch, pos] = ref.info('input_ids').shape;
      const flat = Array.from(ref.int32('input_ids'));
      const ids = Array.from({ length: batch }, (_, b) => flat.slice(b * pos, (b + 1) * pos));
      const expected = crossEntropy64(ref.float32('logits'), ids, model.cfg.d_vocab);
      const loss = model.loss(ids);
      const perToken = model.loss(ids, { perToken: true });
      expect(loss.shape).toEqual([]);
      expect(perToken.shape).toEqual([batch, pos - 1]);
      expect(Math.abs(loss.dataSync()[0] - mean(expected))).toBeLessThan(1e-4);
      const got = perToken.arraySync();
      expected.forEach((row, b) => row.forEach((x, i) => expect(Math.abs(got[b][i] - x)).toBeLessThan(1e-4)));
      tf.dispose([loss, perToken]);
      if (model !== gpt2 && model !== llama) model.dispose();
    });
  }

  it("model.loss equals a float64 hand computation from the model's own logits (1e-5), and fwdHooks apply", () => {
    const ids = [[3, 17, 42, 5, 99, 7], [61, 8, 150, 4, 2, 9]];
    const hooks = [['blocks.0.attn.hook_z', (z: tf.Tensor) => z.mul(0)]] as [string, (z: tf.Tensor) => tf.Tensor][];
    for (const fwdHooks of [undefined, hooks]) {
      const logits = gpt2.runWithHooks(ids, { fwdHooks });
      const expected = crossEntropy64(logits.dataSync(), ids, gpt2.cfg.d_vocab);
      logits.dispose();
      const loss = gpt2.loss(ids, { fwdHooks });
      expect(Math.abs(loss.dataSync()[0] - mean(expected))).toBeLessThan(1e-5);
      loss.dispose();
    }
  });

  it('loss with an attention mask: per token, each row as alone, 0 where the position or the next is padding; the mean over the kept ones', () => {
    const rows = [[3, 17, 42, 5, 99], [61, 8, 150]];
    const padded = { tokens: [rows[0], [0, 0, ...rows[1]]], attentionMask: [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]] };
    const perToken = llama.loss(padded.tokens, { attentionMask: padded.attentionMask, perToken: true }).arraySync() as number[][];
    const alone = rows.map((r) => {
      const t = llama.loss([r], { perToken: true });
      const a = (t.arraySync() as number[][])[0];
      t.dispose();
      return a;
    });
    expect(perToken[0].map((x, i) => Math.abs(x - alone[0][i])).every((d) => d < 1e-4)).toBe(true);
    expect(perToken[1].slice(0, 2)).toEqual([0, 0]);
    perToken[1].slice(2).forEach((x, i) => expect(Math.abs(x - alone[1][i])).toBeLessThan(1e-4));
    const m = llama.loss(padded.tokens, { attentionMask: padded.attentionMask });
    const kept = [...alone[0], ...alone[1]];
    expect(Math.abs(m.dataSync()[0] - kept.reduce((a, x) => a + x, 0) / kept.length)).toBeLessThan(1e-4);
    m.dispose();
  });

  it('loss of one-token rows is an error saying nothing is predicted', () => {
    expect(headlensError(() => gpt2.loss([[5]])).message).toContain('nothing is predicted');
  });

  it('loss, 50 times, leaves numTensors unchanged', () => {
    const ids = [[3, 17, 42, 5]];
    gpt2.loss(ids).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      gpt2.loss(ids).dispose();
      gpt2.loss(ids, { perToken: true }).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('tokens as strings', () => {
  it('toStrTokens(text) is one string per token, each id decoded alone, joining back to the text', () => {
    const text = 'When Mary and John went to the store';
    const strs = gpt2.toStrTokens(text);
    const ids = gpt2.toTokens(text)[0];
    expect(strs).toEqual(ids.map((id) => gpt2.toText([id])));
    expect(strs.join('')).toBe(text);
    expect(gpt2.toStrTokens(ids)).toEqual(strs);
    expect(gpt2.toStrTokens([ids, ids])).toEqual([strs, strs]);
    expect(gpt2.toStrTokens([text, text])).toEqual([strs, strs]);
    const t = tf.tensor2d([ids], [1, ids.length], 'int32');
    expect(gpt2.toStrTokens(t)).toEqual([strs]);
    t.dispose();
  });

  it('toSingleToken gives the id of a one-token text, and names how a longer text splits', () => {
    // the fixture's tokenizer is byte-level with few merges: one letter is one token
    const [id] = gpt2.toTokens('a', { prependBos: false })[0];
    expect(gpt2.toTokens('a', { prependBos: false })[0]).toHaveLength(1);
    expect(gpt2.toSingleToken('a')).toBe(id);
    const e = headlensError(() => gpt2.toSingleToken(' Mary and John'));
    const parts = gpt2.toStrTokens(' Mary and John', { prependBos: false });
    expect(e.message).toContain(`is ${parts.length} tokens`);
    for (const p of parts) expect(e.message).toContain(JSON.stringify(p));
    expect(e.fix).toContain('one token');
    expect(headlensError(() => gpt2.toSingleToken('')).message).toContain('is 0 tokens');
  });
});

describe('BOS', () => {
  it("toTokens prepends the config's BOS by default where the vocabulary has it (llama), once, and not with prependBos: false", () => {
    const bos = llama.cfg.bos_token_id!;
    expect(llama.bosToken()).toBe(bos);
    const plain = llama.tokenizer!.encode('hello world');
    const withBos = llama.toTokens('hello world')[0];
    expect(withBos[0]).toBe(bos);
    expect(withBos.slice(1)).toEqual(plain[0] === bos ? plain.slice(1) : plain);
    expect(withBos.filter((x, i) => i < 2 && x === bos)).toHaveLength(1);
    expect(llama.toTokens('hello world', { prependBos: false })[0]).toEqual(plain);
    expect(llama.toStrTokens('hello world')[0]).toBe(llama.toText([bos]));
  });

  it("toTokens prepends nothing by default where the config's BOS is outside the vocabulary (gpt2 fixture: 50256 of 257), and prependBos: true says why not", () => {
    expect(gpt2.bosToken()).toBeNull();
    expect(gpt2.toTokens('hello')[0]).toEqual(gpt2.tokenizer!.encode('hello'));
    const e = headlensError(() => gpt2.toTokens('hello', { prependBos: true }));
    expect(e.message).toContain('bos_token_id 50256, outside its 257-token vocabulary');
  });
});
