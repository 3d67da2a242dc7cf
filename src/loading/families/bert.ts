/**
 * BERT (BertForMaskedLM) and, through the same converter, RoBERTa (roberta.ts): post-LN encoders with learned
 * absolute positions, token-type embeddings, an embedding LayerNorm and the masked-LM head (dense, activation,
 * LayerNorm, a decoder tied to the word embeddings plus its own bias). nn.Linear stores [out, in], so every
 * projection is transposed here. The decoder's weight and bias are left out of saves (tied) and ignored when a
 * save has them; so are the pooler and the next-sentence head of BertForPreTraining saves, which the MLM logits
 * do not use.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedConfig, HookedConfigInput } from '../../model/config.js';
import { assertExpressible, field, type Family, type HFConfig } from './family.js';

/** Where one encoder family keeps its tensors. */
export interface EncoderLayout {
  modelType: string;
  architecture: string;
  /** The encoder's prefix, 'bert.' or 'roberta.'. */
  base: string;
  /** The MLM head's names: its transform's dense layer and LayerNorm, its decoder and output bias. */
  head: { dense: string; ln: string; decoder: string; bias: string };
  /** RoBERTa: positions count from pad_token_id + 1 (config.positions_after_pad). */
  positionsAfterPad: boolean;
  /** Config fields for a save (bos/eos/pad defaults of the family). */
  extraConfig(cfg: HookedConfig): HFConfig;
}

const HF_KEYS = {
  d_model: 'hidden_size', n_layers: 'num_hidden_layers', n_heads: 'num_attention_heads', d_head: 'hidden_size / num_attention_heads',
  d_mlp: 'intermediate_size', d_vocab: 'vocab_size', n_ctx: 'max_position_embeddings', act_fn: 'hidden_act', eps: 'layer_norm_eps',
  type_vocab_size: 'type_vocab_size', pad_token_id: 'pad_token_id',
};

export function encoderFamily(L: EncoderLayout): Family {
  const e = `${L.base}embeddings.`;
  const layer = (l: number) => `${L.base}encoder.layer.${l}.`;
  const escaped = (s: string) => s.replace(/\./g, '\\.');
  return {
    modelTypes: [L.modelType],
    hfKeys: HF_KEYS,
    prefixes: [],
    // buffers older versions saved; the tied decoder; BertForPreTraining's pooler and next-sentence head
    ignore: new RegExp(`^(${escaped(e)}(position_ids|token_type_ids)|${escaped(L.head.decoder)}\\.(weight|bias)|${escaped(L.base)}pooler\\..*|cls\\.seq_relationship\\..*)$`),
    // TensorFlow-era BERT saves name LayerNorm parameters gamma and beta
    aliases: (n) => (/LayerNorm\.weight$/.test(n) ? [n.replace(/weight$/, 'gamma')] : /LayerNorm\.bias$/.test(n) ? [n.replace(/bias$/, 'beta')] : []),
    config(hf) {
      const d = field(hf, 'hidden_size', 'number');
      const heads = field(hf, 'num_attention_heads', 'number');
      if (field(hf, 'is_decoder', 'boolean')) throw new HeadlensError(`${L.modelType} with is_decoder (causal attention) is not supported`, 'load it as an encoder (is_decoder false)');
      const posType = field(hf, 'position_embedding_type', 'string') ?? 'absolute';
      if (posType !== 'absolute') throw new HeadlensError(`${L.modelType} with position_embedding_type '${posType}' is not supported`, "only 'absolute' (learned) position embeddings are");
      const act = field(hf, 'hidden_act', 'string') ?? 'gelu';
      // RoBERTa's LM head applies the exact GELU whatever hidden_act says; BERT's uses hidden_act, as headlens' act_fn does
      if (L.positionsAfterPad && act !== 'gelu') throw new HeadlensError(`roberta with hidden_act '${act}' is not supported`, "its MLM head uses 'gelu' whatever hidden_act is; headlens applies one act_fn to both");
      const pad = field(hf, 'pad_token_id', 'number') ?? (L.positionsAfterPad ? 1 : 0);
      const input: HookedConfigInput = {
        original_architecture: L.architecture,
        d_model: d as number,
        n_layers: field(hf, 'num_hidden_layers', 'number') as number,
        n_heads: heads as number,
        d_head: d && heads ? d / heads : NaN,
        d_mlp: field(hf, 'intermediate_size', 'number') as number,
        d_vocab: field(hf, 'vocab_size', 'number') as number,
        n_ctx: field(hf, 'max_position_embeddings', 'number') as number,
        act_fn: act as HookedConfig['act_fn'],
        normalization_type: 'LN',
        eps: field(hf, 'layer_norm_eps', 'number') ?? 1e-12,
        positional_embedding_type: 'standard',
        attention_dir: 'bidirectional',
        norm_placement: 'post',
        type_vocab_size: field(hf, 'type_vocab_size', 'number') ?? 2,
        positions_after_pad: L.positionsAfterPad,
        mlm_head: true,
        unembed_bias: true,
        tie_word_embeddings: field(hf, 'tie_word_embeddings', 'boolean') ?? true,
        pad_token_id: pad,
        bos_token_id: field(hf, 'bos_token_id', 'number') ?? null,
        eos_token_id: field(hf, 'eos_token_id', 'number') ?? null,
      };
      return input;
    },
    hfShapes(cfg) {
      const { d_model: d, d_vocab: v, n_ctx } = cfg;
      const m = cfg.d_mlp!;
      const s: Record<string, number[]> = {
        [`${e}word_embeddings.weight`]: [v, d],
        [`${e}position_embeddings.weight`]: [n_ctx, d],
        [`${e}token_type_embeddings.weight`]: [cfg.type_vocab_size, d],
        [`${e}LayerNorm.weight`]: [d], [`${e}LayerNorm.bias`]: [d],
      };
      for (let l = 0; l < cfg.n_layers; l++) {
        const p = layer(l);
        Object.assign(s, {
          [`${p}attention.self.query.weight`]: [d, d], [`${p}attention.self.query.bias`]: [d],
          [`${p}attention.self.key.weight`]: [d, d], [`${p}attention.self.key.bias`]: [d],
          [`${p}attention.self.value.weight`]: [d, d], [`${p}attention.self.value.bias`]: [d],
          [`${p}attention.output.dense.weight`]: [d, d], [`${p}attention.output.dense.bias`]: [d],
          [`${p}attention.output.LayerNorm.weight`]: [d], [`${p}attention.output.LayerNorm.bias`]: [d],
          [`${p}intermediate.dense.weight`]: [m, d], [`${p}intermediate.dense.bias`]: [m],
          [`${p}output.dense.weight`]: [d, m], [`${p}output.dense.bias`]: [d],
          [`${p}output.LayerNorm.weight`]: [d], [`${p}output.LayerNorm.bias`]: [d],
        });
      }
      Object.assign(s, {
        [`${L.head.dense}.weight`]: [d, d], [`${L.head.dense}.bias`]: [d],
        [`${L.head.ln}.weight`]: [d], [`${L.head.ln}.bias`]: [d],
        [L.head.bias]: [v],
      });
      if (!cfg.tie_word_embeddings) s[`${L.head.decoder}.weight`] = [v, d];
      return s;
    },
    toHooked(cfg, get) {
      const { d_model: d, n_heads: h, d_head: hd } = cfg;
      const heads = (W: tf.Tensor) => W.transpose().reshape([d, h, hd]).transpose([1, 0, 2]); // [out, in] → [head, d_model, d_head]
      const out: Record<string, tf.Tensor> = {
        'embed.W_E': get(`${e}word_embeddings.weight`),
        'pos_embed.W_pos': get(`${e}position_embeddings.weight`),
        'token_type_embed.W_token_type': get(`${e}token_type_embeddings.weight`),
        'embed.ln.w': get(`${e}LayerNorm.weight`),
        'embed.ln.b': get(`${e}LayerNorm.bias`),
        'mlm_head.W': get(`${L.head.dense}.weight`).transpose(), // [d_model, d_model], x·W
        'mlm_head.b': get(`${L.head.dense}.bias`),
        'mlm_head.ln.w': get(`${L.head.ln}.weight`),
        'mlm_head.ln.b': get(`${L.head.ln}.bias`),
        'unembed.W_U': (cfg.tie_word_embeddings ? get(`${e}word_embeddings.weight`) : get(`${L.head.decoder}.weight`)).transpose(), // [d_model, d_vocab]
        'unembed.b_U': get(L.head.bias),
      };
      for (let l = 0; l < cfg.n_layers; l++) {
        const p = layer(l);
        const b = `blocks.${l}`;
        Object.assign(out, {
          [`${b}.attn.W_Q`]: heads(get(`${p}attention.self.query.weight`)),
          [`${b}.attn.W_K`]: heads(get(`${p}attention.self.key.weight`)),
          [`${b}.attn.W_V`]: heads(get(`${p}attention.self.value.weight`)),
          [`${b}.attn.b_Q`]: get(`${p}attention.self.query.bias`).reshape([h, hd]),
          [`${b}.attn.b_K`]: get(`${p}attention.self.key.bias`).reshape([h, hd]),
          [`${b}.attn.b_V`]: get(`${p}attention.self.value.bias`).reshape([h, hd]),
          [`${b}.attn.W_O`]: get(`${p}attention.output.dense.weight`).transpose().reshape([h, hd, d]), // [head, d_head, d_model]
          [`${b}.attn.b_O`]: get(`${p}attention.output.dense.bias`),
          [`${b}.ln1.w`]: get(`${p}attention.output.LayerNorm.weight`), [`${b}.ln1.b`]: get(`${p}attention.output.LayerNorm.bias`),
          [`${b}.mlp.W_in`]: get(`${p}intermediate.dense.weight`).transpose(), [`${b}.mlp.b_in`]: get(`${p}intermediate.dense.bias`),
          [`${b}.mlp.W_out`]: get(`${p}output.dense.weight`).transpose(), [`${b}.mlp.b_out`]: get(`${p}output.dense.bias`),
          [`${b}.ln2.w`]: get(`${p}output.LayerNorm.weight`), [`${b}.ln2.b`]: get(`${p}output.LayerNorm.bias`),
        });
      }
      return out;
    },
    toHF(cfg, P) {
      const { d_model: d } = cfg;
      const flat = (W: tf.Tensor) => W.transpose([1, 0, 2]).reshape([d, d]).transpose(); // [head, d_model, d_head] → [out, in]
      const out: Record<string, tf.Tensor> = {
        [`${e}word_embeddings.weight`]: P('embed.W_E'),
        [`${e}position_embeddings.weight`]: P('pos_embed.W_pos'),
        [`${e}token_type_embeddings.weight`]: P('token_type_embed.W_token_type'),
        [`${e}LayerNorm.weight`]: P('embed.ln.w'), [`${e}LayerNorm.bias`]: P('embed.ln.b'),
        [`${L.head.dense}.weight`]: P('mlm_head.W').transpose(), [`${L.head.dense}.bias`]: P('mlm_head.b'),
        [`${L.head.ln}.weight`]: P('mlm_head.ln.w'), [`${L.head.ln}.bias`]: P('mlm_head.ln.b'),
        [L.head.bias]: P('unembed.b_U'),
      };
      if (!cfg.tie_word_embeddings) out[`${L.head.decoder}.weight`] = P('unembed.W_U').transpose();
      for (let l = 0; l < cfg.n_layers; l++) {
        const p = layer(l);
        const b = `blocks.${l}`;
        Object.assign(out, {
          [`${p}attention.self.query.weight`]: flat(P(`${b}.attn.W_Q`)), [`${p}attention.self.query.bias`]: P(`${b}.attn.b_Q`).reshape([d]),
          [`${p}attention.self.key.weight`]: flat(P(`${b}.attn.W_K`)), [`${p}attention.self.key.bias`]: P(`${b}.attn.b_K`).reshape([d]),
          [`${p}attention.self.value.weight`]: flat(P(`${b}.attn.W_V`)), [`${p}attention.self.value.bias`]: P(`${b}.attn.b_V`).reshape([d]),
          [`${p}attention.output.dense.weight`]: P(`${b}.attn.W_O`).reshape([d, d]).transpose(), [`${p}attention.output.dense.bias`]: P(`${b}.attn.b_O`),
          [`${p}attention.output.LayerNorm.weight`]: P(`${b}.ln1.w`), [`${p}attention.output.LayerNorm.bias`]: P(`${b}.ln1.b`),
          [`${p}intermediate.dense.weight`]: P(`${b}.mlp.W_in`).transpose(), [`${p}intermediate.dense.bias`]: P(`${b}.mlp.b_in`),
          [`${p}output.dense.weight`]: P(`${b}.mlp.W_out`).transpose(), [`${p}output.dense.bias`]: P(`${b}.mlp.b_out`),
          [`${p}output.LayerNorm.weight`]: P(`${b}.ln2.w`), [`${p}output.LayerNorm.bias`]: P(`${b}.ln2.b`),
        });
      }
      return out;
    },
    hfConfig(cfg) {
      assertExpressible(L.architecture, [
        [cfg.attention_dir === 'bidirectional' && cfg.norm_placement === 'post', `attention_dir ${cfg.attention_dir}, norm_placement ${cfg.norm_placement} (bidirectional, post)`],
        [cfg.normalization_type === 'LN' && cfg.positional_embedding_type === 'standard', `normalization_type ${cfg.normalization_type}, positional_embedding_type ${cfg.positional_embedding_type} (LN, learned positions)`],
        [!cfg.gated_mlp && !cfg.parallel_attn_mlp && !cfg.attn_only, 'a gated, parallel or missing MLP (one up-projection after attention)'],
        [cfg.n_key_value_heads === cfg.n_heads && cfg.d_head * cfg.n_heads === cfg.d_model, `${cfg.n_key_value_heads} key/value heads of d_head ${cfg.d_head} (${cfg.n_heads} of d_model / n_heads)`],
        [cfg.attn_qkv_bias && cfg.attn_out_bias && cfg.mlp_bias && cfg.unembed_bias && cfg.mlm_head, 'every bias and the MLM head (BERT has them all)'],
        [cfg.attn_scale === Math.sqrt(cfg.d_head) && !cfg.scale_attn_by_inverse_layer_idx && cfg.sliding_window === null, `attn_scale ${cfg.attn_scale} (√d_head, no window)`],
        [cfg.positions_after_pad === L.positionsAfterPad, `positions_after_pad ${cfg.positions_after_pad} (${L.positionsAfterPad} for ${L.modelType})`],
        [!L.positionsAfterPad || cfg.act_fn === 'gelu', `act_fn ${cfg.act_fn} (gelu: RoBERTa's MLM head applies it whatever hidden_act says)`],
      ]);
      return {
        architectures: [L.architecture],
        model_type: L.modelType,
        hidden_size: cfg.d_model,
        num_hidden_layers: cfg.n_layers,
        num_attention_heads: cfg.n_heads,
        intermediate_size: cfg.d_mlp,
        hidden_act: cfg.act_fn,
        max_position_embeddings: cfg.n_ctx,
        type_vocab_size: cfg.type_vocab_size,
        vocab_size: cfg.d_vocab,
        layer_norm_eps: cfg.eps,
        position_embedding_type: 'absolute',
        tie_word_embeddings: cfg.tie_word_embeddings,
        pad_token_id: cfg.pad_token_id,
        hidden_dropout_prob: 0,
        attention_probs_dropout_prob: 0,
        ...L.extraConfig(cfg),
      };
    },
  };
}

export const bert: Family = encoderFamily({
  modelType: 'bert',
  architecture: 'BertForMaskedLM',
  base: 'bert.',
  head: { dense: 'cls.predictions.transform.dense', ln: 'cls.predictions.transform.LayerNorm', decoder: 'cls.predictions.decoder', bias: 'cls.predictions.bias' },
  positionsAfterPad: false,
  extraConfig: () => ({}),
});
