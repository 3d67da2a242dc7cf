/**
 * Llama, Mistral and Qwen2 (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM): RMSNorm, rotary,
 * SwiGLU, grouped-query attention. nn.Linear stores [out, in], so every projection is transposed here.
 * They differ in biases (Qwen2: q, k, v; Llama: attention_bias, mlp_bias) and windows (Mistral).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedConfig } from '../../model/config.js';
import { assertExpressible, commonChecks, field, type Family } from './family.js';
import { ropeFromHF, ropeToHF } from './rope_config.js';

const ARCH: Record<string, string> = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' };

export const llama: Family = {
  modelTypes: ['llama', 'mistral', 'qwen2'],
  hfKeys: {
    d_model: 'hidden_size', n_layers: 'num_hidden_layers', n_heads: 'num_attention_heads', n_key_value_heads: 'num_key_value_heads',
    d_head: 'head_dim or hidden_size / num_attention_heads', d_mlp: 'intermediate_size', d_vocab: 'vocab_size',
    n_ctx: 'max_position_embeddings', act_fn: 'hidden_act', eps: 'rms_norm_eps', rotary_base: 'rope_theta',
    rope_scaling: 'rope_parameters', attn_qkv_bias: 'attention_bias',
  },
  prefixes: [],
  ignore: /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
  config(hf, modelType) {
    const d = field(hf, 'hidden_size', 'number');
    const heads = field(hf, 'num_attention_heads', 'number');
    const rope = ropeFromHF(hf, { theta: 10000 });
    if (rope.partial !== 1) throw new HeadlensError(`partial rotary (${rope.partial}) in a ${modelType} config is not supported`);
    let window: number | null = null;
    if (modelType === 'mistral') window = field(hf, 'sliding_window', 'number') ?? null;
    if (modelType === 'qwen2' && field(hf, 'use_sliding_window', 'boolean')) {
      throw new HeadlensError('qwen2 with use_sliding_window (a window on some layers only) is not supported', 'set use_sliding_window to false if the sequences you run are shorter than the window');
    }
    const attnBias = modelType === 'llama' ? (field(hf, 'attention_bias', 'boolean') ?? false) : modelType === 'qwen2';
    return {
      original_architecture: ARCH[modelType],
      d_model: d as number,
      n_layers: field(hf, 'num_hidden_layers', 'number') as number,
      n_heads: heads as number,
      n_key_value_heads: field(hf, 'num_key_value_heads', 'number') ?? heads,
      d_head: field(hf, 'head_dim', 'number') ?? (d && heads ? d / heads : NaN),
      d_mlp: field(hf, 'intermediate_size', 'number') as number,
      d_vocab: field(hf, 'vocab_size', 'number') as number,
      n_ctx: field(hf, 'max_position_embeddings', 'number') as number,
      act_fn: (field(hf, 'hidden_act', 'string') ?? 'silu') as HookedConfig['act_fn'],
      normalization_type: 'RMS',
      eps: field(hf, 'rms_norm_eps', 'number') ?? 1e-6,
      positional_embedding_type: 'rotary',
      rotary_base: rope.rotary_base,
      rope_scaling: rope.rope_scaling,
      gated_mlp: true,
      attn_qkv_bias: attnBias,
      attn_out_bias: modelType === 'llama' && attnBias,
      mlp_bias: modelType === 'llama' ? (field(hf, 'mlp_bias', 'boolean') ?? false) : false,
      sliding_window: window,
      tie_word_embeddings: field(hf, 'tie_word_embeddings', 'boolean') ?? false,
      bos_token_id: field(hf, 'bos_token_id', 'number') ?? null,
      eos_token_id: field(hf, 'eos_token_id', 'number') ?? null,
    };
  },
  hfShapes(cfg) {
    const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e, d_vocab: v } = cfg;
    const m = cfg.d_mlp!;
    const s: Record<string, number[]> = { 'model.embed_tokens.weight': [v, d], 'model.norm.weight': [d] };
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `model.layers.${l}`;
      Object.assign(s, {
        [`${p}.input_layernorm.weight`]: [d],
        [`${p}.post_attention_layernorm.weight`]: [d],
        [`${p}.self_attn.q_proj.weight`]: [h * e, d],
        [`${p}.self_attn.k_proj.weight`]: [kv * e, d],
        [`${p}.self_attn.v_proj.weight`]: [kv * e, d],
        [`${p}.self_attn.o_proj.weight`]: [d, h * e],
        [`${p}.mlp.gate_proj.weight`]: [m, d],
        [`${p}.mlp.up_proj.weight`]: [m, d],
        [`${p}.mlp.down_proj.weight`]: [d, m],
      });
      if (cfg.attn_qkv_bias) {
        Object.assign(s, { [`${p}.self_attn.q_proj.bias`]: [h * e], [`${p}.self_attn.k_proj.bias`]: [kv * e], [`${p}.self_attn.v_proj.bias`]: [kv * e] });
      }
      if (cfg.attn_out_bias) s[`${p}.self_attn.o_proj.bias`] = [d];
      if (cfg.mlp_bias) Object.assign(s, { [`${p}.mlp.gate_proj.bias`]: [m], [`${p}.mlp.up_proj.bias`]: [m], [`${p}.mlp.down_proj.bias`]: [d] });
    }
    if (!cfg.tie_word_embeddings) s['lm_head.weight'] = [v, d];
    return s;
  },
  toHooked(cfg, get) {
    const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
    const m = cfg.d_mlp!;
    const out: Record<string, tf.Tensor> = {
      'embed.W_E': get('model.embed_tokens.weight'),
      'ln_final.w': get('model.norm.weight'),
      'unembed.W_U': get(cfg.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight').transpose(),
      'unembed.b_U': tf.zeros([cfg.d_vocab]),
    };
    const opt = (name: string, shape: number[], present: boolean) => (present ? get(name).reshape(shape) : tf.zeros(shape));
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `model.layers.${l}`;
      const b = `blocks.${l}`;
      const heads = (W: tf.Tensor, n: number) => W.reshape([n, e, d]).transpose([0, 2, 1]); // [head, d_model, d_head]
      Object.assign(out, {
        [`${b}.ln1.w`]: get(`${p}.input_layernorm.weight`),
        [`${b}.ln2.w`]: get(`${p}.post_attention_layernorm.weight`),
        [`${b}.attn.W_Q`]: heads(get(`${p}.self_attn.q_proj.weight`), h),
        [`${b}.attn.W_K`]: heads(get(`${p}.self_attn.k_proj.weight`), kv),
        [`${b}.attn.W_V`]: heads(get(`${p}.self_attn.v_proj.weight`), kv),
        [`${b}.attn.b_Q`]: opt(`${p}.self_attn.q_proj.bias`, [h, e], cfg.attn_qkv_bias),
        [`${b}.attn.b_K`]: opt(`${p}.self_attn.k_proj.bias`, [kv, e], cfg.attn_qkv_bias),
        [`${b}.attn.b_V`]: opt(`${p}.self_attn.v_proj.bias`, [kv, e], cfg.attn_qkv_bias),
        [`${b}.attn.W_O`]: get(`${p}.self_attn.o_proj.weight`).transpose().reshape([h, e, d]),
        [`${b}.attn.b_O`]: opt(`${p}.self_attn.o_proj.bias`, [d], cfg.attn_out_bias),
        [`${b}.mlp.W_gate`]: get(`${p}.mlp.gate_proj.weight`).transpose(),
        [`${b}.mlp.W_in`]: get(`${p}.mlp.up_proj.weight`).transpose(),
        [`${b}.mlp.W_out`]: get(`${p}.mlp.down_proj.weight`).transpose(),
        [`${b}.mlp.b_gate`]: opt(`${p}.mlp.gate_proj.bias`, [m], cfg.mlp_bias),
        [`${b}.mlp.b_in`]: opt(`${p}.mlp.up_proj.bias`, [m], cfg.mlp_bias),
        [`${b}.mlp.b_out`]: opt(`${p}.mlp.down_proj.bias`, [d], cfg.mlp_bias),
      });
    }
    return out;
  },
  toHF(cfg, P) {
    const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
    const out: Record<string, tf.Tensor> = { 'model.embed_tokens.weight': P('embed.W_E'), 'model.norm.weight': P('ln_final.w') };
    if (!cfg.tie_word_embeddings) out['lm_head.weight'] = P('unembed.W_U').transpose();
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `model.layers.${l}`;
      const b = `blocks.${l}`;
      const rows = (W: tf.Tensor, n: number) => W.transpose([0, 2, 1]).reshape([n * e, d]);
      Object.assign(out, {
        [`${p}.input_layernorm.weight`]: P(`${b}.ln1.w`),
        [`${p}.post_attention_layernorm.weight`]: P(`${b}.ln2.w`),
        [`${p}.self_attn.q_proj.weight`]: rows(P(`${b}.attn.W_Q`), h),
        [`${p}.self_attn.k_proj.weight`]: rows(P(`${b}.attn.W_K`), kv),
        [`${p}.self_attn.v_proj.weight`]: rows(P(`${b}.attn.W_V`), kv),
        [`${p}.self_attn.o_proj.weight`]: P(`${b}.attn.W_O`).reshape([h * e, d]).transpose(),
        [`${p}.mlp.gate_proj.weight`]: P(`${b}.mlp.W_gate`).transpose(),
        [`${p}.mlp.up_proj.weight`]: P(`${b}.mlp.W_in`).transpose(),
        [`${p}.mlp.down_proj.weight`]: P(`${b}.mlp.W_out`).transpose(),
      });
      if (cfg.attn_qkv_bias) {
        out[`${p}.self_attn.q_proj.bias`] = P(`${b}.attn.b_Q`).reshape([h * e]);
        out[`${p}.self_attn.k_proj.bias`] = P(`${b}.attn.b_K`).reshape([kv * e]);
        out[`${p}.self_attn.v_proj.bias`] = P(`${b}.attn.b_V`).reshape([kv * e]);
      }
      if (cfg.attn_out_bias) out[`${p}.self_attn.o_proj.bias`] = P(`${b}.attn.b_O`);
      if (cfg.mlp_bias) {
        out[`${p}.mlp.gate_proj.bias`] = P(`${b}.mlp.b_gate`);
        out[`${p}.mlp.up_proj.bias`] = P(`${b}.mlp.b_in`);
        out[`${p}.mlp.down_proj.bias`] = P(`${b}.mlp.b_out`);
      }
    }
    return out;
  },
  hfConfig(cfg) {
    assertLlamaShaped(cfg);
    const type = Object.keys(ARCH).find((k) => ARCH[k] === cfg.original_architecture) ?? 'llama';
    return {
      architectures: [ARCH[type]],
      model_type: type,
      hidden_size: cfg.d_model,
      num_hidden_layers: cfg.n_layers,
      num_attention_heads: cfg.n_heads,
      num_key_value_heads: cfg.n_key_value_heads,
      head_dim: cfg.d_head,
      intermediate_size: cfg.d_mlp,
      max_position_embeddings: cfg.n_ctx,
      vocab_size: cfg.d_vocab,
      hidden_act: cfg.act_fn,
      rms_norm_eps: cfg.eps,
      rope_parameters: ropeToHF(cfg),
      ...(type === 'llama' ? { attention_bias: cfg.attn_qkv_bias, mlp_bias: cfg.mlp_bias } : {}),
      ...(type === 'mistral' ? { sliding_window: cfg.sliding_window } : {}),
      ...(type === 'qwen2' ? { use_sliding_window: false } : {}),
      tie_word_embeddings: cfg.tie_word_embeddings,
      bos_token_id: cfg.bos_token_id,
      eos_token_id: cfg.eos_token_id,
    };
  },
};

/** What a Llama, Mistral or Qwen2 config cannot say (assertExpressible). */
function assertLlamaShaped(cfg: HookedConfig): void {
  const type = Object.keys(ARCH).find((k) => ARCH[k] === cfg.original_architecture) ?? 'llama';
  const checks: [boolean, string][] = [
    ...commonChecks(cfg),
    [cfg.normalization_type === 'RMS', `normalization_type ${cfg.normalization_type} (RMS)`],
    [cfg.positional_embedding_type === 'rotary', `positional_embedding_type ${cfg.positional_embedding_type} (rotary)`],
    [cfg.rotary_dim === null || cfg.rotary_dim === cfg.d_head, `rotary_dim ${cfg.rotary_dim} (the whole head, ${cfg.d_head}: transformers' ${ARCH[type]} rotates every dimension)`],
    [cfg.rotary_freq_dim === null || cfg.rotary_freq_dim === cfg.rotary_dim, `rotary_freq_dim ${cfg.rotary_freq_dim} (rotary_dim)`],
    [cfg.gated_mlp, 'gated_mlp false (a gated MLP)'],
    [!cfg.parallel_attn_mlp, 'parallel_attn_mlp true (attention, then the MLP)'],
    [cfg.attn_scale === Math.sqrt(cfg.d_head) && !cfg.scale_attn_by_inverse_layer_idx, `attn_scale ${cfg.attn_scale} (√d_head, ${Math.sqrt(cfg.d_head)}, in every layer)`],
    [type === 'mistral' || cfg.sliding_window === null, `sliding_window ${cfg.sliding_window} (none; MistralForCausalLM has one)`],
  ];
  if (type === 'llama') checks.push([cfg.attn_out_bias === cfg.attn_qkv_bias, `attn_qkv_bias ${cfg.attn_qkv_bias} with attn_out_bias ${cfg.attn_out_bias} (one attention_bias for both)`]);
  else checks.push([cfg.attn_qkv_bias === (type === 'qwen2') && !cfg.attn_out_bias && !cfg.mlp_bias, `biases q/k/v ${cfg.attn_qkv_bias}, out ${cfg.attn_out_bias}, MLP ${cfg.mlp_bias} (${type}: ${type === 'qwen2' ? 'q/k/v only' : 'none'})`]);
  assertExpressible(ARCH[type], checks);
}
