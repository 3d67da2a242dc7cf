/**
 * The forward on the webgpu backend against transformers, for every fixture, on SwiftShader (a CPU Vulkan): tfjs'
 * WebGPU kernels and headlens' WebGPU paths (rank-4 patch select, sliced attention, the async reads) are checked in
 * every test run, not only in the GPU machine's calls. Speed on SwiftShader means nothing; correctness does.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionSlicing } from '../src/model/attention.js';
import { optimisations } from '../src/model/transformer.js';
import { bucketBytes, webgpuHostTuning } from '../src/backend/webgpu_uploads.js';
import { fixtureErrors, fixtureTokens } from './device/fixture_parity.js';
import { encoderFixtureModels, encoderInputs, fixtureModels, maxAbsDiffAsync, reference, startSoftwareWebGPU } from './helpers.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';
import path from 'node:path';

const TOL = 1e-4;

beforeAll(async () => {
  await startSoftwareWebGPU();
});

describe('webgpu (SwiftShader) against transformers', () => {
  it.each(fixtureModels())('%s: logits, every hidden state and every pattern within 1e-4', async (name) => {
    const before = tf.memory().numTensors;
    const { model, errors } = await fixtureErrors(name);
    model.dispose();
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(encoderFixtureModels())('encoder %s: MLM logits, every hidden state and every pattern within 1e-4 (token types, padded row)', async (name) => {
    const before = tf.memory().numTensors;
    const model = await loadPretrained(path.join(FIXTURES, name));
    const ref = reference(name);
    const { ids, types, mask } = encoderInputs(name);
    const L = model.cfg.n_layers;
    const { logits, cache } = model.runWithCache(ids, { attentionMask: mask, tokenTypeIds: types, names: (n) => /hook_resid_pre$|hook_normalized_resid_post$|attn\.hook_pattern$/.test(n) });
    const errors: Record<string, number> = { logits: await maxAbsDiffAsync(logits, ref.float32('logits')) };
    for (let l = 0; l < L; l++) {
      errors[`hidden.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`));
      errors[`pattern.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.attn.hook_pattern`), ref.float32(`attentions.${l}`));
    }
    errors[`hidden.${L}`] = await maxAbsDiffAsync(cache.get(`blocks.${L - 1}.hook_normalized_resid_post`), ref.float32(`hidden_states.${L}`));
    cache.dispose();
    logits.dispose();
    model.dispose();
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('attention in slices of 2 query rows gives the same logits on webgpu (gpt2, llama-gqa, bert)', async () => {
    const saved = attentionSlicing.maxBytes;
    optimisations.fusedKernels = false; // the fused attention would take these short prompts in one dispatch
    try {
      for (const name of ['gpt2', 'llama-gqa', 'bert']) {
        const model = await loadPretrained(path.join(FIXTURES, name));
        // bert: its unpadded first row (slices run only without padding), bidirectional rows of the mask
        const tokens = name === 'bert' ? [encoderInputs(name).ids[0]] : fixtureTokens(name);
        attentionSlicing.maxBytes = 2 * tokens.length * model.cfg.n_heads * tokens[0].length * 4;
        const logits = model.runWithHooks(tokens, name === 'bert' ? { tokenTypeIds: [encoderInputs(name).types[0]] } : {});
        const err = await maxAbsDiffAsync(logits, reference(name).float32('logits').subarray(0, logits.size));
        logits.dispose();
        model.dispose();
        expect(err, name).toBeLessThan(TOL);
      }
    } finally {
      attentionSlicing.maxBytes = saved;
      optimisations.fusedKernels = true;
    }
  });

  it.each(fixtureModels())('%s: logits through the fused attention (no hooks) within 1e-4', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const logits = model.runWithHooks(fixtureTokens(name));
    const err = await maxAbsDiffAsync(logits, reference(name).float32('logits'));
    logits.dispose();
    model.dispose();
    expect(err, name).toBeLessThan(TOL);
  });

  it('a synchronous read is refused with the fix named, not answered with wrong numbers', async () => {
    // above tfjs' CPU hand-off size (1,000 values), so the add runs on the GPU and the result lives only there
    const x = tf.range(0, 5000);
    const t = x.add(1);
    expect(() => t.dataSync()).toThrow(/async/i);
    expect(Array.from((await t.data()).slice(0, 3))).toEqual([1, 2, 3]);
    tf.dispose([x, t]);
  });

  it('host values reach the GPU through queue.writeBuffer into pooled buffers: right values, no buffer made per upload', async () => {
    const be = tf.backend() as unknown as { device: { createBuffer: (d: unknown) => unknown } };
    const dev = be.device;
    const create = dev.createBuffer.bind(dev);
    let made = 0;
    dev.createBuffer = (d: unknown) => {
      made++;
      return create(d);
    };
    try {
      const n = 3000; // over tfjs' CPU hand-off size, so the ops below run on the GPU
      const sums: number[] = [];
      for (let i = 0; i < 6; i++) {
        const f = tf.tensor1d(Array.from({ length: n }, (_, j) => j * 0.5 + i), 'float32');
        const k = tf.tensor1d(Array.from({ length: n }, (_, j) => (j % 7) - 3), 'int32');
        const b = tf.tensor1d(Array.from({ length: n }, (_, j) => j % 2 === 0), 'bool');
        const out = tf.where(b, f.add(k.toFloat()), f.neg());
        const v = await out.data();
        let s = 0;
        for (const x of v) s += x;
        sums.push(s);
        tf.dispose([f, k, b, out]);
      }
      // the same sums in plain JavaScript
      for (let i = 0; i < 6; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += j % 2 === 0 ? j * 0.5 + i + ((j % 7) - 3) : -(j * 0.5 + i);
        expect(sums[i]).toBeCloseTo(s, 1);
      }
      // after the first round every buffer comes from the pool: tfjs' own path made a staging buffer per upload
      const before = made;
      const f = tf.tensor1d(Array.from({ length: n }, (_, j) => j), 'float32');
      const g = f.mul(2);
      await g.data();
      tf.dispose([f, g]);
      expect(made - before).toBeLessThanOrEqual(1); // the readback's staging buffer may be new
    } finally {
      dev.createBuffer = create;
    }
  });

  it('a tensor in a larger pooled bucket reads back exactly its own values; a growing tensor reuses buckets', async () => {
    expect(bucketBytes(80_004, 2 ** 31)).toBe(81_920);
    expect(bucketBytes(65_536, 2 ** 31)).toBe(65_536);
    expect(bucketBytes(2 ** 31 - 100, 2 ** 31 - 4)).toBe(2 ** 31 - 100); // never over the binding limit
    const n = 20_001; // 80,004 bytes: made in an 81,920-byte bucket
    const x = tf.range(0, n);
    const y = x.mul(3);
    const v = await y.data();
    expect(v.length).toBe(n);
    expect(v[n - 1]).toBe(3 * (n - 1));
    tf.dispose([x, y]);
    // a KV-cache-like tensor growing by one row a step: after the first steps the buckets come from the pool
    const be = tf.backend() as unknown as { device: { createBuffer: (d: unknown) => unknown } };
    const create = be.device.createBuffer.bind(be.device);
    let made = 0;
    be.device.createBuffer = (d: unknown) => {
      made++;
      return create(d);
    };
    try {
      let cache = tf.zeros([200, 128]);
      const row = tf.ones([1, 128]);
      const counts: number[] = [];
      for (let step = 0; step < 24; step++) {
        const before = made;
        const next = tf.concat([cache, row], 0);
        cache.dispose();
        cache = next;
        await cache.data(); // submit, so freed buffers return to the pool
        counts.push(made - before);
      }
      const last = await cache.data();
      expect(last.length).toBe((200 + 24) * 128);
      expect(last[last.length - 1]).toBe(1);
      expect(last[0]).toBe(0);
      // tfjs' exact-size pool would make a new buffer for every step; buckets of 8 per power of two need a few
      expect(counts.slice(4).reduce((a, b) => a + b, 0)).toBeLessThan(12);
      tf.dispose([cache, row]);
    } finally {
      be.device.createBuffer = create;
    }
  });
  it('freed buffers the open commands still use go back to the pool once pendingBytes of them wait, without a read', async () => {
    const be = tf.backend() as unknown as { tensorDataPendingDisposal: object[]; bufferManager: { getNumFreeBuffers(): number } };
    const saved = webgpuHostTuning.pendingBytes;
    const run = async (limit: number | null) => {
      webgpuHostTuning.pendingBytes = limit;
      await tf.ones([8]).data(); // a read: everything before is submitted, nothing waits
      const a = tf.range(0, 300_000).mul(2); // 1.2 MB, made and used by commands not yet submitted
      const b = a.add(1);
      const free = be.bufferManager.getNumFreeBuffers();
      a.dispose();
      const waiting = be.tensorDataPendingDisposal.length;
      const pooled = be.bufferManager.getNumFreeBuffers() - free;
      const v = await b.data();
      b.dispose();
      return { waiting, pooled, last: v[v.length - 1] };
    };
    try {
      const off = await run(null);
      const on = await run(2 ** 20); // 1 MiB: a's buffer alone passes it
      expect(off.waiting).toBeGreaterThan(0); // tfjs keeps it until the next submission
      expect(on.waiting).toBe(0);
      expect(on.pooled).toBeGreaterThan(0);
      expect(on.last).toBe(2 * 299_999 + 1);
      expect(off.last).toBe(on.last);
    } finally {
      webgpuHostTuning.pendingBytes = saved;
    }
  });
  it('with pendingBytes a KV-cached prefill holds fewer freed-but-waiting buffers at its peak, with the same logits', async () => {
    const { HookedTransformer } = await import('../src/hooks/hooked_transformer.js');
    const { makeConfig } = await import('../src/model/config.js');
    const { KVCache } = await import('../src/model/kv_cache.js');
    const { releaseGpuPool } = await import('../src/backend/index.js');
    const L = 256;
    const cfg = makeConfig({
      model_name: 'pending', d_model: 256, n_layers: 3, n_heads: 4, d_head: 64, d_mlp: 704, d_vocab: 500, n_ctx: L + 4, act_fn: 'silu', gated_mlp: true,
      normalization_type: 'RMS', positional_embedding_type: 'rotary', rotary_dim: 64, attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
    });
    const m = HookedTransformer.random(cfg, { seed: 1, lowRank: 16 });
    const bm = (tf.backend() as unknown as { bufferManager: { numBytesAllocated: number } }).bufferManager;
    const prompt = [Array.from({ length: L }, (_, i) => (i * 7919) % cfg.d_vocab)];
    const saved = webgpuHostTuning.pendingBytes;
    const run = async (limit: number | null) => {
      webgpuHostTuning.pendingBytes = limit;
      releaseGpuPool();
      const base = bm.numBytesAllocated;
      let peak = 0;
      const cache = new KVCache(cfg.n_layers, { capacity: L });
      const out = m.runWithHooks(prompt, { kvCache: cache, logits: 'last', fwdHooks: [[(n: string) => n.endsWith('hook_resid_post'), () => void (peak = Math.max(peak, bm.numBytesAllocated - base))]] });
      const v = await out.data();
      tf.dispose([out]);
      cache.dispose();
      return { peak, v };
    };
    try {
      const off = await run(null);
      const on = await run(8 * 2 ** 20);
      expect(on.peak, `peak ${off.peak} bytes without, ${on.peak} with`).toBeLessThan(0.75 * off.peak);
      expect(Array.from(on.v)).toEqual(Array.from(off.v));
    } finally {
      webgpuHostTuning.pendingBytes = saved;
      m.dispose();
    }
  });
});
