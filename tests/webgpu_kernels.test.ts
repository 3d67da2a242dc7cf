/**
 * The fused WebGPU kernels (src/backend/webgpu_kernels) against the unfused path they replace, on SwiftShader:
 * each kernel on its own, then whole forwards and decoding with optimisations.fusedKernels on and off. "Relative"
 * here is max |fused − plain| / max |plain| over the tensor. Shapes are above tfjs' CPU hand-off size (1,000
 * values) where the plain path must run on the GPU too.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attentionSplits, bhpView, bphView, fusedActivation, fusedAdd3, fusedAttention, fusedAttentionSplitRows, fusedGatedActivation, fusedNormOfSum, fusedRotary } from '../src/backend/webgpu_kernels/index.js';
import { generateAsync } from '../src/hooks/generate.js';
import { HookedTransformer, type FwdHook } from '../src/hooks/hooked_transformer.js';
import { activation } from '../src/model/activation.js';
import { ACT_FNS, makeConfig, type HookedConfigInput } from '../src/model/config.js';
import { HookPoints, type Interceptor } from '../src/model/hook_point.js';
import { KVCache } from '../src/model/kv_cache.js';
import { norm } from '../src/model/norm.js';
import { applyRotary, rotaryTables, rotaryTablesAt } from '../src/model/rotary.js';
import { optimisations } from '../src/model/transformer.js';
import { lmLoss } from '../src/train/trainer.js';
import { countPrograms, startSoftwareWebGPU } from './helpers.js';

const TOL = 1e-5;

beforeAll(async () => {
  await startSoftwareWebGPU();
});

afterEach(() => {
  optimisations.fusedKernels = true;
});

async function rel(fused: tf.Tensor, plain: tf.Tensor): Promise<number> {
  expect(fused.shape).toEqual(plain.shape);
  const [a, b] = [(await fused.data()) as Float32Array, (await plain.data()) as Float32Array];
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d; // NaN wins
    scale = Math.max(scale, Math.abs(b[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return diff / scale;
}

const seeded = (shape: number[], seed: number, std = 1) => tf.randomNormal(shape, 0, std, 'float32', seed);

describe('each fused kernel against the unfused path', () => {
  it('LayerNorm and RMSNorm in one dispatch, split at a hooked hook_scale, and of a sum, equal norm.ts within 1e-5', async () => {
    const x = seeded([2, 9, 96], 1, 3).add(0.5) as tf.Tensor3D; // 1,728 values, off-centre
    const w = seeded([96], 2).add(1);
    const b = seeded([96], 3);
    const doubled: Interceptor = { wants: (n) => n.endsWith('hook_scale'), call: (_n, act) => act.mul(2) };
    for (const type of ['LN', 'RMS'] as const) {
      const cfg = makeConfig({ d_model: 96, n_layers: 1, n_heads: 4, d_head: 24, d_mlp: 8, d_vocab: 10, n_ctx: 16, normalization_type: type, eps: 1e-5 });
      const bias = type === 'LN' ? b : undefined;
      const plain = norm(cfg, x, w, bias, 'ln_final', new HookPoints());
      const fused = norm(cfg, x, w, bias, 'ln_final', new HookPoints(), true);
      expect(await rel(fused, plain), type).toBeLessThan(TOL);
      // a hook that changes the scale changes the fused output exactly as it changes the plain one
      const hp1 = new HookPoints(doubled);
      const hp2 = new HookPoints(doubled);
      const plainHooked = norm(cfg, x, w, bias, 'ln_final', hp1);
      const fusedHooked = norm(cfg, x, w, bias, 'ln_final', hp2, true);
      expect(await rel(fusedHooked, plainHooked), `${type} hooked`).toBeLessThan(TOL);
      expect(await rel(fusedHooked, plain)).toBeGreaterThan(0.1); // the hook did change the output
      hp1.release();
      hp2.release();
      // the residual add folded into the norm: the norm of x + y without making the sum
      const y = seeded([2, 9, 96], 11);
      const plainSum = tf.tidy(() => norm(cfg, x.add(y), w, bias, 'ln_final', new HookPoints()));
      const fusedSum = fusedNormOfSum(x, y, w, bias, cfg.eps, type);
      expect(await rel(fusedSum, plainSum), `${type} of a sum`).toBeLessThan(TOL);
      tf.dispose([plain, fused, plainHooked, fusedHooked, y, plainSum, fusedSum]);
    }
    tf.dispose([x, w, b]);
  });

  it('every MLP activation, and SwiGLU act(gate)·up, equals activation.ts within 1e-5; the three-way residual add equals two adds', async () => {
    const pre = seeded([4, 300], 4, 3);
    const up = seeded([4, 300], 5);
    for (const fn of ACT_FNS) {
      const plain = activation(fn, pre);
      const fused = fusedActivation(fn, pre);
      expect(await rel(fused, plain), fn).toBeLessThan(TOL);
      tf.dispose([plain, fused]);
    }
    const plain = activation('silu', pre).mul(up);
    const fused = fusedGatedActivation('silu', pre, up);
    expect(await rel(fused, plain), 'swiglu').toBeLessThan(TOL);
    // the block's residual adds in one dispatch, rounded as (a + b) + c
    const sum3 = fusedAdd3(pre, up, plain);
    const add2 = pre.add(up).add(plain);
    expect(await rel(sum3, add2), 'add3').toBe(0);
    tf.dispose([plain, fused, pre, up, sum3, add2]);
  });

  it('rotary: partial rotary_dim, per-row tables, and q and k rotated together out of a QKV matrix equal applyRotary', async () => {
    const cfg = makeConfig({ d_model: 64, n_layers: 1, n_heads: 4, n_key_value_heads: 2, d_head: 16, d_mlp: 8, d_vocab: 10, n_ctx: 64, positional_embedding_type: 'rotary', rotary_dim: 8 });
    const [batch, pos, e] = [2, 7, 16];
    const { cos, sin } = rotaryTables(cfg, pos, 5); // positions 5..11, as after 5 cached tokens
    const per = rotaryTablesAt(cfg, [[0, 0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8, 9]]);
    const x = seeded([batch, pos, 4, e], 6);
    for (const [c, s, what] of [[cos, sin, 'shared'], [per.cos, per.sin, 'per row']] as const) {
      const plain = applyRotary(x as tf.Tensor4D, c, s, 8);
      const fused = fusedRotary(x, c, s, { batch, pos, heads: 4, dHead: e, colOffset: 0, rowStride: 4 * e, rotaryDim: 8 });
      expect(await rel(fused, plain), what).toBeLessThan(TOL);
      tf.dispose([plain, fused]);
    }
    // q (4 heads) and k (2 heads) as the first 6 heads of a [batch·pos, (4 + 2·2)·16] QKV output
    const qkv = seeded([batch * pos, 8 * e], 7);
    const qk = qkv.slice([0, 0], [batch * pos, 6 * e]).reshape([batch, pos, 6, e]) as tf.Tensor4D;
    const plain = applyRotary(qk, cos, sin, 8);
    const fused = fusedRotary(qkv, cos, sin, { batch, pos, heads: 6, dHead: e, colOffset: 0, rowStride: 8 * e, rotaryDim: 8 });
    expect(await rel(fused, plain), 'qkv').toBeLessThan(TOL);
    tf.dispose([plain, fused, qkv, qk, x, cos, sin, per.cos, per.sin]);
  });

  it('attention (GQA, sliding window, padding, queries after cached keys, a long cache in splits) equals softmax(q·kᵀ/scale + mask)·v computed with tfjs ops', async () => {
    const [batch, rows, heads, kvHeads, e] = [2, 3, 8, 2, 16];
    const saved = { ...attentionSplits };
    // 600 keys in splits of 256: three ranges, the window case leaving the first ones with no key at all
    Object.assign(attentionSplits, { minKeys: 512, keysPerSplit: 256 });
    try {
      for (const [keys, window, padded] of [[40, null, false], [40, null, true], [40, 6, false], [40, 6, true], [600, null, true], [600, 6, false]] as const) {
        const start = keys - rows; // the new rows sit after keys − 3 cached positions
        const q = seeded([batch, rows, heads, e], 8);
        const k = seeded([batch, kvHeads, keys, e], 9); // the KV cache's layout
        const v = seeded([batch, kvHeads, keys, e], 10);
        const keyRows = [Array.from({ length: keys }, (_, t) => (t < 4 ? 0 : 1)), Array.from({ length: keys }, () => 1)]; // row 0 left-padded
        // the reference: repeat kv heads, mask from the definition, softmax, ·v
        const maskData = new Float32Array(batch * rows * keys);
        for (let b = 0; b < batch; b++)
          for (let r = 0; r < rows; r++)
            for (let t = 0; t < keys; t++) {
              const ok = t <= start + r && (window === null || start + r - t < window) && (!padded || keyRows[b][t] === 1);
              maskData[(b * rows + r) * keys + t] = ok ? 0 : -Infinity;
            }
        const [plain, plainScores, plainPattern] = tf.tidy(() => {
          const kvOf = tf.tensor1d(Array.from({ length: heads }, (_, h) => Math.floor(h / (heads / kvHeads))), 'int32');
          const kh = tf.gather(k, kvOf, 1);
          const vh = tf.gather(v, kvOf, 1);
          const scores = tf.matMul(q.transpose([0, 2, 1, 3]), kh, false, true).div(4).add(tf.tensor4d(maskData, [batch, 1, rows, keys]));
          const p = tf.softmax(scores, -1);
          const pattern = tf.where(tf.isNaN(p), tf.zerosLike(p), p); // a row that sees no key: 0, as the model's padded path
          return [tf.matMul(pattern, vh).transpose([0, 2, 1, 3]), scores, pattern]; // z [batch, rows, head, d_head]
        });
        const keyMask = padded ? tf.tensor2d(keyRows) : undefined;
        const o = { batch, rows, heads, kvHeads, dHead: e, keys, scale: 4, queryStart: start, window, keyMask };
        const { result: fused, kinds } = await countPrograms(() => fusedAttention(bphView(q), bhpView(k), bhpView(v), o));
        expect(kinds.HeadlensAttentionCombine ?? 0).toBe(keys === 600 ? 1 : 0);
        expect(await rel(fused, plain), `keys ${keys}, window ${window}, padded ${padded}`).toBeLessThan(TOL);
        // the split pass writing every row's scores, and the pattern from its ranges' maxima and sums
        const split = fusedAttentionSplitRows(bphView(q), bhpView(k), bhpView(v), o, { scores: true, pattern: true });
        if (keys < 512) expect(split).toBeUndefined();
        else {
          expect(await rel(split!.z, plain), `split z, window ${window}`).toBeLessThan(TOL);
          expect(await rel(split!.pattern!, plainPattern), `split pattern, window ${window}`).toBeLessThan(TOL);
          const [a, b] = [await split!.scores!.data(), await plainScores.data()];
          expect(Array.from(a).map(Number.isFinite)).toEqual(Array.from(b).map(Number.isFinite)); // masked keys −Infinity in both
          const [fa, fb] = [tf.tensor(Array.from(a).map((x) => (Number.isFinite(x) ? x : 0))), tf.tensor(Array.from(b).map((x) => (Number.isFinite(x) ? x : 0)))];
          expect(await rel(fa, fb), `split scores, window ${window}`).toBeLessThan(TOL);
          tf.dispose([fa, fb, split!.z, split!.scores!, split!.pattern!]);
        }
        tf.dispose([plain, plainScores, plainPattern, fused, q, k, v, ...(keyMask ? [keyMask] : [])]);
      }
    } finally {
      Object.assign(attentionSplits, saved);
    }
  });
});

/** Small random models of each family the fused path treats differently. */
const FAMILIES: Record<string, HookedConfigInput> = {
  gpt2: { d_model: 64, n_layers: 2, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 120, n_ctx: 32, act_fn: 'gelu_new' },
  'neox-partial-rotary': { d_model: 64, n_layers: 2, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 120, n_ctx: 32, act_fn: 'gelu', positional_embedding_type: 'rotary', rotary_dim: 6, rotary_freq_dim: 5, parallel_attn_mlp: true },
  'llama-gqa-window': {
    d_model: 64, n_layers: 2, n_heads: 4, n_key_value_heads: 2, d_head: 16, d_mlp: 96, d_vocab: 120, n_ctx: 32, act_fn: 'silu', gated_mlp: true,
    normalization_type: 'RMS', positional_embedding_type: 'rotary', rotary_dim: 16, sliding_window: 5, attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
  },
};
const PROMPTS = [
  [5, 17, 42, 8, 99, 7, 23, 61, 8, 110, 3],
  [9, 1, 77, 12, 4, 56, 31, 2, 88, 40, 6],
];
const PADDING = [[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], PROMPTS[1].map(() => 1)];

function model(name: string): HookedTransformer {
  return HookedTransformer.random(makeConfig({ model_name: name, ...FAMILIES[name] }), { seed: 3, std: 0.15 });
}

async function both<T>(f: () => Promise<T>): Promise<{ fused: T; plain: T }> {
  optimisations.fusedKernels = true;
  const fused = await f();
  optimisations.fusedKernels = false;
  const plain = await f();
  optimisations.fusedKernels = true;
  return { fused, plain };
}

describe('the forward and decoding with fusedKernels on and off', () => {
  it.each(Object.keys(FAMILIES))('%s: logits of a plain and a left-padded batch within 1e-5', async (name) => {
    const m = model(name);
    for (const attentionMask of [undefined, PADDING]) {
      const { fused, plain } = await both(async () => m.runWithHooks(PROMPTS, { attentionMask }));
      expect(await rel(fused, plain), `${name} padded ${!!attentionMask}`).toBeLessThan(TOL);
      tf.dispose([fused, plain]);
    }
    m.dispose();
  });

  it('generate() through the fused decode gives the same tokens, each step the same logits and cached last pattern row within 1e-5 (GQA, window, padding)', async () => {
    const m = model('llama-gqa-window');
    // layer 1's last pattern row cached at every step (the retrieval score's work): layer 0 decodes unobserved
    const name = 'blocks.1.attn.hook_pattern';
    const run = () =>
      generateAsync(m, PROMPTS, {
        maxNewTokens: 3, attentionMask: PADDING, names: [name], patternRows: 'last',
        onStep: (s) => [tf.keep(s.logits.clone()), tf.keep(s.cache!.get(name).clone())],
      });
    const { fused, plain } = await both(run);
    expect(fused.tokens).toEqual(plain.tokens);
    for (let s = 0; s < fused.records.length; s++) {
      expect(await rel(fused.records[s][0], plain.records[s][0]), `step ${s} logits`).toBeLessThan(TOL);
      expect(await rel(fused.records[s][1], plain.records[s][1]), `step ${s} pattern`).toBeLessThan(TOL);
    }
    tf.dispose([...fused.records.flat(), ...plain.records.flat()]);
    m.dispose();
  });

  it('decoding against a long cache with a cache of the last scores and pattern rows: the split pass writes them (no per-row kernel), the plain values within 1e-5', async () => {
    const saved = { ...attentionSplits };
    // a cache of 11 positions and more counts as long here: splits of 4 keys (whole chunks of 256, so most are empty)
    Object.assign(attentionSplits, { minKeys: 8, keysPerSplit: 4 });
    try {
      for (const family of ['llama-gqa-window', 'neox-partial-rotary']) {
        const m = model(family);
        const names = ['blocks.1.attn.hook_pattern', 'blocks.0.attn.hook_attn_scores', 'blocks.0.attn.hook_pattern'];
        const run = () =>
          generateAsync(m, PROMPTS, {
            maxNewTokens: 3, attentionMask: PADDING, names, patternRows: 'last',
            onStep: (s) => names.map((n) => tf.keep(s.cache!.get(n).clone())).concat([tf.keep(s.logits.clone())]),
          });
        const warm = m.runWithHooks(PROMPTS); // makes the model's cached QKV weights, which it keeps
        await warm.data();
        warm.dispose();
        const before = tf.memory().numTensors;
        const fused = await countPrograms(run);
        expect(tf.memory().numTensors - before - fused.result.records.flat().length, 'tensors left behind').toBe(0);
        optimisations.fusedKernels = false;
        const plain = await run();
        optimisations.fusedKernels = true;
        expect(fused.result.tokens).toEqual(plain.tokens);
        // the prompt (11 rows, of which the cache keeps the last) takes the per-row kernels; each of the two decoding
        // steps one split pass a layer, which writes the scores, and one pattern from them
        expect(fused.kinds.HeadlensAttentionWithScores, family).toBe(2 * 2);
        expect(fused.kinds.HeadlensAttentionNormalise, family).toBe(2 * 2);
        expect(fused.kinds.HeadlensAttentionPattern, family).toBe(1);
        for (let s = 0; s < fused.result.records.length; s++) {
          for (let j = 0; j < names.length + 1; j++) {
            const [a, b] = [fused.result.records[s][j], plain.records[s][j]];
            expect(a.shape).toEqual(b.shape);
            const [x, y] = [await a.data(), await b.data()];
            expect(Array.from(x).map(Number.isFinite), `${family} step ${s} ${names[j] ?? 'logits'}`).toEqual(Array.from(y).map(Number.isFinite));
            const [fx, fy] = [tf.tensor(Array.from(x).map((v) => (Number.isFinite(v) ? v : 0))), tf.tensor(Array.from(y).map((v) => (Number.isFinite(v) ? v : 0)))];
            expect(await rel(fx, fy), `${family} step ${s} ${names[j] ?? 'logits'}`).toBeLessThan(TOL);
            tf.dispose([fx, fy]);
          }
        }
        tf.dispose([...fused.result.records.flat(), ...plain.records.flat()]);
        m.dispose();
      }
    } finally {
      Object.assign(attentionSplits, saved);
    }
  });

  it('a KV cache the fused kernels wrote serves a plain step (a hook that changes a pattern) and the fused steps after it', async () => {
    const m = model('llama-gqa-window');
    const hooks: FwdHook[] = [['blocks.1.attn.hook_pattern', (p) => p.mul(0.5)]];
    const warm = m.runWithHooks(PROMPTS); // makes the model's cached QKV weights, which it keeps
    await warm.data();
    warm.dispose();
    const run = async () => {
      const before = tf.memory().numTensors;
      const cache = new KVCache(m.cfg.n_layers);
      const logits: tf.Tensor[] = [];
      logits.push(m.runWithHooks(PROMPTS, { kvCache: cache, attentionMask: PADDING, logits: 'last' }));
      logits.push(m.runWithHooks([[4], [9]], { kvCache: cache, logits: 'last', fwdHooks: hooks })); // layer 1 plain
      logits.push(m.runWithHooks([[7], [2]], { kvCache: cache, logits: 'last' }));
      logits.push(m.runWithHooks([[5], [8]], { kvCache: cache, logits: 'last' }));
      cache.dispose();
      const kept = logits.length;
      return { logits, leaked: tf.memory().numTensors - before - kept };
    };
    const { fused, plain } = await both(run);
    for (let s = 0; s < fused.logits.length; s++) expect(await rel(fused.logits[s], plain.logits[s]), `step ${s}`).toBeLessThan(TOL);
    expect(fused.leaked).toBe(0);
    tf.dispose([...fused.logits, ...plain.logits]);
    m.dispose();
  });

  it('the fused path keeps the cache in preallocated slabs written in place: one KV write a layer a step, no copy of the cache, the same logits', async () => {
    const m = model('llama-gqa-window');
    await m.runWithHooks(PROMPTS).data(); // makes the model's cached QKV weights
    const { fused, plain } = await both(async () => {
      const cache = new KVCache(m.cfg.n_layers, { capacity: 16 });
      m.runWithHooks(PROMPTS, { kvCache: cache, attentionMask: PADDING, logits: 'last' }).dispose();
      const bytes = cache.bytes;
      const steps: { logits: tf.Tensor; kinds: Record<string, number>; bytes: number; capacity: number }[] = [];
      for (const t of [[4, 9], [7, 2], [5, 8]]) {
        const c = await countPrograms(() => m.runWithHooks(t.map((x) => [x]), { kvCache: cache, logits: 'last' }));
        steps.push({ logits: c.result, kinds: c.kinds, bytes: cache.bytes, capacity: cache.capacity });
      }
      const mode = cache.mode;
      cache.dispose();
      return { steps, bytes, mode };
    });
    expect(fused.mode).toBe('slab');
    expect(plain.mode).toBe('tensors');
    // a slab of 16 positions per layer from the prefill on: [2, batch 2, kv_head 2, 16, d_head 16] floats, twice
    expect(fused.bytes).toBe(2 * (2 * 2 * 2 * 16 * 16) * 4);
    for (const [s, step] of fused.steps.entries()) {
      expect(step.bytes).toBe(fused.bytes);
      expect(step.capacity).toBe(16);
      expect(step.kinds.HeadlensKVWrite).toBe(2); // one write per layer
      expect(step.kinds.ConcatProgram, JSON.stringify(step.kinds)).toBeUndefined();
      expect(await rel(step.logits, plain.steps[s].logits), `step ${s}`).toBeLessThan(TOL);
    }
    expect(plain.steps[2].kinds.ConcatProgram).toBeGreaterThan(0); // the tensors cache concatenates
    tf.dispose([...fused.steps, ...plain.steps].map((x) => x.logits));
    m.dispose();
  });

  it('a slab cache grows (a quarter more, a copy per layer) when fed past its capacity, a forward that throws leaves it usable, and a plain cache moves into slabs', async () => {
    const m = model('llama-gqa-window');
    await m.runWithHooks(PROMPTS).data();
    const before = tf.memory().numTensors;
    const boom: FwdHook[] = [['blocks.1.hook_resid_pre', () => { throw new Error('boom'); }]];
    const run = async (startPlain: boolean) => {
      const cache = new KVCache(m.cfg.n_layers); // no capacity: the prefill's 11 positions
      optimisations.fusedKernels = !startPlain;
      const out: tf.Tensor[] = [m.runWithHooks(PROMPTS, { kvCache: cache, logits: 'last' })];
      optimisations.fusedKernels = true;
      const caps: number[] = [];
      expect(() => m.runWithHooks([[3], [3]], { kvCache: cache, fwdHooks: boom })).toThrow('boom'); // layer 0 wrote, layer 1 threw
      expect(cache.length).toBe(11);
      for (let i = 0; i < 12; i++) {
        out.push(m.runWithHooks([[(i * 7) % 100], [(i * 13) % 100]], { kvCache: cache, logits: 'last' }));
        caps.push(cache.capacity);
      }
      const mode = cache.mode;
      cache.dispose();
      return { out, caps, mode };
    };
    const slab = await run(false);
    const moved = await run(true);
    optimisations.fusedKernels = false;
    const plainCache = new KVCache(m.cfg.n_layers);
    const plain = [m.runWithHooks(PROMPTS, { kvCache: plainCache, logits: 'last' })];
    for (let i = 0; i < 12; i++) plain.push(m.runWithHooks([[(i * 7) % 100], [(i * 13) % 100]], { kvCache: plainCache, logits: 'last' }));
    plainCache.dispose();
    optimisations.fusedKernels = true;
    // 11 positions; the 12th needs more: max(12, ⌈11·1.25 / 64⌉·64 = 64) capped at n_ctx 32
    expect(slab.caps[0]).toBe(32);
    expect(new Set(slab.caps).size).toBe(1);
    expect(slab.mode).toBe('slab');
    expect(moved.mode).toBe('slab');
    for (let s = 0; s < plain.length; s++) {
      expect(await rel(slab.out[s], plain[s]), `slab step ${s}`).toBeLessThan(TOL);
      expect(await rel(moved.out[s], plain[s]), `moved step ${s}`).toBeLessThan(TOL);
    }
    tf.dispose([...slab.out, ...moved.out, ...plain]);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('a decode step (partial rotary) dispatches under a third of the programs, and hooks at hook_v or hook_scale keep the fused path correct', async () => {
    const m = model('neox-partial-rotary');
    const step = async (hooks?: FwdHook[]) => {
      const cache = new KVCache(m.cfg.n_layers);
      m.runWithHooks([PROMPTS[0]], { kvCache: cache, logits: 'last' }).dispose();
      const counted = await countPrograms(() => m.runWithHooks([[7]], { kvCache: cache, logits: 'last', fwdHooks: hooks }));
      cache.dispose();
      return counted;
    };
    const { fused, plain } = await both(() => step());
    expect(fused.total * 3, JSON.stringify({ fused: fused.kinds, plain: plain.kinds })).toBeLessThan(plain.total);
    expect(await rel(fused.result, plain.result)).toBeLessThan(TOL);
    // a hook that zero-ablates head 1's value and one that doubles ln2's scale: the fused path still agrees
    const hooks: FwdHook[] = [
      ['blocks.1.attn.hook_v', (v) => v.mul(tf.tensor4d([1, 0, 1, 1], [1, 1, 4, 1]))],
      ['blocks.0.ln2.hook_scale', (s) => s.mul(2)],
    ];
    const hooked = await both(() => step(hooks));
    expect(hooked.fused.kinds.HeadlensAttention).toBe(2); // still fused
    expect(await rel(hooked.fused.result, hooked.plain.result)).toBeLessThan(TOL);
    expect(await rel(hooked.fused.result, fused.result)).toBeGreaterThan(1e-3); // the hooks changed the logits
    tf.dispose([fused.result, plain.result, hooked.fused.result, hooked.plain.result]);
    m.dispose();
  });

  it('a cache of scores and patterns (all rows, or patternRows) keeps the fused attention and gets the plain values', async () => {
    const m = model('neox-partial-rotary');
    const names = ['blocks.1.attn.hook_pattern', 'blocks.0.attn.hook_attn_scores', 'blocks.0.attn.hook_z'];
    const cases: [number[] | 'last' | undefined, number[][] | undefined][] = [[undefined, undefined], [[2, 7, 10], PADDING], ['last', PADDING]];
    for (const [patternRows, attentionMask] of cases) {
      const run = async () => {
        const counted = await countPrograms(() => m.runWithCache(PROMPTS, { names, patternRows, attentionMask }));
        return { ...counted.result, fusedAttention: counted.kinds.HeadlensAttention ?? 0 };
      };
      const { fused, plain } = await both(run);
      expect(fused.fusedAttention).toBe(2);
      expect(plain.fusedAttention).toBe(0);
      expect(await rel(fused.logits, plain.logits)).toBeLessThan(TOL);
      for (const n of names) {
        const [a, b] = [fused.cache.get(n), plain.cache.get(n)];
        expect(a.shape).toEqual(b.shape);
        if (n.endsWith('scores')) {
          // masked keys are −Infinity in both: compare where finite, and the masks exactly
          const [x, y] = [await a.data(), await b.data()];
          expect(Array.from(x).map(Number.isFinite)).toEqual(Array.from(y).map(Number.isFinite));
          const fx = tf.tensor(Array.from(x).map((v) => (Number.isFinite(v) ? v : 0)));
          const fy = tf.tensor(Array.from(y).map((v) => (Number.isFinite(v) ? v : 0)));
          expect(await rel(fx, fy), `${n} rows ${patternRows}`).toBeLessThan(TOL);
          tf.dispose([fx, fy]);
        } else expect(await rel(a, b), `${n} rows ${patternRows}`).toBeLessThan(TOL);
      }
      for (const r of [fused, plain]) (r.logits.dispose(), r.cache.dispose());
    }
    m.dispose();
  });

  it('a hook that may change hook_pattern switches that layer to the plain attention, with the plain results', async () => {
    const m = model('llama-gqa-window');
    const hooks: FwdHook[] = [['blocks.1.attn.hook_pattern', (p) => p.mul(tf.tensor4d([1, 1, 0, 1], [1, 4, 1, 1]))]];
    const { fused, plain } = await both(() => countPrograms(() => m.runWithHooks(PROMPTS, { fwdHooks: hooks })));
    expect(fused.kinds.HeadlensAttention).toBe(1); // layer 0 only
    expect(await rel(fused.result, plain.result)).toBeLessThan(TOL);
    tf.dispose([fused.result, plain.result]);
    m.dispose();
  });

  it('under a gradient the forward runs the plain ops (no fused kernel is dispatched) and gives the plain gradients', async () => {
    const m = model('llama-gqa-window');
    // variableGrads differentiates with respect to variables: two of the model's parameters become trainable
    const vars = { 'blocks.0.attn.W_Q': tf.variable(m.param('blocks.0.attn.W_Q').clone(), true, 'kt_wq'), 'blocks.1.mlp.W_in': tf.variable(m.param('blocks.1.mlp.W_in').clone(), true, 'kt_win') };
    m.setParams(vars);
    const grads = async () => {
      const counted = await countPrograms(() => tf.variableGrads(() => lmLoss(m, { tokens: PROMPTS }), Object.values(vars)));
      const { value, grads: g } = counted.result;
      return { value, g: [g.kt_wq, g.kt_win], fusedKinds: Object.keys(counted.kinds).filter((k) => k.startsWith('Headlens')) };
    };
    const { fused, plain } = await both(grads);
    expect(fused.fusedKinds).toEqual([]);
    expect(await rel(fused.value, plain.value)).toBe(0);
    for (let i = 0; i < 2; i++) expect(await rel(fused.g[i], plain.g[i])).toBe(0);
    tf.dispose([fused.value, plain.value, ...fused.g, ...plain.g]);
    m.dispose();
  });

  it('leaves no tensor behind: forward, padded forward, generate and runWithCache with the fused kernels', async () => {
    const m = model('llama-gqa-window');
    await m.runWithHooks(PROMPTS).data(); // first use makes the model's cached QKV weights
    const before = tf.memory().numTensors;
    const logits = m.runWithHooks(PROMPTS, { attentionMask: PADDING });
    await logits.data();
    logits.dispose();
    await generateAsync(m, PROMPTS, { maxNewTokens: 2, attentionMask: PADDING });
    const { logits: l2, cache } = m.runWithCache(PROMPTS, { names: ['blocks.0.ln1.hook_scale', 'blocks.1.attn.hook_z'] });
    tf.dispose([l2]);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
