/**
 * GPT-NeoX and Pythia (GPTNeoXForCausalLM). The fused query_key_value weight [3·d_model, d_model] is laid
 * out head by head, each head holding its q, k and v rows in turn ([head, 3, d_head] on the output
 * axis), not as three blocks; rotary touches the first rotary_pct of each head; with
 * use_parallel_residual the attention and MLP both read the block's input.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from '../../model/config.js';
import { assertExpressible, commonChecks, field, type Family } from './family.js';
import { ropeFromHF, ropeToHF } from './rope_config.js';

export const gptNeox: Family = {
  modelTypes: ['gpt_neox'],
  hfKeys: {
    d_model: 'hidden_size', n_layers: 'num_hidden_layers', n_heads: 'num_attention_heads', d_head: 'hidden_size / num_attention_heads',
    d_mlp: 'intermediate_size', d_vocab: 'vocab_size', n_ctx: 'max_position_embeddings', act_fn: 'hidden_act', eps: 'layer_norm_eps',
    rotary_dim: 'rotary_pct or partial_rotary_factor', rotary_base: 'rope_theta', rope_scaling: 'rope_parameters',
    parallel_attn_mlp: 'use_parallel_residual', attn_qkv_bias: 'attention_bias',
  },
  prefixes: [],
  ignore: /^gpt_neox\.layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/,
  config(hf) {
    const d = field(hf, 'hidden_size', 'number');
    const heads = field(hf, 'num_attention_heads', 'number');
    const dHead = d && heads ? d / heads : NaN;
    const rope = ropeFromHF(hf, { theta: 10000, partial: 0.25 });
    const bias = field(hf, 'attention_bias', 'boolean') ?? true;
    // transformers: r = int(head_dim · rotary_pct) sets the frequencies (arange(0, r, 2) / r, ⌈r/2⌉ of them), and the
    // rotated width is cos.shape[-1] = 2·⌈r/2⌉ (apply_rotary_pos_emb); for an odd r that is r + 1
    const r = Math.floor(dHead * rope.partial);
    const odd = Number.isInteger(r) && r % 2 === 1;
    return {
      original_architecture: 'GPTNeoXForCausalLM',
      d_model: d as number,
      n_layers: field(hf, 'num_hidden_layers', 'number') as number,
      n_heads: heads as number,
      d_head: dHead,
      d_mlp: field(hf, 'intermediate_size', 'number') as number,
      d_vocab: field(hf, 'vocab_size', 'number') as number,
      n_ctx: field(hf, 'max_position_embeddings', 'number') as number,
      act_fn: (field(hf, 'hidden_act', 'string') ?? 'gelu') as HookedConfig['act_fn'],
      normalization_type: 'LN',
      eps: field(hf, 'layer_norm_eps', 'number') ?? 1e-5,
      positional_embedding_type: 'rotary',
      rotary_dim: odd ? r + 1 : r,
      ...(odd ? { rotary_freq_dim: r } : {}),
      rotary_base: rope.rotary_base,
      rope_scaling: rope.rope_scaling,
      parallel_attn_mlp: field(hf, 'use_parallel_residual', 'boolean') ?? true,
      attn_qkv_bias: bias,
      attn_out_bias: bias,
      mlp_bias: true,
      tie_word_embeddings: field(hf, 'tie_word_embeddings', 'boolean') ?? false,
      bos_token_id: field(hf, 'bos_token_id', 'number') ?? null,
      eos_token_id: field(hf, 'eos_token_id', 'number') ?? null,
    };
  },
  hfShapes(cfg) {
    const { d_model: d, d_mlp, d_vocab: v } = cfg;
    const m = d_mlp!;
    const g = 'gpt_neox.';
    const s: Record<string, number[]> = {
      [`${g}embed_in.weight`]: [v, d],
      [`${g}final_layer_norm.weight`]: [d],
      [`${g}final_layer_norm.bias`]: [d],
    };
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `${g}layers.${l}`;
      Object.assign(s, {
        [`${p}.input_layernorm.weight`]: [d], [`${p}.input_layernorm.bias`]: [d],
        [`${p}.post_attention_layernorm.weight`]: [d], [`${p}.post_attention_layernorm.bias`]: [d],
        [`${p}.attention.query_key_value.weight`]: [3 * d, d],
        [`${p}.attention.dense.weight`]: [d, d],
        [`${p}.mlp.dense_h_to_4h.weight`]: [m, d], [`${p}.mlp.dense_h_to_4h.bias`]: [m],
        [`${p}.mlp.dense_4h_to_h.weight`]: [d, m], [`${p}.mlp.dense_4h_to_h.bias`]: [d],
      });
      if (cfg.attn_qkv_bias) s[`${p}.attention.query_key_value.bias`] = [3 * d];
      if (cfg.attn_out_bias) s[`${p}.attention.dense.bias`] = [d];
    }
    if (!cfg.tie_word_embeddings) s['embed_out.weight'] = [v, d];
    return s;
  },
  toHooked(cfg, get) {
    const { d_model: d, n_heads: h, d_head: e } = cfg;
    const g = 'gpt_neox.';
    const out: Record<string, tf.Tensor> = {
      'embed.W_E': get(`${g}embed_in.weight`),
      'ln_final.w': get(`${g}final_layer_norm.weight`),
      'ln_final.b': get(`${g}final_layer_norm.bias`),
      'unembed.W_U': get(cfg.tie_word_embeddings ? `${g}embed_in.weight` : 'embed_out.weight').transpose(),
      'unembed.b_U': tf.zeros([cfg.d_vocab]),
    };
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `${g}layers.${l}`;
      const b = `blocks.${l}`;
      const qkv = get(`${p}.attention.query_key_value.weight`).reshape([h, 3, e, d]);
      const part = (i: number) => qkv.slice([0, i, 0, 0], [h, 1, e, d]).reshape([h, e, d]).transpose([0, 2, 1]); // [head, d_model, d_head]
      const qkvBias = cfg.attn_qkv_bias ? get(`${p}.attention.query_key_value.bias`).reshape([h, 3, e]) : tf.zeros([h, 3, e]);
      const biasPart = (i: number) => qkvBias.slice([0, i, 0], [h, 1, e]).reshape([h, e]);
      Object.assign(out, {
        [`${b}.ln1.w`]: get(`${p}.input_layernorm.weight`), [`${b}.ln1.b`]: get(`${p}.input_layernorm.bias`),
        [`${b}.attn.W_Q`]: part(0), [`${b}.attn.W_K`]: part(1), [`${b}.attn.W_V`]: part(2),
        [`${b}.attn.b_Q`]: biasPart(0), [`${b}.attn.b_K`]: biasPart(1), [`${b}.attn.b_V`]: biasPart(2),
        [`${b}.attn.W_O`]: get(`${p}.attention.dense.weight`).transpose().reshape([h, e, d]),
        [`${b}.attn.b_O`]: cfg.attn_out_bias ? get(`${p}.attention.dense.bias`) : tf.zeros([d]),
        [`${b}.ln2.w`]: get(`${p}.post_attention_layernorm.weight`), [`${b}.ln2.b`]: get(`${p}.post_attention_layernorm.bias`),
        [`${b}.mlp.W_in`]: get(`${p}.mlp.dense_h_to_4h.weight`).transpose(), [`${b}.mlp.b_in`]: get(`${p}.mlp.dense_h_to_4h.bias`),
        [`${b}.mlp.W_out`]: get(`${p}.mlp.dense_4h_to_h.weight`).transpose(), [`${b}.mlp.b_out`]: get(`${p}.mlp.dense_4h_to_h.bias`),
      });
    }
    return out;
  },
  toHF(cfg, P) {
    const { d_model: d, n_heads: h, d_head: e } = cfg;
    const g = 'gpt_neox.';
    const out: Record<string, tf.Tensor> = {
      [`${g}embed_in.weight`]: P('embed.W_E'),
      [`${g}final_layer_norm.weight`]: P('ln_final.w'),
      [`${g}final_layer_norm.bias`]: P('ln_final.b'),
    };
    if (!cfg.tie_word_embeddings) out['embed_out.weight'] = P('unembed.W_U').transpose();
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `${g}layers.${l}`;
      const b = `blocks.${l}`;
      const rows = (W: tf.Tensor) => W.transpose([0, 2, 1]).reshape([h, 1, e, d]);
      Object.assign(out, {
        [`${p}.input_layernorm.weight`]: P(`${b}.ln1.w`), [`${p}.input_layernorm.bias`]: P(`${b}.ln1.b`),
        [`${p}.attention.query_key_value.weight`]: tf.concat(['W_Q', 'W_K', 'W_V'].map((w) => rows(P(`${b}.attn.${w}`))), 1).reshape([3 * d, d]),
        [`${p}.attention.dense.weight`]: P(`${b}.attn.W_O`).reshape([h * e, d]).transpose(),
        [`${p}.post_attention_layernorm.weight`]: P(`${b}.ln2.w`), [`${p}.post_attention_layernorm.bias`]: P(`${b}.ln2.b`),
        [`${p}.mlp.dense_h_to_4h.weight`]: P(`${b}.mlp.W_in`).transpose(), [`${p}.mlp.dense_h_to_4h.bias`]: P(`${b}.mlp.b_in`),
        [`${p}.mlp.dense_4h_to_h.weight`]: P(`${b}.mlp.W_out`).transpose(), [`${p}.mlp.dense_4h_to_h.bias`]: P(`${b}.mlp.b_out`),
      });
      if (cfg.attn_qkv_bias) {
        out[`${p}.attention.query_key_value.bias`] = tf.concat(['b_Q', 'b_K', 'b_V'].map((n) => P(`${b}.attn.${n}`).reshape([h, 1, e])), 1).reshape([3 * d]);
      }
      if (cfg.attn_out_bias) out[`${p}.attention.dense.bias`] = P(`${b}.attn.b_O`);
    }
    return out;
  },
  hfConfig(cfg) {
    assertExpressible('GPTNeoXForCausalLM', [
      ...commonChecks(cfg),
      [cfg.normalization_type === 'LN', `normalization_type ${cfg.normalization_type} (LN)`],
      [cfg.positional_embedding_type === 'rotary', `positional_embedding_type ${cfg.positional_embedding_type} (rotary)`],
      [!cfg.gated_mlp, 'gated_mlp true (one up-projection)'],
      [cfg.n_key_value_heads === cfg.n_heads, `${cfg.n_key_value_heads} key/value heads (as many as heads, ${cfg.n_heads})`],
      [cfg.d_head * cfg.n_heads === cfg.d_model, `d_head ${cfg.d_head} (d_model / n_heads, ${cfg.d_model / cfg.n_heads})`],
      [cfg.attn_out_bias === cfg.attn_qkv_bias && cfg.mlp_bias, `biases q/k/v ${cfg.attn_qkv_bias}, out ${cfg.attn_out_bias}, MLP ${cfg.mlp_bias} (attention_bias for both attention biases; MLP biases always)`],
      [cfg.attn_scale === Math.sqrt(cfg.d_head) && !cfg.scale_attn_by_inverse_layer_idx, `attn_scale ${cfg.attn_scale} (√d_head, ${Math.sqrt(cfg.d_head)}, in every layer)`],
      [cfg.sliding_window === null, `sliding_window ${cfg.sliding_window} (none)`],
    ]);
    return {
      architectures: ['GPTNeoXForCausalLM'],
      model_type: 'gpt_neox',
      hidden_size: cfg.d_model,
      num_hidden_layers: cfg.n_layers,
      num_attention_heads: cfg.n_heads,
      intermediate_size: cfg.d_mlp,
      max_position_embeddings: cfg.n_ctx,
      vocab_size: cfg.d_vocab,
      hidden_act: cfg.act_fn,
      layer_norm_eps: cfg.eps,
      rotary_pct: rotaryPct(cfg),
      rotary_emb_base: cfg.rotary_base,
      rope_parameters: ropeToHF(cfg, { partial_rotary_factor: rotaryPct(cfg) }),
      use_parallel_residual: cfg.parallel_attn_mlp,
      attention_bias: cfg.attn_qkv_bias,
      tie_word_embeddings: cfg.tie_word_embeddings,
      bos_token_id: cfg.bos_token_id,
      eos_token_id: cfg.eos_token_id,
      hidden_dropout: 0, attention_dropout: 0,
    };
  },
};

/**
 * The rotary_pct to write for r = rotary_freq_dim (or rotary_dim): transformers, and config() here, read
 * r = int(d_head · rotary_pct). r / d_head gives r back for the usual widths, but not for all (⌊44 · (30/44)⌋ is 29 in
 * float64); there, (r + ½) / d_head does.
 */
function rotaryPct(cfg: HookedConfig): number {
  const r = cfg.rotary_freq_dim ?? cfg.rotary_dim!;
  return Math.floor(cfg.d_head * (r / cfg.d_head)) === r ? r / cfg.d_head : (r + 0.5) / cfg.d_head;
}
