/** What `headlens info` (and the demo, and a scan's report) say about a model: its card in numbers. */
import { currentBackend } from '../backend/index.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';

/** The model's shape, layout, tokenizer and the backend it runs on. */
export function modelInfo(model: HookedTransformer) {
  const c = model.cfg;
  return {
    model: c.model_name,
    family: c.original_architecture,
    parameters: model.nParams,
    n_layers: c.n_layers,
    n_heads: c.n_heads,
    n_key_value_heads: c.n_key_value_heads,
    d_model: c.d_model,
    d_head: c.d_head,
    d_mlp: c.d_mlp,
    d_vocab: c.d_vocab,
    n_ctx: c.n_ctx,
    trained_ctx: c.trained_ctx ?? null,
    normalization: c.normalization_type,
    positional_embedding: c.positional_embedding_type + (c.rotary_dim ? ` (rotary_dim ${c.rotary_dim})` : ''),
    attn_only: c.attn_only,
    parallel_attn_mlp: c.parallel_attn_mlp,
    attention_dir: c.attention_dir,
    norm_placement: c.norm_placement,
    tokenizer: model.tokenizer ? 'tokenizer.json' : null,
    backend: currentBackend()?.name ?? null,
    backend_reason: currentBackend()?.reason ?? null,
  };
}

export function formatInfo(i: ReturnType<typeof modelInfo>): string {
  return [
    `model       ${i.model}`,
    `family      ${i.family}`,
    `parameters  ${i.parameters.toLocaleString('en-US')}`,
    `layers      ${i.n_layers} × ${i.n_heads} heads${i.n_key_value_heads !== i.n_heads ? ` (${i.n_key_value_heads} key/value heads)` : ''}`,
    `d_model     ${i.d_model}, d_head ${i.d_head}, d_mlp ${i.d_mlp ?? '— (attention only)'}, d_vocab ${i.d_vocab}, n_ctx ${i.n_ctx}${i.trained_ctx !== null ? ` (trained on ${i.trained_ctx} tokens: scans and the demo stay within it)` : ''}`,
    `layout      ${i.normalization ?? 'no'} norm${i.norm_placement === 'post' ? ' (post-LN)' : ''}, ${i.positional_embedding} positions${i.parallel_attn_mlp ? ', parallel attention + MLP' : ''}${i.attention_dir === 'bidirectional' ? ', bidirectional attention (encoder, masked-LM logits)' : ''}`,
    `tokenizer   ${i.tokenizer ?? 'none'}`,
    `backend     ${i.backend} (${i.backend_reason})`,
  ].join('\n');
}
