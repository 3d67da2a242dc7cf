/**
 * What runWithCache, runWithHooks, addHook and ActivationCache promise: which activations are kept,
 * that hooks change the run only as asked and only for as long as asked, and that misuse is a
 * HeadlensError that says how to fix it.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';
import { headlensError } from './expect_error.js';

// gpt2 fixture: 2 layers, 4 heads, d_model 32, d_head 8, vocab 257; llama-gqa: 8 heads over 2 kv heads
let gpt2: HookedTransformer;
let llama: HookedTransformer;

const CLEAN = [
  [10, 20, 30, 40, 50, 60],
  [11, 21, 31, 41, 51, 61],
];
const CORRUPTED = [
  [99, 98, 97, 96, 95, 94],
  [5, 4, 3, 2, 1, 0],
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  llama = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
});

afterAll(() => {
  gpt2.dispose();
  llama.dispose();
});

/** Every element of a tensor as raw bits, so equality is bit-identity (NaN and -0 included). */
function bits(t: tf.Tensor): number[] {
  const d = t.dataSync() as Float32Array;
  return Array.from(new Uint32Array(d.buffer, d.byteOffset, d.length));
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

/** Runs `fn` with the plain forward's logits of `tokens`, disposing them after. */
function withLogits<T>(model: HookedTransformer, tokens: number[][], fn: (logits: tf.Tensor3D) => T): T {
  const logits = model.forward(tokens);
  try {
    return fn(logits);
  } finally {
    logits.dispose();
  }
}

describe('runWithCache', () => {
  it('runWithCache(tokens, {names}) keeps only the named hooks', () => {
    const names = ['blocks.1.attn.hook_pattern', 'hook_embed', 'blocks.0.hook_resid_post'];
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names });
    expect(cache.keys().sort()).toEqual([...names].sort());
    expect(cache.size).toBe(3);
    expect(cache.has('blocks.0.attn.hook_pattern')).toBe(false);
    expect(cache.bytes).toBe((2 * 4 * 6 * 6 + 2 * 6 * 32 * 2) * 4);
    cache.dispose();
    logits.dispose();
  });

  it('runWithCache(tokens, {names: predicate}) keeps the names the predicate accepts, attn.hook_result included', () => {
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: (n) => n.startsWith('blocks.1.attn.') });
    expect(cache.keys()).toEqual([
      'blocks.1.attn.hook_q',
      'blocks.1.attn.hook_k',
      'blocks.1.attn.hook_v',
      'blocks.1.attn.hook_attn_scores',
      'blocks.1.attn.hook_pattern',
      'blocks.1.attn.hook_z',
      'blocks.1.attn.hook_result',
    ]);
    cache.dispose();
    logits.dispose();
  });

  it("runWithCache(tokens, {names: 'all'}) keeps every hook point but attn.hook_result, and so does the default", () => {
    for (const names of ['all' as const, undefined]) {
      const { logits, cache } = gpt2.runWithCache(CLEAN, names ? { names } : {});
      expect(cache.keys()).toEqual(gpt2.hookNames());
      expect(cache.keys().some((k) => k.endsWith('hook_result'))).toBe(false);
      cache.dispose();
      logits.dispose();
    }
  });

  it('runWithCache(tokens) returns the same logits as forward(tokens), bit for bit', () => {
    const { logits, cache } = llama.runWithCache(CLEAN);
    withLogits(llama, CLEAN, (plain) => expect(bits(logits)).toEqual(bits(plain)));
    cache.dispose();
    logits.dispose();
  });

  it('runWithCache(tokens, {fwdHooks}) caches the activation after the hook changed it', () => {
    const name = 'blocks.0.hook_resid_mid';
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [name], fwdHooks: [[name, (x) => tf.zerosLike(x)]] });
    expect(tf.tidy(() => cache.get(name).abs().max().dataSync()[0])).toBe(0);
    cache.dispose();
    logits.dispose();
  });
});

describe('runWithHooks', () => {
  it('runWithHooks zero-ablating one head of hook_z changes the logits', () => {
    const ablateHead1 = (z: tf.Tensor) => z.mul(tf.tensor([1, 0, 1, 1]).reshape([1, 1, 4, 1])); // [batch, pos, head, d_head]
    const ablated = gpt2.runWithHooks(CLEAN, { fwdHooks: [['blocks.0.attn.hook_z', ablateHead1]] });
    withLogits(gpt2, CLEAN, (plain) => expect(maxDiff(ablated, plain)).toBeGreaterThan(1e-4));
    ablated.dispose();
  });

  it('runWithHooks with hooks that return nothing gives logits bit-identical to forward', () => {
    let calls = 0;
    const logits = llama.runWithHooks(CLEAN, {
      fwdHooks: [
        [
          (n) => !n.endsWith('hook_result'),
          () => {
            calls++;
          },
        ],
      ],
    });
    expect(calls).toBe(llama.hookNames().length);
    withLogits(llama, CLEAN, (plain) => expect(bits(logits)).toEqual(bits(plain)));
    logits.dispose();
  });

  it('runWithHooks runs several hooks at one point in order, each seeing the previous one’s output', () => {
    const name = 'blocks.1.hook_resid_pre';
    const seen: number[] = [];
    const logits = gpt2.runWithHooks(CLEAN, {
      fwdHooks: [
        [name, (x) => tf.onesLike(x)],
        [
          name,
          (x) => {
            seen.push(x.max().dataSync()[0], x.min().dataSync()[0]);
          },
        ],
      ],
    });
    expect(seen).toEqual([1, 1]);
    logits.dispose();
  });

  it('a hook that throws: the error propagates, the hooks are gone and no tensor is left behind', () => {
    const before = tf.memory().numTensors;
    const original = withLogits(gpt2, CLEAN, bits);
    const boom = new Error('boom');
    expect(() =>
      gpt2.runWithHooks(CLEAN, {
        fwdHooks: [
          ['blocks.0.hook_resid_pre', (x) => x.mul(2)],
          [
            'blocks.1.attn.hook_pattern',
            () => {
              throw boom;
            },
          ],
        ],
      }),
    ).toThrow(boom);
    expect(tf.memory().numTensors).toBe(before);
    withLogits(gpt2, CLEAN, (after) => expect(bits(after)).toEqual(original));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('addHook persists across runs until resetHooks()', () => {
    let calls = 0;
    const original = withLogits(gpt2, CLEAN, bits);
    gpt2.addHook('blocks.1.hook_resid_pre', (x) => {
      calls++;
      return x.mul(0);
    });
    try {
      const b = gpt2.runWithHooks(CLEAN);
      const c = gpt2.runWithHooks(CLEAN, { fwdHooks: [['blocks.0.hook_resid_pre', () => undefined]] });
      const { logits: d, cache } = gpt2.runWithCache(CLEAN, { names: ['blocks.1.hook_resid_pre'] });
      const f = gpt2.forward(CLEAN);
      expect(calls).toBe(4);
      expect(bits(f)).toEqual(bits(b));
      f.dispose();
      expect(bits(b)).not.toEqual(original);
      expect(bits(c)).toEqual(bits(b));
      expect(bits(d)).toEqual(bits(b));
      expect(tf.tidy(() => cache.get('blocks.1.hook_resid_pre').abs().max().dataSync()[0])).toBe(0);
      [b, c, d].forEach((t) => t.dispose());
      cache.dispose();
    } finally {
      gpt2.resetHooks();
    }
    const e = gpt2.runWithHooks(CLEAN);
    expect(calls).toBe(4);
    expect(bits(e)).toEqual(original);
    e.dispose();
  });

  it("an unknown hook name is a HeadlensError suggesting the nearest name: 'blocks.0.attn.hook_patern' → 'blocks.0.attn.hook_pattern'", () => {
    const typo = 'blocks.0.attn.hook_patern';
    const before = tf.memory().numTensors;
    for (const run of [
      () => gpt2.runWithHooks(CLEAN, { fwdHooks: [[typo, (x) => x]] }),
      () => gpt2.runWithCache(CLEAN, { names: [typo] }),
      () => gpt2.runWithCache(CLEAN, { fwdHooks: [[typo, (x) => x]] }),
      () => gpt2.addHook(typo, (x) => x),
    ]) {
      const e = headlensError(run);
      expect(e.message).toContain(`'${typo}'`);
      expect(e.message).toContain("did you mean 'blocks.0.attn.hook_pattern'");
    }
    expect(headlensError(() => gpt2.runWithCache(CLEAN, { names: ['blocks.1.hook_resid_mdi'] })).message).toContain("'blocks.1.hook_resid_mid'");
    // a name of another family (rotary) is unknown here too
    expect(headlensError(() => gpt2.runWithHooks(CLEAN, { fwdHooks: [['blocks.0.attn.hook_rot_q', (x) => x]] })).message).toContain('unknown hook point');
    // the failed addHook added nothing
    withLogits(gpt2, CLEAN, (plain) => {
      const l = gpt2.runWithHooks(CLEAN);
      expect(bits(l)).toEqual(bits(plain));
      l.dispose();
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a hook returning the wrong shape is a HeadlensError naming both shapes, and leaks nothing', () => {
    const before = tf.memory().numTensors;
    const e = headlensError(() => gpt2.runWithHooks(CLEAN, { fwdHooks: [['blocks.0.hook_resid_pre', (x) => x.slice([0, 0, 0], [2, 6, 16])]] }));
    expect(e.message).toContain('blocks.0.hook_resid_pre');
    expect(e.message).toContain('[2,6,16]');
    expect(e.message).toContain('[2,6,32]');
    const e2 = headlensError(() => gpt2.runWithCache(CLEAN, { fwdHooks: [['blocks.0.attn.hook_pattern', (x) => x.reshape([-1])]] }));
    expect(e2.message).toContain('blocks.0.attn.hook_pattern');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a hook returning something that is not a tensor is a HeadlensError', () => {
    const notATensor = (() => [1, 2, 3]) as unknown as () => tf.Tensor;
    const e = headlensError(() => gpt2.runWithHooks(CLEAN, { fwdHooks: [['hook_embed', notATensor]] }));
    expect(e.message).toContain('hook_embed');
  });

  it('hooks see the layer index of their hook point', () => {
    const layers: Record<string, number | undefined> = {};
    const l = gpt2.runWithHooks(CLEAN, {
      fwdHooks: [
        [
          () => true,
          (_x, { name, layer }) => {
            layers[name] = layer;
          },
        ],
      ],
    });
    l.dispose();
    expect(layers['hook_embed']).toBeUndefined();
    expect(layers['ln_final.hook_normalized']).toBeUndefined();
    expect(layers['blocks.0.attn.hook_z']).toBe(0);
    expect(layers['blocks.1.mlp.hook_post']).toBe(1);
  });
});

describe('patching and stopAtLayer', () => {
  it('patching the clean resid_pre of layer 0 into a corrupted run gives the clean logits exactly', () => {
    for (const model of [gpt2, llama]) {
      for (const layer of [0, 1]) {
        const name = `blocks.${layer}.hook_resid_pre`;
        const { logits: clean, cache } = model.runWithCache(CLEAN, { names: [name] });
        const corrupted = model.forward(CORRUPTED);
        expect(maxDiff(corrupted, clean)).toBeGreaterThan(1e-3);
        const patched = model.runWithHooks(CORRUPTED, { fwdHooks: [[name, () => cache.get(name)]] });
        expect(bits(patched), `${model.cfg.model_name} ${name}`).toEqual(bits(clean));
        expect(cache.get(name).isDisposed).toBe(false); // the run did not free the cache's tensor
        [clean, corrupted, patched].forEach((t) => t.dispose());
        cache.dispose();
      }
    }
  });

  it('runWithHooks(tokens, {stopAtLayer: l}) returns resid_pre of layer l, equal to the cached one', () => {
    const { logits, cache } = llama.runWithCache(CLEAN, { names: ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre', 'blocks.1.hook_resid_post'] });
    for (const l of [0, 1]) {
      const resid = llama.runWithHooks(CLEAN, { stopAtLayer: l });
      expect(resid.shape).toEqual([2, 6, 64]);
      expect(bits(resid)).toEqual(bits(cache.get(`blocks.${l}.hook_resid_pre`)));
      resid.dispose();
    }
    const end = llama.runWithHooks(CLEAN, { stopAtLayer: 2 });
    expect(bits(end)).toEqual(bits(cache.get('blocks.1.hook_resid_post')));
    end.dispose();
    const { logits: stopped, cache: partial } = llama.runWithCache(CLEAN, { stopAtLayer: 1 });
    expect(partial.keys()).toEqual(llama.hookNames().filter((n) => n === 'hook_embed' || n.startsWith('blocks.0.')));
    partial.dispose();
    stopped.dispose();
    for (const bad of [-1, 3, 0.5]) expect(headlensError(() => llama.runWithHooks(CLEAN, { stopAtLayer: bad })).message).toContain('stopAtLayer');
    cache.dispose();
    logits.dispose();
  });
});

describe('ownership: caller and cache never share a tensor handle', () => {
  it('runWithCache(tokens, {stopAtLayer}) returns a tensor the caller owns: disposing it leaves the cache whole', () => {
    for (const l of [1, 2]) {
      const { logits: resid, cache } = llama.runWithCache(CLEAN, { stopAtLayer: l });
      const expected = bits(cache.get(`blocks.${l - 1}.hook_resid_post`));
      expect(bits(resid)).toEqual(expected);
      resid.dispose();
      expect(bits(cache.get(`blocks.${l - 1}.hook_resid_post`))).toEqual(expected);
      cache.dispose();
    }
    // rotary models have no pos_embed: at layer 0 the stream is hook_embed itself
    const { logits: embed, cache } = llama.runWithCache(CLEAN, { stopAtLayer: 0 });
    embed.dispose();
    expect(cache.get('hook_embed').isDisposed).toBe(false);
    cache.dispose();
  });

  it("patching with runWithCache: a hook returning another cache's tensor leaves that cache whole after dispose", () => {
    const name = 'blocks.1.hook_resid_pre';
    const { logits: clean, cache: cleanCache } = gpt2.runWithCache(CLEAN, { names: [name] });
    const { logits: patched, cache: patchedCache } = gpt2.runWithCache(CORRUPTED, { names: [name], fwdHooks: [[name, () => cleanCache.get(name)]] });
    expect(bits(patched)).toEqual(bits(clean));
    patchedCache.dispose();
    expect(cleanCache.get(name).isDisposed).toBe(false);
    // and stopping right after the patched point returns a tensor of the caller's, not the clean cache's
    const stopped = gpt2.runWithHooks(CORRUPTED, { stopAtLayer: 1, fwdHooks: [['blocks.0.hook_resid_post', () => cleanCache.get(name)]] });
    expect(bits(stopped)).toEqual(bits(cleanCache.get(name)));
    stopped.dispose();
    expect(cleanCache.get(name).isDisposed).toBe(false);
    // a tensor the user made outside any run stays the user's
    const mine = tf.zeros([2, 6, 32]);
    const { logits: l3, cache: c3 } = gpt2.runWithCache(CLEAN, { names: [name], fwdHooks: [[name, () => mine]] });
    c3.dispose();
    expect(mine.isDisposed).toBe(false);
    [mine, l3, patched, clean].forEach((t) => t.dispose());
    cleanCache.dispose();
  });
});

describe('actName and ActivationCache', () => {
  it("actName('pattern', 3) is 'blocks.3.attn.hook_pattern', and the other short names", () => {
    expect(actName('pattern', 3)).toBe('blocks.3.attn.hook_pattern');
    expect(actName('attn', 3)).toBe('blocks.3.attn.hook_pattern');
    expect(actName('attn_scores', 0)).toBe('blocks.0.attn.hook_attn_scores');
    expect(actName('scores', 0)).toBe('blocks.0.attn.hook_attn_scores');
    expect(actName('q', 1)).toBe('blocks.1.attn.hook_q');
    expect(actName('k', 1)).toBe('blocks.1.attn.hook_k');
    expect(actName('v', 1)).toBe('blocks.1.attn.hook_v');
    expect(actName('rot_q', 1)).toBe('blocks.1.attn.hook_rot_q');
    expect(actName('rot_k', 1)).toBe('blocks.1.attn.hook_rot_k');
    expect(actName('z', 2)).toBe('blocks.2.attn.hook_z');
    expect(actName('result', 2)).toBe('blocks.2.attn.hook_result');
    expect(actName('resid_pre', 0)).toBe('blocks.0.hook_resid_pre');
    expect(actName('resid_mid', 0)).toBe('blocks.0.hook_resid_mid');
    expect(actName('resid_post', 5)).toBe('blocks.5.hook_resid_post');
    expect(actName('attn_out', 1)).toBe('blocks.1.hook_attn_out');
    expect(actName('mlp_out', 1)).toBe('blocks.1.hook_mlp_out');
    expect(actName('pre', 4)).toBe('blocks.4.mlp.hook_pre');
    expect(actName('pre_linear', 4)).toBe('blocks.4.mlp.hook_pre_linear');
    expect(actName('post', 4)).toBe('blocks.4.mlp.hook_post');
    expect(actName('embed')).toBe('hook_embed');
    expect(actName('pos_embed')).toBe('hook_pos_embed');
    expect(actName('scale', 2, 'ln1')).toBe('blocks.2.ln1.hook_scale');
    expect(actName('normalized', 2, 'ln2')).toBe('blocks.2.ln2.hook_normalized');
    expect(actName('scale', 2)).toBe('blocks.2.ln1.hook_scale');
    expect(actName('normalized')).toBe('ln_final.hook_normalized');
    expect(actName('scale', undefined, 'ln_final')).toBe('ln_final.hook_scale');
    expect(headlensError(() => actName('patern', 0)).message).toContain('unknown activation');
    expect(headlensError(() => actName('pattern')).message).toContain('needs a layer');
    expect(() => actName('pattern', -1)).toThrow(HeadlensError);
    expect(() => actName('scale', undefined, 'ln1')).toThrow(HeadlensError);
  });

  it('every name actName makes for a layer of gpt2 is one of its hook points', () => {
    const all = new Set(gpt2.hookNames({ withResult: true }));
    for (const short of ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'q', 'k', 'v', 'attn_scores', 'pattern', 'z', 'result', 'pre', 'post']) {
      expect(all.has(actName(short, 1)), short).toBe(true);
    }
  });

  it("cache.stack('resid_pre') is [n_layers, batch, pos, d_model] and holds each layer's activation", () => {
    const { logits, cache } = gpt2.runWithCache(CLEAN);
    const stacked = cache.stack('resid_pre');
    expect(stacked.shape).toEqual([2, 2, 6, 32]);
    const layer1 = tf.tidy(() => stacked.slice([1, 0, 0, 0], [1, 2, 6, 32]).reshape([2, 6, 32]));
    expect(bits(layer1)).toEqual(bits(cache.act('resid_pre', 1)));
    const patterns = cache.stack('pattern');
    expect(patterns.shape).toEqual([2, 2, 4, 6, 6]);
    const scales = cache.stack('scale', 'ln2');
    expect(scales.shape).toEqual([2, 2, 6, 1]);
    [stacked, layer1, patterns, scales].forEach((t) => t.dispose());
    // stack returns a new tensor: the cache's own are untouched by disposing it
    expect(cache.get('blocks.0.hook_resid_pre').isDisposed).toBe(false);
    cache.dispose();
    logits.dispose();
  });

  it("cache.head('blocks.0.attn.hook_pattern', 1) is that head's [batch, query_pos, key_pos]", () => {
    const { logits, cache } = llama.runWithCache(CLEAN, { names: ['blocks.0.attn.hook_pattern', 'blocks.0.attn.hook_k', 'blocks.0.attn.hook_z', 'blocks.0.hook_resid_pre'] });
    const h1 = cache.head('blocks.0.attn.hook_pattern', 1);
    expect(h1.shape).toEqual([2, 6, 6]);
    const expected = tf.tidy(() => cache.get('blocks.0.attn.hook_pattern').slice([0, 1, 0, 0], [2, 1, 6, 6]).reshape([2, 6, 6]));
    expect(bits(h1)).toEqual(bits(expected));
    const z7 = cache.head('blocks.0.attn.hook_z', 7);
    expect(z7.shape).toEqual([2, 6, 8]);
    const k1 = cache.head('blocks.0.attn.hook_k', 1);
    expect(k1.shape).toEqual([2, 6, 8]);
    [h1, expected, z7, k1].forEach((t) => t.dispose());
    expect(headlensError(() => cache.head('blocks.0.attn.hook_k', 2)).message).toContain('out of range');
    expect(headlensError(() => cache.head('blocks.0.attn.hook_pattern', 8)).message).toContain('8 heads');
    expect(headlensError(() => cache.head('blocks.0.hook_resid_pre', 0)).message).toContain('no head axis');
    cache.dispose();
    logits.dispose();
  });

  it('cache.get of a name it does not hold is a HeadlensError suggesting the nearest kept name', () => {
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: ['blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_pre'] });
    const e = headlensError(() => cache.get('blocks.0.attn.hook_patern'));
    expect(e.message).toContain("did you mean 'blocks.0.attn.hook_pattern'");
    cache.dispose();
    logits.dispose();
    const { logits: l2, cache: empty } = gpt2.runWithCache(CLEAN, { names: [] });
    expect(empty.size).toBe(0);
    expect(headlensError(() => empty.get('hook_embed')).message).toContain('the cache is empty');
    empty.dispose();
    l2.dispose();
  });

  it('cache.get after dispose() throws a HeadlensError, and dispose() frees every cached tensor once', () => {
    const before = tf.memory().numTensors;
    const { logits, cache } = gpt2.runWithCache(CLEAN);
    const kept = cache.get('blocks.0.hook_resid_pre');
    cache.dispose();
    expect(kept.isDisposed).toBe(true);
    expect(headlensError(() => cache.get('blocks.0.hook_resid_pre')).message).toContain('disposed');
    expect(() => cache.stack('resid_pre')).toThrow(HeadlensError);
    expect(() => cache.head('blocks.0.attn.hook_pattern', 0)).toThrow(HeadlensError);
    cache.dispose(); // a second dispose is harmless
    logits.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
