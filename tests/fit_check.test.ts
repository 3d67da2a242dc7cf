/**
 * A model that cannot fit fails before anything is loaded, with the numbers (bytes needed, bytes available, the
 * fix): on wasm against its 4 GiB memory, against a budget, and with 16-bit weights refused where they cannot be
 * kept. The configs here have no weights at all: the check runs before the checkpoint is opened.
 */
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { parseNvidiaSmi } from '../src/backend/memory_budget.js';
import { HeadlensError } from '../src/errors.js';
import { measurePeak } from '../src/bench/memory.js';
import { openCheckpoint } from '../src/loading/checkpoint_files.js';
import { checkModelFits } from '../src/loading/fit_check.js';
import { loadPretrained, readModelConfig } from '../src/loading/load.js';
import { buildModel, layerPlan } from '../src/loading/load_files.js';
import { makeConfig } from '../src/model/config.js';
import { weightMemory } from '../src/model/weight_memory.js';
import { FIXTURES, fixtureModels } from './helpers.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'headlens-fit-'));

// Llama-2-7B's config.json numbers
const LLAMA_7B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 32, intermediate_size: 11008, vocab_size: 32000, max_position_embeddings: 4096, hidden_act: 'silu',
  rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  fs.writeFileSync(path.join(TMP, 'config.json'), JSON.stringify(LLAMA_7B));
});

afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<HeadlensError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HeadlensError);
    return e as HeadlensError;
  }
  throw new Error('expected a HeadlensError, but the call succeeded');
}

describe('a model that does not fit fails before it starts', () => {
  it('llama-7b on wasm: refused with bytes needed, the 4 GiB available and the fix, before the (absent) weights are looked for', async () => {
    const err = await rejection(loadPretrained(TMP));
    // 6,738,415,616 parameters and the zero biases headlens adds (below) × 4 bytes, + the fused QKV copy
    const params = (6_738_415_616 + 32 * (3 * 4096 + 4096 + 2 * 11008 + 4096) + 32000) * 4;
    const qkv = 32 * 4096 * 12288 * 4 + 32 * 12288 * 4;
    expect(err.message).toContain('does not fit the wasm backend');
    expect(err.message).toContain(`${(params / 2 ** 30).toFixed(2)} GiB of parameters in float32`);
    expect(err.message).toContain(`${(qkv / 2 ** 30).toFixed(2)} GiB for the fused QKV copy`);
    expect(err.message).toContain(`${4 * 2 ** 30} bytes (4.00 GiB) are available`);
    expect(err.message).toMatch(/WebAssembly/);
    expect(err.fix ?? '').toMatch(/--backend webgpu/);
    expect(err.message).not.toMatch(/safetensors/);
  });

  it('the parameter bytes are the checkpoint\'s parameter count × 4 (float32) and, with 16-bit linear weights, a little over half', async () => {
    const cfg = makeConfig({ original_architecture: 'LlamaForCausalLM', d_model: 4096, n_layers: 32, n_heads: 32, d_head: 128, d_mlp: 11008, d_vocab: 32000, n_ctx: 4096, act_fn: 'silu', gated_mlp: true, normalization_type: 'RMS', positional_embedding_type: 'rotary', rotary_dim: 128 });
    const f32 = weightMemory(cfg);
    const b16 = weightMemory(cfg, { weights16: true });
    // headlens adds zero biases the checkpoint lacks: 32 × (3·4096 + 4096 + 2·11008 + 4096) + 32000 values
    const zeroBiases = 32 * (3 * 4096 + 4096 + 2 * 11008 + 4096) + 32000;
    expect(f32.paramBytes).toBe((6_738_415_616 + zeroBiases) * 4);
    // 16-bit: every matrix but the embedding at 2 bytes; embedding, norms and biases at 4
    const matrices = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 4096 * 32000;
    expect(b16.paramBytes).toBe(matrices * 2 + (f32.paramBytes - matrices * 4));
    expect(b16.paramBytes / f32.paramBytes).toBeGreaterThan(0.5);
    expect(b16.paramBytes / f32.paramBytes).toBeLessThan(0.53);
    expect(b16.qkvBytes).toBe(32 * 12288 * 4); // only the fused bias: the fused matrix is the storage
    // a layer at a time, loading needs little above the parameters (converting whole held the checkpoint beside them)
    const { llama } = await import('../src/loading/families/llama.js');
    const globals = llama.hfShapes({ ...cfg, n_layers: 0 });
    const layer = Object.fromEntries(Object.entries(llama.hfShapes({ ...cfg, n_layers: 1 })).filter(([n]) => !(n in globals)));
    expect(weightMemory(cfg, { hf: { globals, layer } }).loadPeakBytes / f32.paramBytes).toBeLessThan(1.1);
    expect(weightMemory(cfg, { weights16: true, hf: { globals, layer } }).loadPeakBytes / f32.paramBytes).toBeLessThan(0.65);
  });

  it('a budget below what a small model needs refuses it, naming the budget; above, the model loads', async () => {
    const dir = path.join(FIXTURES, 'gpt2');
    const err = await rejection(loadPretrained(dir, { memoryBudget: 1000 }));
    expect(err.message).toMatch(/1000 bytes .* are available \(the budget given\)/);
    const model = await loadPretrained(dir, { memoryBudget: 2 ** 30 });
    model.dispose();
  });

  it('16-bit weights on wasm are refused with the reason and the fix', async () => {
    const err = await rejection(loadPretrained(path.join(FIXTURES, 'gpt2-sharded-f16'), { weights: '16bit' }));
    expect(err.message).toMatch(/webgpu backend only \(running: wasm\)/);
    expect(err.fix ?? '').toMatch(/float32/);
  });

  it('checkModelFits returns the numbers it compared', async () => {
    const cfg = makeConfig({ d_model: 8, n_layers: 1, n_heads: 2, d_head: 4, d_mlp: 16, d_vocab: 10, n_ctx: 4 });
    const { needs, device } = await checkModelFits(cfg);
    expect(device.totalBytes).toBe(4 * 2 ** 30);
    // globals: W_E 10×8, W_pos 4×8, ln_final 2×8, W_U 8×10, b_U 10 = 218 values; the layer: norms 4×8, W_Q/K/V
    // 3×2×8×4, their biases 3×8, W_O 2×4×8, b_O 8, W_in and W_out 2×8×16, b_in 16, b_out 8 = 600 values
    expect(needs.paramBytes).toBe((218 + 600) * 4);
    // loading holds the parameters and, at most, the checkpoint tensors of the globals or of one layer (no
    // checkpoint shapes given: the converted ones stand in) with room for the conversion's intermediates: the layer's
    expect(needs.loadPeakBytes).toBe((218 + 600) * 4 + 2 * 600 * 4);
  });

  it('nvidia-smi output is read per card, in MiB', () => {
    expect(parseNvidiaSmi('81559, 1024\n81559, 80000\n')).toEqual([
      { total: 81559 * 2 ** 20, used: 1024 * 2 ** 20 },
      { total: 81559 * 2 ** 20, used: 80000 * 2 ** 20 },
    ]);
    expect(parseNvidiaSmi('NVIDIA-SMI has failed\n')).toEqual([]);
  });
});

describe('bench --long --weights 16bit', () => {
  it('is refused on wasm before any weight is made, naming the backend', async () => {
    const { runLongBench } = await import('../src/bench/long_context.js');
    const err = await rejection(runLongBench({ preset: 'gpt2-small', contexts: [8], weights: '16bit' }));
    expect(err.message).toMatch(/webgpu only \(running: wasm\)/);
  });
});

describe('loading a layer at a time', () => {
  it.each(fixtureModels())('%s: converted layer by layer, holding at its peak no more than the fit check predicts', (name) => {
    const dir = path.join(FIXTURES, name);
    const { cfg, family } = readModelConfig(dir);
    expect(layerPlan(cfg, family), 'the family\'s names map layer by layer').toBeDefined();
    const globals = family.hfShapes({ ...cfg, n_layers: 0 });
    const layer = Object.fromEntries(Object.entries(family.hfShapes({ ...cfg, n_layers: 1 })).filter(([n]) => !(n in globals)));
    const needs = weightMemory(cfg, { hf: { globals, layer } });
    const { out, peak } = measurePeak(() => buildModel(cfg, family, openCheckpoint(dir), dir) as unknown as tf.Tensor);
    (out as unknown as { dispose(): void }).dispose();
    expect(peak).toBeLessThanOrEqual(needs.loadPeakBytes);
  });
});
