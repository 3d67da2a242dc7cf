/**
 * 16-bit weights on WebGPU (SwiftShader): the packed matmul against tf.matMul of the same weights unpacked to
 * float32, for f16 and bf16, odd widths and widths that are no multiple of the 64-column tile, one row and many;
 * fixtures loaded with 16-bit weights against transformers; bytes held on the GPU; no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { deviceMemory } from '../src/backend/memory_budget.js';
import { fusedAdd3, fusedGatedActivation } from '../src/backend/webgpu_kernels/activation.js';
import { fusedNorm, fusedNormOfSum } from '../src/backend/webgpu_kernels/norm.js';
import { matMul16, matmul16Options, pack16, unpack16, vectorKernelTakes, type Format16 } from '../src/backend/webgpu_kernels/matmul16.js';
import { loadPretrained } from '../src/loading/load.js';
import { weightMemory } from '../src/model/weight_memory.js';
import { linear16, PackedLinear, weights16Options } from '../src/model/weights16.js';
import { fixtureTokens, modelFixtureErrors } from './device/fixture_parity.js';
import { countPrograms as countKinds, FIXTURES, maxAbsDiffAsync, reference, startSoftwareWebGPU } from './helpers.js';

beforeAll(async () => {
  await startSoftwareWebGPU();
});

/** Largest |a − b| / max|b|, read asynchronously. */
async function relErr(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [(await a.data()) as Float32Array, (await b.data()) as Float32Array];
  expect(x.length).toBe(y.length);
  let m = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = d;
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return m / scale;
}

/** f32 → the nearest value of the format, in JavaScript (the reference for what pack16 must store). */
function round16(v: Float32Array, format: Format16): Float32Array {
  const out = new Float32Array(v.length);
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const ob = new Uint32Array(out.buffer);
  for (let i = 0; i < v.length; i++) {
    if (format === 'bf16') {
      const u = bits[i];
      ob[i] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
    } else {
      out[i] = Math.fround(toF16(v[i]));
    }
  }
  return out;
}

/** Nearest float16 value (ties to even) as a number; the inputs here are well inside f16's normal range. */
function toF16(x: number): number {
  if (x === 0) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const step = 2 ** (e - 10);
  const q = x / step;
  const r = Math.round(q);
  const tie = Math.abs(q - Math.trunc(q)) === 0.5;
  return (tie && r % 2 !== 0 ? r - Math.sign(q) : r) * step;
}

describe('packed 16-bit matmul (webgpu)', () => {
  for (const format of ['f16', 'bf16'] as const) {
    it(`${format}: pack16 stores the nearest ${format} value and unpack16 gives it back`, async () => {
      const K = 7;
      const N = 37; // odd: the last pair's high half is padding
      const W = tf.randomNormal([K, N], 0, 1, 'float32', 11) as tf.Tensor2D;
      const P = pack16(W, format);
      expect(P.shape).toEqual([K, 19]);
      expect(P.dtype).toBe('int32');
      const back = unpack16(P, N, format);
      const want = round16((await W.data()) as Float32Array, format);
      expect(Array.from((await back.data()) as Float32Array)).toEqual(Array.from(want));
      tf.dispose([W, P, back]);
    });

    it(`${format}: x·W + b equals tf.matMul of the unpacked weights within 1e-5 relative (M 1, 2, 3, 8, 13; N odd and not multiples of 64)`, async () => {
      const before = tf.memory().numTensors;
      for (const [M, K, N] of [[1, 64, 96], [2, 40, 66], [3, 50, 129], [8, 128, 257], [13, 33, 70], [1, 300, 1000]]) {
        const x = tf.randomNormal([M, K], 0, 1, 'float32', M + K) as tf.Tensor2D;
        const W = tf.randomNormal([K, N], 0, 0.1, 'float32', N) as tf.Tensor2D;
        const b = tf.randomNormal([N], 0, 1, 'float32', 5);
        const P = pack16(W, format);
        const Wf = unpack16(P, N, format);
        const got = matMul16(x, P, b, N, format);
        const want = tf.tidy(() => tf.add(tf.matMul(x, Wf), b));
        expect(got.shape).toEqual([M, N]);
        expect(await relErr(got, want), `${format} M ${M} K ${K} N ${N}`).toBeLessThan(1e-5);
        tf.dispose([x, W, b, P, Wf, got, want]);
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('the vector kernel (N a multiple of 8) at 4, 8 and 16 lanes and the pair kernel (lanes 0) agree with tf.matMul of the unpacked weights within 1e-5 (M 1, 2, 3, 8, 13)', async () => {
    const before = tf.memory().numTensors;
    const saved = matmul16Options.lanes;
    try {
      for (const lanes of [4, 8, 16, 0] as const) {
        matmul16Options.lanes = lanes;
        for (const [M, K, N] of [[1, 64, 96], [2, 40, 64], [3, 52, 136], [8, 128, 264], [13, 36, 72]]) {
          const x = tf.randomNormal([M, K], 0, 1, 'float32', M + K) as tf.Tensor2D;
          const W = tf.randomNormal([K, N], 0, 0.1, 'float32', N) as tf.Tensor2D;
          const b = tf.randomNormal([N], 0, 1, 'float32', 5);
          const P = pack16(W, 'bf16');
          const Wf = unpack16(P, N, 'bf16');
          const counter = countPrograms();
          const got = matMul16(x, P, b, N, 'bf16');
          const ran = counter.stop();
          const want = tf.tidy(() => tf.add(tf.matMul(x, Wf), b));
          expect(ran, `lanes ${lanes}`).toEqual(lanes === 0 ? { headlensMatMul16: 1 } : { headlensMatMul16v: 1 });
          expect(await relErr(got, want), `lanes ${lanes} M ${M} K ${K} N ${N}`).toBeLessThan(1e-5);
          tf.dispose([x, W, b, P, Wf, got, want]);
        }
      }
    } finally {
      matmul16Options.lanes = saved;
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('epilogues: the gated product equals the two products and fusedGatedActivation, the residual one the product and fusedAdd3 (within 1e-6), the norm prologue the norm kernel and the product (2e-6); shapes the vector kernel does not take are refused', async () => {
    const before = tf.memory().numTensors;
    for (const [M, K, N] of [[1, 64, 96], [3, 40, 136], [8, 128, 64]]) {
      const x = tf.randomNormal([M, K], 0, 1, 'float32', 7 + M) as tf.Tensor2D;
      const [Pg, Pu] = [1, 2].map((s) => tf.tidy(() => pack16(tf.randomNormal([K, N], 0, 0.2, 'float32', s) as tf.Tensor2D, 'bf16')));
      const [bg, bu] = [3, 4].map((s) => tf.randomNormal([N], 0, 1, 'float32', s));
      const [ra, rb] = [5, 6].map((s) => tf.randomNormal([1, M, N], 0, 1, 'float32', s));
      for (const act of ['silu', 'gelu_new'] as const) {
        const fusedGated = matMul16(x, Pg, bg, N, 'bf16', { gated: { act, up: Pu, upBias: bu } });
        const parts = tf.tidy(() => fusedGatedActivation(act, matMul16(x, Pg, bg, N, 'bf16'), matMul16(x, Pu, bu, N, 'bf16')));
        expect(await relErr(fusedGated, parts), `gated ${act} M ${M}`).toBeLessThan(1e-6);
        tf.dispose([fusedGated, parts]);
      }
      const fusedAdd = matMul16(x, Pg, bg, N, 'bf16', { add: [ra, rb] });
      const sum = tf.tidy(() => fusedAdd3(ra.reshape([M, N]), rb.reshape([M, N]), matMul16(x, Pg, bg, N, 'bf16')));
      expect(await relErr(fusedAdd, sum), `add M ${M}`).toBeLessThan(1e-6);
      tf.dispose([x, Pg, Pu, bg, bu, ra, rb, fusedAdd, sum]);
    }
    // the norm prologue: RMSNorm and LayerNorm (with a bias), of x or of x + addend, before a plain or gated product
    for (const [M, K, N] of [[1, 64, 96], [3, 40, 136]]) {
      const x = tf.randomNormal([M, K], 0, 1, 'float32', 17) as tf.Tensor2D;
      const addend = tf.randomNormal([1, M, K], 0, 1, 'float32', 18);
      const w = tf.randomNormal([K], 1, 0.1, 'float32', 19);
      const nb = tf.randomNormal([K], 0, 0.1, 'float32', 20);
      const [Pg, Pu] = [21, 22].map((s) => tf.tidy(() => pack16(tf.randomNormal([K, N], 0, 0.2, 'float32', s) as tf.Tensor2D, 'bf16')));
      const [bg, bu] = [23, 24].map((s) => tf.randomNormal([N], 0, 1, 'float32', s));
      for (const type of ['RMS', 'LN'] as const) {
        for (const summed of [false, true]) {
          const b = type === 'LN' ? nb : undefined;
          const norm = { type, w, b, eps: 1e-5, addend: summed ? addend : undefined };
          const normed = tf.tidy(() => (summed ? fusedNormOfSum(x, addend.reshape([M, K]), w, b, 1e-5, type) : fusedNorm(x, w, b, 1e-5, type)) as tf.Tensor2D);
          const fusedPlain = matMul16(x, Pg, bg, N, 'bf16', { norm });
          const plain = matMul16(normed, Pg, bg, N, 'bf16');
          expect(await relErr(fusedPlain, plain), `norm ${type} summed ${summed} M ${M}`).toBeLessThan(2e-6);
          const withGate = { norm, gated: { act: 'silu' as const, up: Pu, upBias: bu } };
          tf.dispose([fusedPlain, plain]);
          if (type === 'LN' && summed) {
            // 9 storage buffers: more than every device binds
            expect(vectorKernelTakes(K, N, withGate)).toBe(false);
            expect(() => matMul16(x, Pg, bg, N, 'bf16', withGate)).toThrow(/at most 8 storage buffers .*9 buffers/);
            normed.dispose();
            continue;
          }
          const fusedGated = matMul16(x, Pg, bg, N, 'bf16', withGate);
          const gated = matMul16(normed, Pg, bg, N, 'bf16', { gated: withGate.gated });
          expect(await relErr(fusedGated, gated), `norm ${type} summed ${summed} gated M ${M}`).toBeLessThan(2e-6);
          tf.dispose([normed, fusedGated, gated]);
        }
      }
      tf.dispose([x, addend, w, nb, Pg, Pu, bg, bu]);
    }
    const x = tf.ones([1, 8]) as tf.Tensor2D;
    const P = tf.tidy(() => pack16(tf.ones([8, 6]) as tf.Tensor2D, 'bf16'));
    const b = tf.zeros([6]);
    const r = tf.zeros([1, 6]);
    expect(() => matMul16(x, P, b, 6, 'bf16', { add: [r, r] })).toThrow(/vector kernel.*N a multiple of 8/);
    tf.dispose([x, P, b, r]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Largest |error| against transformers: logits, every resid_pre and pattern, ln_final (fixture_parity.ts). */
const fixtureErrors = modelFixtureErrors;

/** Counts the headlens WebGPU programs run until stop(), by the start of their shader key. */
function countPrograms(): { stop(): Record<string, number> } {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const original = be.runWebGPUProgram;
  const counts: Record<string, number> = {};
  be.runWebGPUProgram = function (this: unknown, p: { shaderKey: string }, ...rest: unknown[]) {
    const kind = /^headlens[A-Za-z0-9]+/.exec(p.shaderKey)?.[0];
    if (kind) counts[kind] = (counts[kind] ?? 0) + 1;
    return original.call(this, p, ...rest);
  };
  return {
    stop: () => {
      be.runWebGPUProgram = original;
      return counts;
    },
  };
}

/** Products the packed kernels ran: the pair kernel's and the vector kernel's (headlensMatMul16v). */
const packedProducts = (ran: Record<string, number>) => (ran.headlensMatMul16 ?? 0) + (ran.headlensMatMul16v ?? 0);

const FIXTURES16 = [['gpt2-sharded-f16', 'f16'], ['llama-mqa-tied-bias-bf16', 'bf16']] as const;

describe('checkpoints loaded with 16-bit weights (webgpu)', () => {
  it.each(FIXTURES16)('%s: within 1e-4 of transformers through the packed kernel (decode-sized rows), its gated and residual epilogues and norm prologue, and through unpacking (prefill-sized)', async (name, format) => {
    const before = tf.memory().numTensors;
    const saved = weights16Options.kernelMaxRows;
    const model = await loadPretrained(path.join(FIXTURES, name), { weights: '16bit' });
    try {
      expect(model.weights16).toBe(format);
      for (const rows of [1e9, 0]) {
        weights16Options.kernelMaxRows = rows; // every product through the kernel, then none
        const programs = countPrograms();
        const errors = await fixtureErrors(model, name);
        const ran = programs.stop();
        for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k} (kernelMaxRows ${rows})`).toBeLessThan(1e-4);
        // per layer QKV, W_O and the MLP's 2 or 3 matrices, then the unembedding: through the kernel, or unpacked first
        const perLayer = 2 + (model.cfg.gated_mlp ? 3 : 2);
        const products = model.cfg.n_layers * perLayer + 1;
        expect(rows ? packedProducts(ran) : (ran.headlensUnpack16 ?? 0)).toBe(products);
        expect(rows ? (ran.headlensUnpack16 ?? 0) : packedProducts(ran)).toBe(0);
      }
      // a forward without hooks at decode-sized rows: the gated MLP in one dispatch, the residual sum in W_out's
      weights16Options.kernelMaxRows = 1e9;
      const { result: logits, kinds } = await countKinds(() => model.forward(fixtureTokens(name)));
      expect(await maxAbsDiffAsync(logits, reference(name).float32('logits')), `${name} logits through the epilogues`).toBeLessThan(1e-4);
      logits.dispose();
      const L = model.cfg.n_layers;
      const takes = vectorKernelTakes(model.cfg.d_mlp!, model.cfg.d_model);
      // a gated MLP's product also computes ln2 of resid + attn_out (the norm prologue), so ln2 has no dispatch of its own
      const gatedInOne = model.cfg.gated_mlp && vectorKernelTakes(model.cfg.d_model, model.cfg.d_mlp!) ? L : 0;
      expect(kinds.HeadlensMatMul16NormGated ?? 0).toBe(gatedInOne);
      expect(kinds.HeadlensNormOfSum ?? 0).toBe(L - gatedInOne);
      // ln1 inside the QKV product, so the only norm dispatch left is ln_final's
      const { n_heads: h, n_key_value_heads: kv, d_head: e, d_model } = model.cfg;
      const qkvInOne = vectorKernelTakes(d_model, (h + 2 * kv) * e) ? L : 0;
      expect(kinds.HeadlensMatMul16Norm ?? 0).toBe(qkvInOne);
      expect(kinds.HeadlensNorm ?? 0).toBe(L - qkvInOne + 1);
      expect(kinds.HeadlensMatMul16Add ?? 0).toBe(takes ? L : 0);
    } finally {
      weights16Options.kernelMaxRows = saved;
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(FIXTURES16)('%s: the GPU holds the predicted bytes, the linear weights at half; param() gives float32 equal to a float32 load', async (name) => {
    const dir = path.join(FIXTURES, name);
    const tokens = fixtureTokens(name);
    const start = tf.memory().numBytes;
    const f32 = await loadPretrained(dir);
    const out32 = f32.runWithHooks(tokens);
    out32.dispose();
    const bytes32 = tf.memory().numBytes - start; // the parameters and the fused QKV copy made at the first forward
    const b16 = await loadPretrained(dir, { weights: '16bit' });
    const out16 = b16.runWithHooks(tokens);
    out16.dispose();
    const bytes16 = tf.memory().numBytes - start - bytes32;
    const f32Need = weightMemory(f32.cfg);
    const b16Need = weightMemory(b16.cfg, { weights16: true });
    expect(bytes32).toBe(f32Need.paramBytes + f32Need.qkvBytes);
    expect(bytes16).toBe(b16Need.paramBytes + b16Need.qkvBytes);
    // in these tiny models embeddings and biases are a large share; the packed matrices themselves are half (odd widths padded)
    expect(bytes16 / bytes32).toBeLessThan(0.7);
    const names = ['blocks.0.attn.W_Q', 'blocks.1.attn.W_K', 'blocks.1.attn.W_V', 'blocks.0.attn.W_O', 'blocks.1.mlp.W_in', 'blocks.0.mlp.W_out', 'unembed.W_U'];
    for (const n of names) {
      const a = b16.param(n);
      expect(a.dtype, n).toBe('float32');
      expect(a.shape, n).toEqual(f32.param(n).shape);
      expect(await maxAbsDiffAsync(a, (await f32.param(n).data()) as Float32Array), n).toBe(0);
    }
    const copies = names.reduce((n, w) => n + b16.param(w).size * 4, 0);
    expect(b16.releaseFloat32Copies()).toBe(copies);
    f32.dispose();
    b16.dispose();
    expect(tf.memory().numBytes).toBe(start);
  });

  it('setParams on a 16-bit W_Q makes that layer\'s QKV float32 again and the model still matches transformers; no tensor leaks', async () => {
    const name = 'llama-mqa-tied-bias-bf16';
    const before = tf.memory().numTensors;
    const model = await loadPretrained(path.join(FIXTURES, name), { weights: '16bit' });
    const W = model.param('blocks.1.attn.W_Q').clone();
    model.setParams({ 'blocks.1.attn.W_Q': W });
    expect(model.linearWeight('blocks.1.mlp.W_in')).not.toBeInstanceOf(tf.Tensor); // other weights stay 16-bit
    expect(model.qkvWeights(1).W).toBeInstanceOf(tf.Tensor);
    const errors = await fixtureErrors(model, name);
    for (const [k, v] of Object.entries(errors)) expect(v, k).toBeLessThan(1e-4);
    const n = tf.memory().numTensors;
    (await fixtureErrors(model, name)) && undefined; // a second forward leaves nothing behind
    expect(tf.memory().numTensors).toBe(n);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a float32 checkpoint is refused for 16-bit weights: packing would round it', async () => {
    await expect(loadPretrained(path.join(FIXTURES, 'gpt2'), { weights: '16bit' })).rejects.toThrow(/all F16 or all BF16; .* has F32/);
  });
});

describe('decoding and the fit check with 16-bit weights (webgpu)', () => {
  it('greedy decoding with the KV cache (one row a step, through the packed kernel) writes the tokens a float32 load writes', async () => {
    const dir = path.join(FIXTURES, 'llama-mqa-tied-bias-bf16');
    const prompt = fixtureTokens('llama-mqa-tied-bias-bf16').map((r) => r.slice(0, 6));
    const before = tf.memory().numTensors;
    const f32 = await loadPretrained(dir);
    const b16 = await loadPretrained(dir, { weights: '16bit' });
    const programs = countPrograms();
    const got = await b16.generateAsync(prompt, { maxNewTokens: 6 });
    const ran = programs.stop();
    const want = await f32.generateAsync(prompt, { maxNewTokens: 6 });
    expect(got.tokens).toEqual(want.tokens);
    expect(packedProducts(ran)).toBeGreaterThan(0); // the decode steps (2 rows each) went through the kernel
    f32.dispose();
    b16.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('WebGPU gives no device memory: without a budget only tensors are checked, and the report says so; a budget refuses with the numbers', async () => {
    const mem = await deviceMemory();
    expect(mem.totalBytes).toBeUndefined();
    expect(mem.source).toMatch(/WebGPU does not report the device's memory/);
    expect(mem.maxTensorBytes).toBeGreaterThan(0);
    await expect(loadPretrained(path.join(FIXTURES, 'gpt2-sharded-f16'), { weights: '16bit', memoryBudget: 1000 })).rejects.toThrow(
      /does not fit the webgpu backend: its weights need \d+ bytes .*16-bit linear weights.*1000 bytes .* are available \(the budget given\)/,
    );
  });

  it('on an NVIDIA adapter the free memory nvidia-smi reports is the total (the largest card of several)', async () => {
    const be = tf.backend() as unknown as { adapterInfo: { vendor: string } };
    const vendor = be.adapterInfo.vendor;
    be.adapterInfo.vendor = 'nvidia'; // SwiftShader's adapter, named as NVIDIA's for this check
    try {
      const mem = await deviceMemory({ nvidiaSmi: async () => '81559, 1024\n81559, 70000\n' });
      expect(mem.totalBytes).toBe((81559 - 1024) * 2 ** 20);
      expect(mem.source).toMatch(/nvidia-smi .*largest of 2 cards/);
      const none = await deviceMemory({ nvidiaSmi: async () => undefined });
      expect(none.totalBytes).toBeUndefined();
      expect(none.source).toMatch(/nvidia-smi gave no answer/);
    } finally {
      be.adapterInfo.vendor = vendor;
    }
  });
});

describe('gradients through 16-bit weights (webgpu)', () => {
  it('d/dx of sum(x·W + b) at one row is W\'s row sums (the tape takes the unpacked path)', async () => {
    const before = tf.memory().numTensors;
    const W = tf.randomNormal([40, 70], 0, 1, 'float32', 9) as tf.Tensor2D;
    const P = PackedLinear.pack(W, 'bf16');
    const b = tf.zeros([70]);
    const x = tf.randomNormal([1, 40], 0, 1, 'float32', 4) as tf.Tensor2D;
    const g = tf.grad((v: tf.Tensor) => linear16(v as tf.Tensor2D, P, b, false).sum())(x);
    const Wf = P.unpack();
    const want = tf.tidy(() => Wf.sum(1).reshape([1, 40]));
    expect(await relErr(g, want)).toBeLessThan(1e-5);
    tf.dispose([W, b, x, g, Wf, want]);
    P.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
