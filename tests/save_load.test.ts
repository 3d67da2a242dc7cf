/**
 * saveModel writes the HuggingFace layout of the model's family; loading that folder gives the model
 * back bit for bit. Checked for every fixture family and for an attention-only model of headlens' own
 * layout (model_type 'headlens').
 */
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained, readModelConfig } from '../src/loading/load.js';
import { saveModel } from '../src/loading/save.js';
import { makeConfig } from '../src/model/config.js';
import type { Transformer } from '../src/model/transformer.js';
import { FIXTURES, fixtureModels } from './helpers.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'headlens-save-'));
const TOKENS = [
  [1, 5, 9, 14, 2, 7, 11],
  [3, 3, 8, 0, 12, 6, 4],
];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

function bits(t: tf.Tensor): Uint32Array {
  const d = t.dataSync() as Float32Array;
  return new Uint32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

/** Names of parameters whose bits differ, and logits compared bit for bit. */
function expectSameModel(a: Transformer, b: Transformer): void {
  expect(b.cfg).toEqual(a.cfg);
  expect(b.paramNames()).toEqual(a.paramNames());
  const differ = a.paramNames().filter((n) => {
    const x = bits(a.param(n));
    const y = bits(b.param(n));
    return a.param(n).shape.join() !== b.param(n).shape.join() || x.length !== y.length || x.some((v, i) => v !== y[i]);
  });
  expect(differ).toEqual([]);
  const la = a.forward(TOKENS);
  const lb = b.forward(TOKENS);
  expect(bits(lb)).toEqual(bits(la));
  la.dispose();
  lb.dispose();
}

/** Saves the model, loads it back and expects the same model (expectSameModel); disposes both. */
async function expectRoundTrip(model: Transformer, name: string): Promise<void> {
  const dir = path.join(TMP, name);
  await saveModel(model, dir);
  const reloaded = await loadPretrained(dir);
  try {
    expectSameModel(model, reloaded);
  } finally {
    model.dispose();
    reloaded.dispose();
  }
}

/** The config.json keys each family must write (transformers' names), and ones it must not. */
const HF_KEYS: Record<string, { has: string[]; hasNot: string[] }> = {
  gpt2: { has: ['n_embd', 'n_layer', 'n_head', 'n_positions', 'vocab_size', 'layer_norm_epsilon', 'activation_function'], hasNot: ['hidden_size', 'd_model'] },
  gpt_neox: { has: ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings', 'use_parallel_residual', 'layer_norm_eps', 'rope_parameters'], hasNot: ['n_embd', 'd_model'] },
  llama: { has: ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'rms_norm_eps', 'rope_parameters', 'attention_bias', 'mlp_bias'], hasNot: ['n_embd', 'd_model'] },
  mistral: { has: ['hidden_size', 'num_key_value_heads', 'sliding_window', 'rope_parameters'], hasNot: ['n_embd', 'd_model'] },
  qwen2: { has: ['hidden_size', 'num_key_value_heads', 'use_sliding_window', 'rope_parameters'], hasNot: ['n_embd', 'd_model'] },
};

describe.each(fixtureModels())('saveModel then loadPretrained: %s', (name) => {
  it('gives bit-identical parameters and logits, the same tokenizer, and config.json in HF field names', async () => {
    const original = await loadPretrained(path.join(FIXTURES, name));
    const dir = path.join(TMP, name);
    await saveModel(original, dir);
    const reloaded = await loadPretrained(dir);
    try {
      expectSameModel(original, reloaded);

      // tokenizer.json carried over, and it tokenizes the same
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'))).toEqual(
        JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'tokenizer.json'), 'utf8')),
      );
      const text = 'When Mary and John went to the store';
      expect(reloaded.toTokens(text)).toEqual(original.toTokens(text));

      // the saved config.json is the family's, with transformers' field names and the same model_type
      const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      const source = JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'config.json'), 'utf8'));
      expect(saved.model_type).toBe(source.model_type);
      expect(saved.architectures).toEqual(source.architectures);
      const keys = HF_KEYS[saved.model_type];
      for (const k of keys.has) expect(saved, `${name}: ${k}`).toHaveProperty(k);
      for (const k of keys.hasNot) expect(saved, `${name}: ${k}`).not.toHaveProperty(k);
      // and the values that define the architecture agree with the source
      for (const k of ['n_embd', 'n_layer', 'n_head', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'tie_word_embeddings', 'sliding_window', 'use_parallel_residual']) {
        if (k in source && source[k] !== null) expect(saved[k], `${name}: ${k}`).toEqual(source[k]);
      }
      expect(readModelConfig(dir).cfg).toEqual({ ...readModelConfig(path.join(FIXTURES, name)).cfg, model_name: original.cfg.model_name });

      // float32 weights, no prefix surprises: the saved file reloads without any unexpected tensor
      expect(saved.dtype).toBe('float32');
    } finally {
      original.dispose();
      reloaded.dispose();
    }
  });
});

describe('saveModel of a headlens-native model', () => {
  it("an attention-only random model round-trips through model_type 'headlens'", async () => {
    const cfg = makeConfig({ model_name: 'attn-only-2l', d_model: 16, n_layers: 2, n_heads: 2, d_head: 8, d_vocab: 20, n_ctx: 16, attn_only: true });
    const model = HookedTransformer.random(cfg, { seed: 7, std: 0.5 });
    const dir = path.join(TMP, 'attn-only');
    await saveModel(model, dir);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(saved.model_type).toBe('headlens');
    expect(saved.headlens_config.attn_only).toBe(true);
    expect(fs.existsSync(path.join(dir, 'tokenizer.json'))).toBe(false);
    const reloaded = await loadPretrained(dir);
    try {
      expectSameModel(model, reloaded);
      expect(reloaded.tokenizer).toBeUndefined();
    } finally {
      model.dispose();
      reloaded.dispose();
    }
  });

  it('a rotary, RMS-normed, gated model with GQA and tied embeddings and every bias round-trips too', async () => {
    const cfg = makeConfig({
      model_name: 'toy-rotary', d_model: 16, n_layers: 1, n_heads: 4, n_key_value_heads: 2, d_head: 4, d_mlp: 24, d_vocab: 20, n_ctx: 16,
      normalization_type: 'RMS', positional_embedding_type: 'rotary', rotary_dim: 2, gated_mlp: true, act_fn: 'silu',
      tie_word_embeddings: true, unembed_bias: true, original_architecture: 'ToyRotary',
    });
    const model = HookedTransformer.random(cfg, { seed: 3, std: 0.5 });
    // give the biases values, so that a bias saved or loaded wrongly would show
    const biases = Object.fromEntries(model.paramNames().filter((n) => /\.b_\w+$/.test(n)).map((n, i) => [n, tf.randomNormal(model.param(n).shape, 0, 0.5, 'float32', 100 + i)]));
    model.setParams(biases);
    await expectRoundTrip(model, 'toy-rotary');
  });

  it('a model named LlamaForCausalLM (or GPT-NeoX, GPT-2, BERT) whose settings that architecture cannot express is refused before anything is written, naming each setting', async () => {
    const base = {
      model_name: 'not-quite-llama', original_architecture: 'LlamaForCausalLM', d_model: 16, n_layers: 1, n_heads: 2, d_head: 8, d_mlp: 24, d_vocab: 20, n_ctx: 16,
      normalization_type: 'RMS', positional_embedding_type: 'rotary', gated_mlp: true, act_fn: 'silu', attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
    } as const;
    // partial rotary (fused_check's tiny llama had it): transformers' Llama would rotate every dimension; and the
    // other families check theirs too
    for (const [cfg, named] of [
      [{ ...base, rotary_dim: 4 }, /rotary_dim 4 \(the whole head, 8/],
      [{ ...base, parallel_attn_mlp: true }, /parallel_attn_mlp/],
      [{ ...base, normalization_type: 'LN' }, /normalization_type LN \(RMS\)/],
      [{ ...base, original_architecture: 'GPTNeoXForCausalLM', normalization_type: 'LN', mlp_bias: true }, /as GPTNeoXForCausalLM: gated_mlp true/],
      [{ ...base, original_architecture: 'GPT2LMHeadModel', normalization_type: 'LN', gated_mlp: false, attn_qkv_bias: true, attn_out_bias: true, mlp_bias: true }, /as GPT2LMHeadModel: positional_embedding_type rotary/],
      [{ ...base, original_architecture: 'BertForMaskedLM', normalization_type: 'LN', positional_embedding_type: 'standard', gated_mlp: false, attn_qkv_bias: true, attn_out_bias: true, mlp_bias: true }, /as BertForMaskedLM: attention_dir causal, norm_placement pre/],
    ] as const) {
      const model = HookedTransformer.random(makeConfig(cfg), { seed: 1 });
      const dir = path.join(TMP, 'refused');
      try {
        await expect(saveModel(model, dir)).rejects.toThrow(named);
        expect(fs.existsSync(dir)).toBe(false);
      } finally {
        model.dispose();
      }
    }
    // the same settings as Llama's are saved, and come back
    await expectRoundTrip(HookedTransformer.random(makeConfig(base), { seed: 1 }), 'llama-shaped');
  });

  it('a GPT-NeoX whose rotary width over d_head does not survive float rounding (30 of 44: ⌊44 · (30/44)⌋ is 29) round-trips with the same rotary width', async () => {
    const cfg = makeConfig({
      model_name: 'neox-44', original_architecture: 'GPTNeoXForCausalLM', d_model: 88, n_layers: 1, n_heads: 2, d_head: 44, d_mlp: 64, d_vocab: 20, n_ctx: 16,
      act_fn: 'gelu', normalization_type: 'LN', positional_embedding_type: 'rotary', rotary_dim: 30, parallel_attn_mlp: true, mlp_bias: true,
    });
    expect(Math.floor(44 * (30 / 44))).toBe(29); // what transformers' int(head_dim * rotary_pct) would give for 30/44
    await expectRoundTrip(HookedTransformer.random(cfg, { seed: 2, std: 0.5 }), 'neox-44');
    const saved = JSON.parse(fs.readFileSync(path.join(TMP, 'neox-44', 'config.json'), 'utf8'));
    expect(Math.floor(44 * saved.rotary_pct)).toBe(30);
    expect(Math.floor(44 * saved.rope_parameters.partial_rotary_factor)).toBe(30);
  });

  it('saving twice into the same folder gives byte-identical files', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
    const a = path.join(TMP, 'twice-a');
    const b = path.join(TMP, 'twice-b');
    await saveModel(model, a);
    await saveModel(model, b);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f))), f).toBe(true);
    }
    model.dispose();
  });
});
