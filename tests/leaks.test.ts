/**
 * Leak tests, as tfjs-layers writes them: after one warm-up call (which may allocate what lives for the
 * process, such as backend state), many more calls leave `tf.memory().numTensors` where it was.
 * Kept small (the gpt2 fixture, 4 tokens) so 1,000 iterations take seconds on a slow CPU.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

const ITERATIONS = 1000;
const TOKENS = [[3, 14, 15, 92]];
const GPT2 = path.join(FIXTURES, 'gpt2');

let model: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(GPT2);
});

afterAll(() => model.dispose());

/** numTensors after one warm-up call of `fn` and after `n` more. */
function tensorsAround(fn: () => void, n: number): { before: number; after: number } {
  fn();
  const before = tf.memory().numTensors;
  for (let i = 0; i < n; i++) fn();
  return { before, after: tf.memory().numTensors };
}

describe('no tensor outlives its owner', () => {
  it('runWithHooks with a hook that returns a new tensor, 1,000 times, leaves numTensors unchanged', () => {
    const { before, after } = tensorsAround(() => {
      const logits = model.runWithHooks(TOKENS, {
        fwdHooks: [
          ['blocks.0.attn.hook_z', (z) => z.mul(0.5)],
          ['blocks.1.hook_resid_pre', (x) => tf.zerosLike(x).add(x)],
          // attn.hook_result is computed only when hooked: that path must free its tensors too
          ['blocks.1.attn.hook_result', (r) => r.neg()],
        ],
      });
      logits.dispose();
    }, ITERATIONS);
    expect(after).toBe(before);
  });

  it("runWithCache(names 'all') + cache.dispose() + logits.dispose(), 1,000 times, leaves numTensors unchanged", () => {
    const { before, after } = tensorsAround(() => {
      const { logits, cache } = model.runWithCache(TOKENS, { names: 'all' });
      cache.dispose();
      logits.dispose();
    }, ITERATIONS);
    expect(after).toBe(before);
  });

  it('runWithCache with stopAtLayer, stack and head, disposed by the caller, leaves numTensors unchanged', () => {
    const { before, after } = tensorsAround(() => {
      const { logits, cache } = model.runWithCache(TOKENS, { stopAtLayer: 2, fwdHooks: [['blocks.0.hook_resid_post', (x) => x.mul(1)]] });
      cache.stack('pattern').dispose();
      cache.head('blocks.1.attn.hook_z', 3).dispose();
      cache.dispose();
      logits.dispose();
    }, 100);
    expect(after).toBe(before);
  });

  it('a hook that throws inside runWithCache leaks nothing: neither the cached activations nor the intermediates', () => {
    const fail = new Error('hook failed');
    const { before, after } = tensorsAround(() => {
      expect(() =>
        model.runWithCache(TOKENS, {
          names: 'all',
          fwdHooks: [
            ['blocks.0.hook_resid_mid', (x) => x.mul(2)],
            [
              'blocks.1.mlp.hook_post',
              () => {
                throw fail;
              },
            ],
          ],
        }),
      ).toThrow(fail);
    }, 100);
    expect(after).toBe(before);
  });

  it('a hook returning the wrong shape inside runWithCache leaks nothing', () => {
    const { before, after } = tensorsAround(() => {
      expect(() => model.runWithCache(TOKENS, { fwdHooks: [['blocks.1.attn.hook_pattern', (p) => p.sum(-1)]] })).toThrow(/returned shape/);
    }, 100);
    expect(after).toBe(before);
  });

  it('forward with bad token ids leaks nothing, and leaves a token tensor to its owner', () => {
    const ok = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const rank3 = tf.tensor3d([[[1]]], [1, 1, 1], 'int32');
    const outOfVocab = tf.tensor1d([1, 2000], 'int32');
    const { before, after } = tensorsAround(() => {
      expect(() => model.forward([[1, 2, 100000]])).toThrow(/vocabulary/);
      expect(() => model.forward(rank3)).toThrow(/\[batch, pos\]/);
      expect(() => model.forward(outOfVocab)).toThrow(/vocabulary/);
      model.forward(ok).dispose();
    }, 20);
    expect(after).toBe(before);
    expect([ok, rank3, outOfVocab].some((t) => t.isDisposed)).toBe(false);
    [ok, rank3, outOfVocab].forEach((t) => t.dispose());
  });

  it('loadPretrained + model.dispose() leaves numTensors unchanged', async () => {
    const once = async () => (await loadPretrained(GPT2)).dispose();
    await once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await once();
    expect(tf.memory().numTensors).toBe(before);
    const llama = path.join(FIXTURES, 'llama-mqa-tied-bias-bf16'); // tied W_U is a transpose, biases added as zeros
    await (await loadPretrained(llama)).dispose();
    const before2 = tf.memory().numTensors;
    await (await loadPretrained(llama)).dispose();
    expect(tf.memory().numTensors).toBe(before2);
  });
});

describe('a forward holds one residual stream at a time', () => {
  it("frees each block's output once the next block has read it (bytes alive do not grow with depth), and hooks still see and keep theirs", async () => {
    const { HookedTransformer } = await import('../src/hooks/hooked_transformer.js');
    const { makeConfig } = await import('../src/model/config.js');
    const deep = HookedTransformer.random(makeConfig({ n_layers: 8, d_model: 64, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 50, n_ctx: 64, act_fn: 'gelu_new', normalization_type: 'LN', positional_embedding_type: 'standard' } as never), { seed: 1 });
    const tokens = [Array.from({ length: 48 }, (_, i) => i % 50)];
    const resid = 48 * 64 * 4; // bytes of one [1, 48, 64] residual stream
    // bytes alive at the start of blocks 2 and 7, read by hooks that only look (and return nothing)
    const seen: Record<string, number> = {};
    const look = (x: tf.Tensor, { name }: { name: string }) => void (seen[name] = tf.memory().numBytes);
    deep.runWithHooks(tokens).dispose(); // the first forward makes each layer's fused QKV weights (kept by the model)
    const logits = deep.runWithHooks(tokens, { fwdHooks: [['blocks.2.hook_resid_pre', look], ['blocks.7.hook_resid_pre', look]] as never });
    logits.dispose();
    // between blocks 2 and 7 five blocks ran; with every block output alive until the end that is 5 more streams
    expect(seen['blocks.7.hook_resid_pre'] - seen['blocks.2.hook_resid_pre']).toBeLessThan(2 * resid);
    // a hook that stashes a block's output and reads it later in the same run still finds it
    let stashed: tf.Tensor | undefined;
    let later = -1;
    const out = deep.runWithHooks(tokens, {
      fwdHooks: [
        ['blocks.1.hook_resid_post', (x: tf.Tensor) => void (stashed = x)],
        ['blocks.6.hook_resid_post', () => void (later = stashed!.isDisposed ? -1 : (stashed!.dataSync()[0] as number))],
      ] as never,
    });
    out.dispose();
    expect(Number.isFinite(later) && later !== -1).toBe(true);
    const before = tf.memory().numTensors;
    deep.runWithHooks(tokens).dispose();
    expect(tf.memory().numTensors).toBe(before);
    deep.dispose();
  });
});
