/**
 * The tiled flash-attention kernel (src/backend/webgpu_kernels/flash_attention.ts) on SwiftShader: against a float64
 * reference from the definition (attention64 in helpers.ts: softmax(q·kᵀ / scale + mask)·v, GQA by ⌊head / group⌋; q
 * rotated here by rotate_half) for every case the fused path can hand it, in both tile sizes; then whole models whose prefill takes it,
 * against transformers' fixtures and against the plain path. "Relative" is max |got − want| / max |want|.
 */
import * as tf from '@tensorflow/tfjs';
import { webgpuHostTuning } from '../src/backend/webgpu_uploads.js';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attentionSplitCount, bhpView, bphView, flashAttention, flashAttentionWithRows, flashAttentionZ, fusedAttentionScoresAndPattern, fusedAttentionSplitRows, type DecodeAttentionOptions, type HeadView } from '../src/backend/webgpu_kernels/index.js';
import { generateAsync } from '../src/hooks/generate.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { fusedAttentionRows } from '../src/model/attention.js';
import { makeConfig } from '../src/model/config.js';
import { KVCache } from '../src/model/kv_cache.js';
import { optimisations } from '../src/model/transformer.js';
import { fixtureTokens } from './device/fixture_parity.js';
import { attention64, countPrograms, FIXTURES, maxAbsDiffAsync, reference, relError, startSoftwareWebGPU, type Attention64Shape } from './helpers.js';

const saved = { ...flashAttention };

beforeAll(async () => {
  await startSoftwareWebGPU();
});

afterEach(() => {
  Object.assign(flashAttention, saved);
  optimisations.fusedKernels = true;
});

/** A small seeded generator (mulberry32), so the reference and the kernel read the same numbers. */
function randoms(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 4 - 2;
  }
  return out;
}

interface Case extends Attention64Shape {
  name: string;
  /** keys and values in the KV cache's combined layout [2, batch, kv_head, key_pos, d_head]; else q, k, v from one QKV matrix */
  cacheLayout: boolean;
  rotaryDim?: number;
}

function relative(got: Float32Array, want: Float64Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= diff)) diff = d; // NaN wins
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return diff / scale;
}

/**
 * Runs the kernel on case c (inputs laid out as the fused path lays them out) and returns its error against
 * attention64; with `withRows`, flashAttentionWithRows, and the errors of its scores and pattern too.
 */
async function check(c: Case, withRows = false): Promise<{ err: number; z: Float32Array; scoresErr?: number; patternErr?: number }> {
  const { batch, rows, keys, heads: H, kvHeads: KV, dHead: E } = c;
  const scale = Math.sqrt(E);
  const qData = randoms(batch * rows * H * E, 1);
  const kData = randoms(batch * keys * KV * E, 2);
  const vData = randoms(batch * keys * KV * E, 3);
  const qAt = (b: number, r: number, h: number, e: number) => qData[((b * rows + r) * H + h) * E + e];
  const kAt = (b: number, t: number, g: number, e: number) => kData[((b * keys + t) * KV + g) * E + e];
  const vAt = (b: number, t: number, g: number, e: number) => vData[((b * keys + t) * KV + g) * E + e];
  const tensors: tf.Tensor[] = [];
  let q: HeadView, k: HeadView, v: HeadView;
  if (c.cacheLayout) {
    // q [batch, rows, head, d_head]; keys and values in one [2, batch, kv_head, key_pos, d_head] tensor
    const all = new Float32Array(2 * batch * KV * keys * E);
    for (let b = 0; b < batch; b++)
      for (let g = 0; g < KV; g++)
        for (let t = 0; t < keys; t++)
          for (let e = 0; e < E; e++) {
            all[(((b * KV + g) * keys + t) * E) + e] = kAt(b, t, g, e);
            all[batch * KV * keys * E + (((b * KV + g) * keys + t) * E) + e] = vAt(b, t, g, e);
          }
    const qt = tf.tensor4d(qData, [batch, rows, H, E]);
    const kvT = tf.tensor4d(all, [2 * batch, KV, keys, E]);
    tensors.push(qt, kvT);
    q = bphView(qt);
    k = bhpView(kvT);
    v = { ...bhpView(kvT), offset: batch * KV * keys * E };
  } else {
    // one QKV matrix [batch·pos, (head + 2·kv_head)·d_head], rows = keys
    expect(rows).toBe(keys);
    const width = (H + 2 * KV) * E;
    const qkv = new Float32Array(batch * rows * width);
    for (let b = 0; b < batch; b++)
      for (let p = 0; p < rows; p++) {
        const row = (b * rows + p) * width;
        for (let e = 0; e < E; e++) {
          for (let h = 0; h < H; h++) qkv[row + h * E + e] = qAt(b, p, h, e);
          for (let g = 0; g < KV; g++) {
            qkv[row + (H + g) * E + e] = kAt(b, p, g, e);
            qkv[row + (H + KV + g) * E + e] = vAt(b, p, g, e);
          }
        }
      }
    const t = tf.tensor2d(qkv, [batch * rows, width]);
    tensors.push(t);
    const strides: [number, number, number] = [rows * width, width, E];
    q = { tensor: t, offset: 0, strides };
    k = { tensor: t, offset: H * E, strides };
    v = { tensor: t, offset: (H + KV) * E, strides };
  }
  // rotary of q inside the kernel: rotate_half on the first rotaryDim dimensions, tables [rows, rotaryDim]
  let rotary: DecodeAttentionOptions['rotary'];
  let qRef = qAt;
  if (c.rotaryDim) {
    const rd = c.rotaryDim;
    const half = rd / 2;
    const cos = new Float32Array(rows * rd);
    const sin = new Float32Array(rows * rd);
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < rd; i++) {
        const angle = (keys - rows + r) / 10000 ** ((2 * (i % half)) / rd);
        cos[r * rd + i] = Math.cos(angle);
        sin[r * rd + i] = Math.sin(angle);
      }
    const [cosT, sinT] = [tf.tensor2d(cos, [rows, rd]), tf.tensor2d(sin, [rows, rd])];
    tensors.push(cosT, sinT);
    rotary = { cos: cosT, sin: sinT, rotaryDim: rd };
    qRef = (b, r, h, e) => {
      if (e >= rd) return qAt(b, r, h, e);
      const other = e < half ? -qAt(b, r, h, e + half) : qAt(b, r, h, e - half);
      return qAt(b, r, h, e) * cos[r * rd + e] + other * sin[r * rd + e];
    };
  }
  const keyMask = c.keyMask ? tf.tensor2d(c.keyMask) : undefined;
  if (keyMask) tensors.push(keyMask);
  const opts: DecodeAttentionOptions = { batch, rows, heads: H, kvHeads: KV, dHead: E, keys, scale, queryStart: keys - rows, window: c.window, keyMask, rotary };
  if (withRows) {
    const got = flashAttentionWithRows(q, k, v, opts);
    const rowsShape = [batch, H, rows, keys];
    expect([got.z.shape, got.scores.shape, got.pattern.shape]).toEqual([[batch, rows, H, E], rowsShape, rowsShape]);
    const [z, scores, pattern] = (await Promise.all([got.z.data(), got.scores.data(), got.pattern.data()])) as Float32Array[];
    tf.dispose([got.z, got.scores, got.pattern, ...tensors]);
    const want = { scores: new Float64Array(scores.length), pattern: new Float64Array(pattern.length) };
    const err = relative(z, attention64(c, qRef, kAt, vAt, scale, want));
    return { err, z, scoresErr: relError(scores, want.scores), patternErr: relative(pattern, want.pattern) };
  }
  const out = flashAttentionZ(q, k, v, opts);
  expect(out.shape).toEqual([batch, rows, H, E]);
  const z = (await out.data()) as Float32Array;
  tf.dispose([out, ...tensors]);
  return { err: relative(z, attention64(c, qRef, kAt, vAt, scale)), z };
}

const base = { batch: 2, heads: 4, kvHeads: 4, dHead: 16, window: null, cacheLayout: false };
const CASES: Case[] = [
  { ...base, name: 'causal, rows = keys = 70 (not a whole tile), q k v out of one QKV matrix', rows: 70, keys: 70 },
  { ...base, name: 'rows < keys: 37 rows after 60 cached keys, cache layout, GQA 8 / 2', rows: 37, keys: 97, heads: 8, kvHeads: 2, cacheLayout: true },
  { ...base, name: 'sliding window 9 (key tiles wholly before it skipped), GQA 4 / 1', rows: 80, keys: 80, kvHeads: 1, window: 9 },
  {
    ...base, name: 'padded batch: row 0 left-padded by 5 (its first 5 query rows see no key), row 1 with a hole', rows: 40, keys: 40,
    keyMask: [Array.from({ length: 40 }, (_, t) => (t < 5 ? 0 : 1)), Array.from({ length: 40 }, (_, t) => (t === 20 ? 0 : 1))],
  },
  { ...base, name: 'd_head 64, inline rotary of q (rotary_dim 32), cache layout with 3 cached keys', rows: 33, keys: 36, dHead: 64, rotaryDim: 32, cacheLayout: true, batch: 1 },
  { ...base, name: 'd_head 5 (odd, under one chunk), window 4 and padding', rows: 50, keys: 50, dHead: 5, window: 4, keyMask: [Array.from({ length: 50 }, (_, t) => (t < 3 ? 0 : 1)), Array.from({ length: 50 }, () => 1)] },
];

describe('flashAttentionZ against a float64 reference (1e-5 relative)', () => {
  // every case in tiles of 32; in tiles of 64 (the default where workgroup memory allows) those that need no shader
  // variant of their own beyond three (SwiftShader compiles each variant for seconds)
  for (const [tile, cases] of [[32, CASES], [64, [CASES[0], CASES[2], CASES[4], CASES[5]]]] as const) {
    it.each(cases.map((c) => [c.name, c] as const))(`tile ${tile}: %s`, async (_name, c) => {
      flashAttention.tile = tile;
      const { err, z } = await check(c);
      expect(err).toBeLessThan(1e-5);
      if (c.keyMask && c.keyMask[0][0] === 0) {
        // batch row 0's first query rows see only padding: z = 0 exactly (not NaN)
        const per = c.heads * c.dHead;
        const firstRows = Array.from(z.subarray(0, 3 * per));
        expect(firstRows.every((x) => x === 0)).toBe(true);
      }
    });
  }

  // flashAttentionWithRows: z, and every row's scores and pattern, in the cases without inline rotary (a cache that
  // keeps the rows keeps hook_rot_q, so q comes rotated); tiles of 32, and 64 for the padded window
  it.each(CASES.filter((c) => !c.rotaryDim).map((c) => [c.name, c] as const))('with the scores and pattern, tile 32: %s', async (_name, c) => {
    flashAttention.tile = 32;
    const { err, scoresErr, patternErr } = await check(c, true);
    expect([err, scoresErr, patternErr].every((e) => e! < 1e-5), `z ${err}, scores ${scoresErr}, pattern ${patternErr}`).toBe(true);
  });
  it('with the scores and pattern, tile 64: d_head 5, window 4 and padding (rows that see no key: pattern 0)', async () => {
    flashAttention.tile = 64;
    const { err, scoresErr, patternErr } = await check(CASES[5], true);
    expect([err, scoresErr, patternErr].every((e) => e! < 1e-5), `z ${err}, scores ${scoresErr}, pattern ${patternErr}`).toBe(true);
  });

  it('rejects a head count that is not a multiple of the key/value heads, naming both', () => {
    const t = tf.zeros([2, 40, 3, 16]);
    expect(() => flashAttentionZ(bphView(t), bphView(t), bphView(t), { batch: 2, rows: 40, heads: 3, kvHeads: 2, dHead: 16, keys: 40, scale: 4, queryStart: 0, window: null })).toThrow(/3 heads .* 2 key\/value heads/);
    t.dispose();
  });
});

// The llama-7b shape's kept rows differed from the plain path's by up to 1.95e-4 on the GPU (fused_check --rows, README).
// Given the same q, k and v, every kernel that writes a last row at such a shape is checked here against float64: d_head
// 128, 2,560 keys (past attentionSplits.minKeys, so the decoding step's split pass runs), scores above 4.
describe('the kernels that write attention rows, at a llama-7b decoding shape, against float64 (1e-5 relative)', () => {
  it.each([1, 32])('%s new row(s) after the rest of 2,560 keys: the per-row kernel, the split pass and (32 rows) the flash kernel', async (rows) => {
    const c: Case = { name: 'llama-7b rows', batch: 1, rows, keys: 2560, heads: 4, kvHeads: 4, dHead: 128, window: null, cacheLayout: true };
    const { keys, heads: H, dHead: E } = c;
    const scale = Math.sqrt(E);
    const [qData, kData, vData] = [randoms(rows * H * E, 1), randoms(H * keys * E, 2), randoms(H * keys * E, 3)];
    const want = { scores: new Float64Array(H * rows * keys), pattern: new Float64Array(H * rows * keys) };
    const z64 = attention64(c, (_b, r, h, e) => qData[(r * H + h) * E + e], (_b, t, g, e) => kData[(g * keys + t) * E + e], (_b, t, g, e) => vData[(g * keys + t) * E + e], scale, want);
    const maxScore = want.scores.reduce((m, x) => (Number.isFinite(x) ? Math.max(m, Math.abs(x)) : m), 0);
    expect(maxScore).toBeGreaterThan(4); // rows far from uniform, as the random llama-7b shape's (scores up to about 10)
    const q = tf.tensor4d(qData, [1, rows, H, E]);
    const k = tf.tensor4d(kData, [1, H, keys, E]);
    const v = tf.tensor4d(vData, [1, H, keys, E]);
    const o: DecodeAttentionOptions = { batch: 1, rows, heads: H, kvHeads: H, dHead: E, keys, scale, queryStart: keys - rows, window: null };
    expect(attentionSplitCount(keys)).toBeGreaterThan(1);
    const errors: Record<string, number> = {};
    const perRow = fusedAttentionScoresAndPattern(bphView(q), bhpView(k), o);
    const split = fusedAttentionSplitRows(bphView(q), bhpView(k), bhpView(v), o, { scores: true, pattern: true })!;
    const flash = rows >= 32 ? flashAttentionWithRows(bphView(q), bhpView(k), bhpView(v), o) : undefined;
    for (const [name, got] of [['per-row', perRow], ['split', split], ...(flash ? [['flash', flash] as const] : [])] as const) {
      errors[`${name} scores`] = relError((await got.scores!.data()) as Float32Array, want.scores);
      errors[`${name} pattern`] = relError((await got.pattern!.data()) as Float32Array, want.pattern);
      if ('z' in got) errors[`${name} z`] = relError((await got.z.data()) as Float32Array, z64);
    }
    tf.dispose([q, k, v, perRow.scores, perRow.pattern, split.z, split.scores!, split.pattern!, ...(flash ? [flash.z, flash.scores, flash.pattern] : [])]);
    expect(Object.keys(errors).length).toBe(rows >= 32 ? 8 : 5);
    expect(Object.values(errors).every((x) => x < 1e-5), JSON.stringify(errors)).toBe(true);
  });
});

describe('the fused path hands long prefills to the flash kernel', () => {
  // tiles of 32 here: SwiftShader compiles their shaders in a third of the time of 64's, which the cases above cover
  beforeEach(() => {
    flashAttention.tile = 32;
  });

  it.each(['llama-gqa', 'mistral-sliding'])('%s: with flashAttention.minRows lowered to 1 every layer takes it; logits and (llama-gqa) every hidden state and pattern within 1e-4 of transformers', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const tokens = fixtureTokens(name);
    const ref = reference(name);
    const run = () => countPrograms(() => model.runWithHooks(tokens));
    // the default threshold is above these prompts: the per-row kernel, not flash (so the count below is the routing's doing)
    const before = await run();
    expect(before.kinds.HeadlensFlashAttention ?? 0).toBe(0);
    expect(before.kinds.HeadlensAttention).toBe(model.cfg.n_layers);
    flashAttention.minRows = 1;
    const { result: logits, kinds } = await run();
    expect(kinds.HeadlensFlashAttention).toBe(model.cfg.n_layers);
    expect(kinds.HeadlensAttention ?? 0).toBe(0);
    expect(await maxAbsDiffAsync(logits, ref.float32('logits')), name).toBeLessThan(1e-4);
    tf.dispose([logits, before.result]);
    if (name === 'llama-gqa') {
      // hooks everywhere (the hooked q/k/v and rotary dispatches) and the patterns: with the single-output kernels
      // (lean dispatch off) flash gives z and the patterns come from their own dispatch; with kernels of several
      // outputs the flash kernel writes every row's scores and pattern beside z (webgpu_dispatch.ts)
      for (const lean of [false, true]) {
        webgpuHostTuning.leanDispatch = lean;
        try {
          const { result, kinds: k2 } = await countPrograms(() => model.runWithCache(tokens, { names: 'all' }));
          if (lean) expect(k2.HeadlensFlashAttentionWithRows).toBe(model.cfg.n_layers);
          else expect(k2.HeadlensFlashAttention).toBe(model.cfg.n_layers);
          const { logits: l2, cache } = result;
          expect(await maxAbsDiffAsync(l2, ref.float32('logits'))).toBeLessThan(1e-4);
          for (let l = 0; l < model.cfg.n_layers; l++) {
            expect(await maxAbsDiffAsync(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`)), `resid_pre ${l}`).toBeLessThan(1e-4);
            expect(await maxAbsDiffAsync(cache.get(`blocks.${l}.attn.hook_pattern`), ref.float32(`attentions.${l}`)), `pattern ${l}`).toBeLessThan(1e-4);
          }
          l2.dispose();
          cache.dispose();
        } finally {
          webgpuHostTuning.leanDispatch = true;
        }
      }
    }
    model.dispose();
  });

  const cfg = makeConfig({
    model_name: 'flash-llama', d_model: 64, n_layers: 2, n_heads: 4, n_key_value_heads: 2, d_head: 16, d_mlp: 96, d_vocab: 120, n_ctx: 96, act_fn: 'silu', gated_mlp: true,
    normalization_type: 'RMS', positional_embedding_type: 'rotary', rotary_dim: 16, sliding_window: 24, attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
  });
  const prompts = [0, 1].map((b) => Array.from({ length: 70 }, (_, i) => (i * 37 + b * 11 + 5) % 120));
  const padding = [Array.from({ length: 70 }, (_, i) => (i < 6 ? 0 : 1)), Array.from({ length: 70 }, () => 1)];

  it('generate() from a 70-token padded prompt (prefill into the KV cache, q rotated inside the kernel): the same tokens, logits and last pattern rows as the plain path within 1e-5', async () => {
    const m = HookedTransformer.random(cfg, { seed: 4, std: 0.15 });
    const name = 'blocks.1.attn.hook_pattern';
    const run = async () => {
      optimisations.fusedKernels = fused;
      const { result, kinds } = await countPrograms(() =>
        generateAsync(m, prompts, {
          maxNewTokens: 1, attentionMask: padding, names: [name], patternRows: 'last',
          onStep: (s) => [tf.keep(s.logits.clone()), tf.keep(s.cache!.get(name).clone())],
        }),
      );
      return { ...result, flash: kinds.HeadlensFlashAttention ?? 0 };
    };
    let fused = true;
    const withFlash = await run();
    fused = false;
    const plain = await run();
    expect(withFlash.flash).toBe(cfg.n_layers); // the prefill only: the decoding steps take the per-row kernel
    expect(plain.flash).toBe(0);
    expect(withFlash.tokens).toEqual(plain.tokens);
    const rel = async (a: tf.Tensor, b: tf.Tensor) => (await maxAbsDiffAsync(a, await b.data() as Float32Array)) / Math.max(...Array.from(await b.abs().max().data()));
    for (let s = 0; s < plain.records.length; s++) {
      expect(await rel(withFlash.records[s][0], plain.records[s][0]), `step ${s} logits`).toBeLessThan(1e-5);
      expect(await rel(withFlash.records[s][1], plain.records[s][1]), `step ${s} pattern`).toBeLessThan(1e-5);
    }
    tf.dispose([...withFlash.records.flat(), ...plain.records.flat()]);
    m.dispose();
  });

  it('with flashAttention.minRows above fusedAttentionRows.max, prompts between the two take the matmul path, not the per-row kernel', async () => {
    const m = HookedTransformer.random(cfg, { seed: 6, std: 0.15 });
    const [savedMax, savedMin] = [fusedAttentionRows.max, flashAttention.minRows];
    try {
      fusedAttentionRows.max = 16;
      flashAttention.minRows = 1000;
      const between = await countPrograms(() => m.runWithHooks(prompts)); // 70 rows: above 16, below 1000
      expect(between.kinds.HeadlensFlashAttention ?? 0).toBe(0);
      expect(between.kinds.HeadlensAttention ?? 0).toBe(0);
      flashAttention.minRows = savedMin;
      const flash = await countPrograms(() => m.runWithHooks(prompts));
      expect(flash.kinds.HeadlensFlashAttention).toBe(cfg.n_layers);
      expect((await maxAbsDiffAsync(between.result, (await flash.result.data()) as Float32Array))).toBeLessThan(1e-4);
      tf.dispose([between.result, flash.result]);
    } finally {
      [fusedAttentionRows.max, flashAttention.minRows] = [savedMax, savedMin];
      m.dispose();
    }
  });

  it('past fusedAttentionRows.max rows a cache of the whole pattern takes the flash kernel that writes the rows (the plain path with single-output kernels), one of the last row still the flash kernel; no tensor is left behind', async () => {
    const m = HookedTransformer.random(cfg, { seed: 5, std: 0.15 });
    const savedMax = fusedAttentionRows.max;
    fusedAttentionRows.max = 16;
    try {
      await m.runWithHooks(prompts).data(); // first use makes the model's cached QKV weights
      const before = tf.memory().numTensors;
      const names = ['blocks.0.attn.hook_pattern'];
      const whole = await countPrograms(() => m.runWithCache(prompts, { names }));
      // layer 0 writes its pattern from the flash kernel (its unasked scores freed), layer 1 plain flash
      expect([whole.kinds.HeadlensFlashAttentionWithRows, whole.kinds.HeadlensFlashAttention]).toEqual([1, cfg.n_layers - 1]);
      webgpuHostTuning.leanDispatch = false; // single-output kernels: layer 0 takes the matmul path
      const plain = await countPrograms(() => m.runWithCache(prompts, { names }));
      webgpuHostTuning.leanDispatch = true;
      expect([plain.kinds.HeadlensFlashAttentionWithRows ?? 0, plain.kinds.HeadlensFlashAttention]).toEqual([0, cfg.n_layers - 1]);
      expect(await maxAbsDiffAsync(whole.result.cache.get(names[0]), (await plain.result.cache.get(names[0]).data()) as Float32Array)).toBeLessThan(1e-6);
      plain.result.logits.dispose();
      plain.result.cache.dispose();
      const last = await countPrograms(() => m.runWithCache(prompts, { names, patternRows: 'last' }));
      expect(last.kinds.HeadlensFlashAttention).toBe(cfg.n_layers);
      expect(last.kinds.HeadlensAttentionPattern).toBe(1);
      // the last row kept equals the whole pattern's last row
      const row = whole.result.cache.get(names[0]).slice([0, 0, 69, 0], [2, 4, 1, 70]);
      expect(await maxAbsDiffAsync(last.result.cache.get(names[0]), (await row.data()) as Float32Array)).toBeLessThan(1e-6);
      row.dispose();
      for (const r of [whole.result, last.result]) (r.logits.dispose(), r.cache.dispose());
      const cache = new KVCache(cfg.n_layers);
      const l1 = m.runWithHooks(prompts, { kvCache: cache, attentionMask: padding, logits: 'last' });
      const l2 = m.runWithHooks([[3], [4]], { kvCache: cache, logits: 'last' });
      await l2.data();
      tf.dispose([l1, l2]);
      cache.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      fusedAttentionRows.max = savedMax;
      webgpuHostTuning.leanDispatch = true;
      m.dispose();
    }
  });
});
