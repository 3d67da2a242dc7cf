/**
 * GPT-2 (GPT2LMHeadModel). Its Conv1D weights are stored [in, out], so nothing is transposed; the fused
 * c_attn [d_model, 3·d_model] is cut into Q, K, V and each into heads.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from '../../model/config.js';
import { assertExpressible, commonChecks, field, type Family } from './family.js';

export const gpt2: Family = {
  modelTypes: ['gpt2'],
  hfKeys: {
    d_model: 'n_embd', n_layers: 'n_layer', n_heads: 'n_head', d_head: 'n_embd / n_head', d_mlp: 'n_inner', d_vocab: 'vocab_size',
    n_ctx: 'n_positions', act_fn: 'activation_function', eps: 'layer_norm_epsilon',
  },
  prefixes: ['transformer.'],
  ignore: /^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/,
  config(hf) {
    const d = field(hf, 'n_embd', 'number');
    const heads = field(hf, 'n_head', 'number');
    const scale = field(hf, 'scale_attn_weights', 'boolean') ?? true;
    return {
      original_architecture: 'GPT2LMHeadModel',
      d_model: d as number,
      n_layers: field(hf, 'n_layer', 'number') as number,
      n_heads: heads as number,
      d_head: d && heads ? d / heads : (NaN as number),
      d_mlp: field(hf, 'n_inner', 'number') ?? (d ? 4 * d : undefined),
      d_vocab: field(hf, 'vocab_size', 'number') as number,
      n_ctx: field(hf, 'n_positions', 'number') as number,
      act_fn: (field(hf, 'activation_function', 'string') ?? 'gelu_new') as HookedConfig['act_fn'],
      normalization_type: 'LN',
      eps: field(hf, 'layer_norm_epsilon', 'number') ?? 1e-5,
      positional_embedding_type: 'standard',
      attn_scale: scale ? undefined : 1,
      scale_attn_by_inverse_layer_idx: field(hf, 'scale_attn_by_inverse_layer_idx', 'boolean') ?? false,
      tie_word_embeddings: field(hf, 'tie_word_embeddings', 'boolean') ?? true,
      bos_token_id: field(hf, 'bos_token_id', 'number') ?? null,
      eos_token_id: field(hf, 'eos_token_id', 'number') ?? null,
    };
  },
  hfShapes(cfg) {
    const { d_model: d, d_mlp, d_vocab: v, n_ctx } = cfg;
    const m = d_mlp!;
    const s: Record<string, number[]> = { 'wte.weight': [v, d], 'wpe.weight': [n_ctx, d], 'ln_f.weight': [d], 'ln_f.bias': [d] };
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `h.${l}`;
      Object.assign(s, {
        [`${p}.ln_1.weight`]: [d], [`${p}.ln_1.bias`]: [d],
        [`${p}.attn.c_attn.weight`]: [d, 3 * d], [`${p}.attn.c_attn.bias`]: [3 * d],
        [`${p}.attn.c_proj.weight`]: [d, d], [`${p}.attn.c_proj.bias`]: [d],
        [`${p}.ln_2.weight`]: [d], [`${p}.ln_2.bias`]: [d],
        [`${p}.mlp.c_fc.weight`]: [d, m], [`${p}.mlp.c_fc.bias`]: [m],
        [`${p}.mlp.c_proj.weight`]: [m, d], [`${p}.mlp.c_proj.bias`]: [d],
      });
    }
    if (!cfg.tie_word_embeddings) s['lm_head.weight'] = [v, d];
    return s;
  },
  toHooked(cfg, get) {
    const { d_model: d, n_heads: h, d_head: e } = cfg;
    const out: Record<string, tf.Tensor> = {
      'embed.W_E': get('wte.weight'),
      'pos_embed.W_pos': get('wpe.weight'),
      'ln_final.w': get('ln_f.weight'),
      'ln_final.b': get('ln_f.bias'),
      'unembed.W_U': cfg.tie_word_embeddings ? get('wte.weight').transpose() : get('lm_head.weight').transpose(),
      'unembed.b_U': tf.zeros([cfg.d_vocab]),
    };
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `h.${l}`;
      const b = `blocks.${l}`;
      const [Wq, Wk, Wv] = tf.split(get(`${p}.attn.c_attn.weight`), 3, 1); // each [d_model, head*d_head]
      const [bq, bk, bv] = tf.split(get(`${p}.attn.c_attn.bias`), 3, 0);
      const heads = (W: tf.Tensor) => W.reshape([d, h, e]).transpose([1, 0, 2]); // [head, d_model, d_head]
      Object.assign(out, {
        [`${b}.ln1.w`]: get(`${p}.ln_1.weight`), [`${b}.ln1.b`]: get(`${p}.ln_1.bias`),
        [`${b}.attn.W_Q`]: heads(Wq), [`${b}.attn.W_K`]: heads(Wk), [`${b}.attn.W_V`]: heads(Wv),
        [`${b}.attn.b_Q`]: bq.reshape([h, e]), [`${b}.attn.b_K`]: bk.reshape([h, e]), [`${b}.attn.b_V`]: bv.reshape([h, e]),
        [`${b}.attn.W_O`]: get(`${p}.attn.c_proj.weight`).reshape([h, e, d]),
        [`${b}.attn.b_O`]: get(`${p}.attn.c_proj.bias`),
        [`${b}.ln2.w`]: get(`${p}.ln_2.weight`), [`${b}.ln2.b`]: get(`${p}.ln_2.bias`),
        [`${b}.mlp.W_in`]: get(`${p}.mlp.c_fc.weight`), [`${b}.mlp.b_in`]: get(`${p}.mlp.c_fc.bias`),
        [`${b}.mlp.W_out`]: get(`${p}.mlp.c_proj.weight`), [`${b}.mlp.b_out`]: get(`${p}.mlp.c_proj.bias`),
      });
    }
    return out;
  },
  toHF(cfg, P) {
    const { d_model: d, n_heads: h, d_head: e } = cfg;
    const t = 'transformer.';
    const out: Record<string, tf.Tensor> = {
      [`${t}wte.weight`]: P('embed.W_E'),
      [`${t}wpe.weight`]: P('pos_embed.W_pos'),
      [`${t}ln_f.weight`]: P('ln_final.w'),
      [`${t}ln_f.bias`]: P('ln_final.b'),
    };
    if (!cfg.tie_word_embeddings) out['lm_head.weight'] = P('unembed.W_U').transpose();
    for (let l = 0; l < cfg.n_layers; l++) {
      const p = `${t}h.${l}`;
      const b = `blocks.${l}`;
      const flat = (W: tf.Tensor) => W.transpose([1, 0, 2]).reshape([d, h * e]);
      Object.assign(out, {
        [`${p}.ln_1.weight`]: P(`${b}.ln1.w`), [`${p}.ln_1.bias`]: P(`${b}.ln1.b`),
        [`${p}.attn.c_attn.weight`]: tf.concat([flat(P(`${b}.attn.W_Q`)), flat(P(`${b}.attn.W_K`)), flat(P(`${b}.attn.W_V`))], 1),
        [`${p}.attn.c_attn.bias`]: tf.concat([P(`${b}.attn.b_Q`), P(`${b}.attn.b_K`), P(`${b}.attn.b_V`)].map((x) => x.reshape([h * e])), 0),
        [`${p}.attn.c_proj.weight`]: P(`${b}.attn.W_O`).reshape([h * e, d]),
        [`${p}.attn.c_proj.bias`]: P(`${b}.attn.b_O`),
        [`${p}.ln_2.weight`]: P(`${b}.ln2.w`), [`${p}.ln_2.bias`]: P(`${b}.ln2.b`),
        [`${p}.mlp.c_fc.weight`]: P(`${b}.mlp.W_in`), [`${p}.mlp.c_fc.bias`]: P(`${b}.mlp.b_in`),
        [`${p}.mlp.c_proj.weight`]: P(`${b}.mlp.W_out`), [`${p}.mlp.c_proj.bias`]: P(`${b}.mlp.b_out`),
      });
    }
    return out;
  },
  hfConfig(cfg) {
    assertExpressible('GPT2LMHeadModel', [
      ...commonChecks(cfg),
      [cfg.normalization_type === 'LN', `normalization_type ${cfg.normalization_type} (LN)`],
      [cfg.positional_embedding_type === 'standard', `positional_embedding_type ${cfg.positional_embedding_type} (learned positions)`],
      [!cfg.gated_mlp && !cfg.parallel_attn_mlp, `gated_mlp ${cfg.gated_mlp}, parallel_attn_mlp ${cfg.parallel_attn_mlp} (one up-projection, attention then the MLP)`],
      [cfg.n_key_value_heads === cfg.n_heads, `${cfg.n_key_value_heads} key/value heads (as many as heads, ${cfg.n_heads})`],
      [cfg.d_head * cfg.n_heads === cfg.d_model, `d_head ${cfg.d_head} (d_model / n_heads, ${cfg.d_model / cfg.n_heads})`],
      [cfg.attn_qkv_bias && cfg.attn_out_bias && cfg.mlp_bias, `biases q/k/v ${cfg.attn_qkv_bias}, out ${cfg.attn_out_bias}, MLP ${cfg.mlp_bias} (all)`],
      [cfg.attn_scale === 1 || cfg.attn_scale === Math.sqrt(cfg.d_head), `attn_scale ${cfg.attn_scale} (√d_head, ${Math.sqrt(cfg.d_head)}, or 1)`],
      [cfg.sliding_window === null, `sliding_window ${cfg.sliding_window} (none)`],
    ]);
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      n_embd: cfg.d_model,
      n_layer: cfg.n_layers,
      n_head: cfg.n_heads,
      n_inner: cfg.d_mlp,
      n_positions: cfg.n_ctx,
      vocab_size: cfg.d_vocab,
      activation_function: cfg.act_fn,
      layer_norm_epsilon: cfg.eps,
      scale_attn_weights: cfg.attn_scale !== 1,
      scale_attn_by_inverse_layer_idx: cfg.scale_attn_by_inverse_layer_idx,
      tie_word_embeddings: cfg.tie_word_embeddings,
      bos_token_id: cfg.bos_token_id,
      eos_token_id: cfg.eos_token_id,
      attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0,
    };
  },
};
