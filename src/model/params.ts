/**
 * The parameters of a headlens model, named and shaped as in TransformerLens' state dict. Attention
 * weights are per head (`W_Q [head, d_model, d_head]`, `W_O [head, d_head, d_model]`); under GQA the key
 * and value weights have n_key_value_heads heads. Every bias exists (zeros where the checkpoint has
 * none), so interpretability code never needs to ask whether one is there.
 */
import type { HookedConfig } from './config.js';

export type ParamShapes = Record<string, number[]>;

/** Every parameter the model expects, in a fixed order, with its shape. */
export function paramShapes(cfg: HookedConfig): ParamShapes {
  const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e, d_vocab: v, n_ctx } = cfg;
  const s: ParamShapes = { 'embed.W_E': [v, d] };
  if (cfg.positional_embedding_type === 'standard') s['pos_embed.W_pos'] = [n_ctx, d];
  if (cfg.type_vocab_size > 0) s['token_type_embed.W_token_type'] = [cfg.type_vocab_size, d];
  const norm = (prefix: string) => {
    if (cfg.normalization_type === null) return;
    s[`${prefix}.w`] = [d];
    if (cfg.normalization_type === 'LN') s[`${prefix}.b`] = [d];
  };
  const post = cfg.norm_placement === 'post';
  if (post) norm('embed.ln'); // BERT's embedding LayerNorm
  for (let l = 0; l < cfg.n_layers; l++) {
    const b = `blocks.${l}`;
    norm(`${b}.ln1`);
    Object.assign(s, {
      [`${b}.attn.W_Q`]: [h, d, e],
      [`${b}.attn.b_Q`]: [h, e],
      [`${b}.attn.W_K`]: [kv, d, e],
      [`${b}.attn.b_K`]: [kv, e],
      [`${b}.attn.W_V`]: [kv, d, e],
      [`${b}.attn.b_V`]: [kv, e],
      [`${b}.attn.W_O`]: [h, e, d],
      [`${b}.attn.b_O`]: [d],
    });
    if (!cfg.attn_only) {
      const m = cfg.d_mlp!;
      norm(`${b}.ln2`);
      s[`${b}.mlp.W_in`] = [d, m];
      s[`${b}.mlp.b_in`] = [m];
      if (cfg.gated_mlp) {
        s[`${b}.mlp.W_gate`] = [d, m];
        s[`${b}.mlp.b_gate`] = [m];
      }
      s[`${b}.mlp.W_out`] = [m, d];
      s[`${b}.mlp.b_out`] = [d];
    }
  }
  if (!post) norm('ln_final');
  if (cfg.mlm_head) {
    s['mlm_head.W'] = [d, d];
    s['mlm_head.b'] = [d];
    norm('mlm_head.ln');
  }
  s['unembed.W_U'] = [d, v];
  s['unembed.b_U'] = [v];
  return s;
}

/** Whether the checkpoint itself holds this parameter (false for the zero biases headlens adds, and a tied W_U). */
export function inCheckpoint(cfg: HookedConfig, name: string): boolean {
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  if (['b_Q', 'b_K', 'b_V'].includes(leaf)) return cfg.attn_qkv_bias;
  if (leaf === 'b_O') return cfg.attn_out_bias;
  if (leaf === 'b_in' || leaf === 'b_out' || leaf === 'b_gate') return cfg.mlp_bias;
  if (leaf === 'b_U') return cfg.unembed_bias;
  if (name === 'unembed.W_U') return !cfg.tie_word_embeddings;
  return true;
}

/** Parameters as the checkpoint counts them (tied embeddings once, no added zero biases). */
export function countParams(cfg: HookedConfig): number {
  let n = 0;
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    if (inCheckpoint(cfg, name)) n += shape.reduce((a, b) => a * b, 1);
  }
  return n;
}
