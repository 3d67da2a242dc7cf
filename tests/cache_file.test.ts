/**
 * cache.save(file) / ActivationCache.load(file, model): a cache survives a round trip through safetensors bit for
 * bit, keeps its hook order and its model (the residual helpers work on the loaded cache), and a file that is not
 * a cache of this model is an error that says so.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { ActivationCache } from '../src/hooks/activation_cache.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { encodeSafetensors, parseSafetensors } from '../src/util/safetensors.js';
import { headlensError } from './expect_error.js';
import { FIXTURES } from './helpers.js';

const TOKENS = [[3, 14, 15, 92, 65], [35, 89, 79, 32, 38]];
let gpt2: HookedTransformer;
let llama: HookedTransformer;
const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-cache-file-'));

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  llama = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
});

afterAll(() => {
  gpt2.dispose();
  llama.dispose();
});

/** The float32 bits of a tensor, for exact comparison (NaN payloads and −0 included). */
const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

describe('saving and loading an ActivationCache', () => {
  it("cache.save then ActivationCache.load gives the same names, in forward order, and the same float32 bits", async () => {
    const { logits, cache } = gpt2.runWithCache(TOKENS, { names: 'all' });
    const file = path.join(dir, 'all.safetensors');
    await cache.save(file);
    const loaded = await ActivationCache.load(file, gpt2);
    expect(loaded.keys()).toEqual(cache.keys());
    for (const n of cache.keys()) {
      expect(loaded.get(n).shape, n).toEqual(cache.get(n).shape);
      expect(bits(loaded.get(n)), n).toEqual(bits(cache.get(n)));
    }
    const meta = parseSafetensors(new Uint8Array(readFileSync(file)), file).metadata;
    expect(meta).toMatchObject({ format: 'headlens.ActivationCache', n_layers: String(gpt2.cfg.n_layers), d_model: String(gpt2.cfg.d_model) });
    // the loaded cache keeps its model: the residual helpers give what the original's give
    const a = cache.decomposeResid(undefined, { applyLn: true });
    const b = loaded.decomposeResid(undefined, { applyLn: true });
    expect(b.labels).toEqual(a.labels);
    expect(bits(b.stack)).toEqual(bits(a.stack));
    tf.dispose([a.stack, b.stack, logits]);
    cache.dispose();
    loaded.dispose();
  });

  it('a cache with patternRows and hook_result (GQA model) round-trips too', async () => {
    const { logits, cache } = llama.runWithCache(TOKENS, { names: (n) => n.endsWith('hook_pattern') || n.endsWith('hook_result') || n.endsWith('hook_k'), patternRows: 'last' });
    const file = path.join(dir, 'llama.safetensors');
    await cache.save(file);
    const loaded = await ActivationCache.load(file, llama);
    expect(loaded.keys()).toEqual(cache.keys());
    for (const n of cache.keys()) expect(bits(loaded.get(n)), n).toEqual(bits(cache.get(n)));
    cache.dispose();
    loaded.dispose();
    logits.dispose();
  });

  it('a file that is not safetensors, one of another model, one with a name that is no hook point, or a missing file is an error naming the file', async () => {
    const junk = path.join(dir, 'junk.safetensors');
    writeFileSync(junk, 'this is not a safetensors file at all');
    expect((await headlensErrorAsync(() => ActivationCache.load(junk, gpt2))).message).toContain(`${junk}: not a valid safetensors file`);

    const { logits, cache } = gpt2.runWithCache(TOKENS, { names: ['blocks.0.attn.hook_pattern'] });
    const file = path.join(dir, 'gpt2.safetensors');
    await cache.save(file);
    const e = await headlensErrorAsync(() => ActivationCache.load(file, llama));
    expect(e.message).toMatch(/holds activations of a model with n_layers|d_model/);
    expect(e.fix).toContain('the model that made it');
    cache.dispose();
    logits.dispose();

    const odd = path.join(dir, 'odd.safetensors');
    writeFileSync(odd, encodeSafetensors({ 'blocks.0.attn.hook_patern': { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }));
    const e2 = await headlensErrorAsync(() => ActivationCache.load(odd, gpt2));
    expect(e2.message).toContain("'blocks.0.attn.hook_patern' is not a hook point");
    expect(e2.fix).toContain("'blocks.0.attn.hook_pattern'");

    const e3 = await headlensErrorAsync(() => ActivationCache.load(path.join(dir, 'missing.safetensors'), gpt2));
    expect(e3.message).toContain('cannot read');
  });

  it('a file written by `headlens cache` (logits and input_ids beside the activations) loads its activations', async () => {
    const file = path.join(dir, 'cli.safetensors');
    const act = new Float32Array([1, 2, 3, 4]);
    writeFileSync(file, encodeSafetensors({
      logits: { dtype: 'F32', shape: [1], data: new Float32Array([0]) },
      input_ids: { dtype: 'I32', shape: [1, 1], data: new Int32Array([3]) },
      'blocks.1.hook_resid_post': { dtype: 'F32', shape: [1, 1, 4], data: act },
    }, { model: 'gpt2' }));
    const loaded = await ActivationCache.load(file, gpt2);
    expect(loaded.keys()).toEqual(['blocks.1.hook_resid_post']);
    expect(Array.from(loaded.get('blocks.1.hook_resid_post').dataSync())).toEqual([1, 2, 3, 4]);
    loaded.dispose();
  });

  it('save and load, repeated, leave numTensors unchanged', async () => {
    const { logits, cache } = gpt2.runWithCache(TOKENS, { names: 'all' });
    const file = path.join(dir, 'leak.safetensors');
    await cache.save(file);
    (await ActivationCache.load(file, gpt2)).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      await cache.save(file);
      (await ActivationCache.load(file, gpt2)).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    cache.dispose();
    logits.dispose();
  });
});

async function headlensErrorAsync(f: () => Promise<unknown>): Promise<{ message: string; fix?: string }> {
  try {
    await f();
  } catch (e) {
    return headlensError(() => {
      throw e;
    });
  }
  throw new Error('expected a HeadlensError');
}
