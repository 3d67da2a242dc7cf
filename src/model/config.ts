/**
 * The model configuration, with TransformerLens' field names. One zod schema gives the runtime check
 * (a config.json from the internet is untrusted) and the static type.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';

export const ACT_FNS = ['gelu_new', 'gelu', 'gelu_fast', 'gelu_pytorch_tanh', 'relu', 'silu'] as const;

export const RopeScalingSchema = z.object({
  type: z.enum(['linear', 'llama3']),
  factor: z.number().positive(),
  low_freq_factor: z.number().positive().optional(),
  high_freq_factor: z.number().positive().optional(),
  original_max_position_embeddings: z.number().int().positive().optional(),
});

const int = z.number().int();

export const ConfigSchema = z
  .object({
    model_name: z.string().default('unnamed'),
    /** The HF architecture it came from (GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM, …) or 'HeadlensAttnOnly'. */
    original_architecture: z.string().default('HeadlensAttnOnly'),
    d_model: int.positive(),
    n_layers: int.positive(),
    n_heads: int.positive(),
    /** Key/value heads: n_heads for multi-head attention, fewer under GQA, 1 under MQA. */
    n_key_value_heads: int.positive().optional(),
    d_head: int.positive(),
    /** Hidden width of the MLP; null for attention-only models. */
    d_mlp: int.positive().nullable().default(null),
    d_vocab: int.positive(),
    n_ctx: int.positive(),
    act_fn: z.enum(ACT_FNS).default('gelu_new'),
    normalization_type: z.enum(['LN', 'RMS']).nullable().default('LN'),
    eps: z.number().positive().default(1e-5),
    positional_embedding_type: z.enum(['standard', 'rotary']).default('standard'),
    /** How many dimensions of each head rotary touches (the first ones), e.g. d_head / 4 in Pythia. */
    rotary_dim: int.positive().nullable().default(null),
    /**
     * The dimension in the frequencies' exponent, θ_i = base^(−2i / rotary_freq_dim); null: rotary_dim. They differ
     * only for a GPT-NeoX checkpoint whose r = int(d_head · rotary_pct) is odd: transformers then computes ⌈r/2⌉
     * frequencies over r (arange(0, r, 2) / r) and its cos/sin tables, and so the rotated dimensions, are
     * 2·⌈r/2⌉ = r + 1 wide (rotary_dim).
     */
    rotary_freq_dim: int.positive().nullable().default(null),
    rotary_base: z.number().positive().default(10000),
    rope_scaling: RopeScalingSchema.nullable().default(null),
    parallel_attn_mlp: z.boolean().default(false),
    attn_only: z.boolean().default(false),
    gated_mlp: z.boolean().default(false),
    tie_word_embeddings: z.boolean().default(false),
    /** Scores are divided by attn_scale (sqrt(d_head) unless the checkpoint says otherwise). */
    attn_scale: z.number().positive().optional(),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    /** Which biases the checkpoint has; absent ones are zeros here and are not written by save. */
    attn_qkv_bias: z.boolean().default(true),
    attn_out_bias: z.boolean().default(true),
    mlp_bias: z.boolean().default(true),
    unembed_bias: z.boolean().default(false),
    /** Keys farther back than this are masked (Mistral); null: full causal attention. */
    sliding_window: int.positive().nullable().default(null),
    /**
     * The longest sequence the model was trained on, where that is shorter than n_ctx (toy-induction-2l: 33 of 64; the
     * positions past it were never trained). Scans and the demo default to sequences that fit it. null: n_ctx.
     */
    trained_ctx: int.positive().nullable().default(null),
    bos_token_id: int.nonnegative().nullable().default(null),
    eos_token_id: int.nonnegative().nullable().default(null),
    /** The padding id (encoders: what toTokens pads with; RoBERTa's positions count from it). */
    pad_token_id: int.nonnegative().nullable().default(null),
    /**
     * 'causal' (decoders) or 'bidirectional' (BERT-family encoders: every position attends to every real one;
     * TransformerLens' HookedEncoder name). Bidirectional models have no KV cache, generate or next-token loss.
     */
    attention_dir: z.enum(['causal', 'bidirectional']).default('causal'),
    /**
     * Where the norms sit. 'pre' (GPT-2 and later): ln1 before attention, ln2 before the MLP, ln_final after the
     * blocks. 'post' (BERT): the embeddings' sum goes through embed.ln; ln1 normalises resid_mid (resid_pre +
     * attn_out) and feeds the MLP; ln2 normalises resid_post (ln1's output + mlp_out) and is the block's output,
     * hooked again as hook_normalized_resid_post; no ln_final (TransformerLens' BertBlock).
     */
    norm_placement: z.enum(['pre', 'post']).default('pre'),
    /** Token-type (segment) embeddings: rows of token_type_embed.W_token_type; 0: none (decoders). */
    type_vocab_size: int.nonnegative().default(0),
    /**
     * RoBERTa's positions: a token whose id is not pad_token_id sits at pad_token_id + 1 + (how many such tokens
     * come before it), a padding token at pad_token_id (transformers' create_position_ids_from_input_ids).
     */
    positions_after_pad: z.boolean().default(false),
    /**
     * The masked-LM head of BERT-family encoders before the unembedding: x·mlm_head.W + mlm_head.b, act_fn,
     * LayerNorm mlm_head.ln (TransformerLens' BertMLMHead); the unembedding is tied to W_E with its own bias.
     */
    mlm_head: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kv = c.n_key_value_heads ?? c.n_heads;
    if (c.n_heads % kv !== 0) {
      ctx.addIssue({ code: 'custom', path: ['n_key_value_heads'], message: `n_heads (${c.n_heads}) must be a multiple of n_key_value_heads (${kv})` });
    }
    if (!c.attn_only && c.d_mlp == null) {
      ctx.addIssue({ code: 'custom', path: ['d_mlp'], message: 'd_mlp is required unless attn_only is true' });
    }
    if (c.norm_placement === 'post' && c.normalization_type !== 'LN') {
      ctx.addIssue({ code: 'custom', path: ['normalization_type'], message: "norm_placement 'post' (BERT) needs normalization_type 'LN'" });
    }
    if (c.norm_placement === 'post' && (c.attn_only || c.parallel_attn_mlp)) {
      ctx.addIssue({ code: 'custom', path: ['norm_placement'], message: "norm_placement 'post' needs an MLP after attention (attn_only and parallel_attn_mlp false)" });
    }
    if (c.positions_after_pad && (c.pad_token_id === null || c.positional_embedding_type !== 'standard')) {
      ctx.addIssue({ code: 'custom', path: ['positions_after_pad'], message: 'positions_after_pad needs pad_token_id and learned (standard) position embeddings' });
    }
    if (c.positions_after_pad && c.pad_token_id !== null && c.pad_token_id + 2 > c.n_ctx) {
      ctx.addIssue({ code: 'custom', path: ['pad_token_id'], message: `positions start at pad_token_id + 1 (${c.pad_token_id + 1}), past n_ctx (${c.n_ctx})` });
    }
    if (c.positional_embedding_type === 'rotary') {
      const rd = c.rotary_dim ?? c.d_head;
      if (rd % 2 !== 0 || rd > c.d_head) {
        ctx.addIssue({ code: 'custom', path: ['rotary_dim'], message: c.rotary_freq_dim ? `int(d_head · rotary_pct) is ${c.rotary_freq_dim}, odd, so transformers would rotate ${rd} dimensions (2·⌈r/2⌉), more than d_head (${c.d_head}); transformers cannot run it either` : `rotary_dim (${rd}) must be even and at most d_head (${c.d_head})` });
      }
      if (c.rotary_freq_dim != null && rd !== 2 * Math.ceil(c.rotary_freq_dim / 2)) {
        ctx.addIssue({ code: 'custom', path: ['rotary_freq_dim'], message: `rotary_freq_dim (${c.rotary_freq_dim}) must be rotary_dim (${rd}) or rotary_dim − 1` });
      }
    }
  });

/** Whether the model is a BERT-family encoder (bidirectional attention). */
export function isEncoder(cfg: Pick<HookedConfig, 'attention_dir'>): boolean {
  return cfg.attention_dir === 'bidirectional';
}

/** The longest sequence the model handles as trained: trained_ctx where declared, else n_ctx. */
export function usableCtx(cfg: Pick<HookedConfig, 'n_ctx' | 'trained_ctx' | 'positions_after_pad' | 'pad_token_id'>): number {
  // RoBERTa's first pad_token_id + 1 position rows are never used by a real token
  const first = cfg.positions_after_pad && cfg.pad_token_id !== null ? cfg.pad_token_id + 1 : 0;
  return Math.min(cfg.n_ctx - first, cfg.trained_ctx ?? cfg.n_ctx);
}

export type HookedConfigInput = z.input<typeof ConfigSchema>;
type Parsed = z.output<typeof ConfigSchema>;
/** A checked config with every default filled in. */
export type HookedConfig = Parsed & { n_key_value_heads: number; attn_scale: number; rotary_dim: number | null };

/**
 * Checks a config and fills in the derived fields. Throws a HeadlensError listing every problem;
 * `sources` names the config.json key behind a field (d_model ← n_embd), so the message names what to edit.
 */
export function makeConfig(input: HookedConfigInput, sources: Record<string, string> = {}): HookedConfig {
  const r = ConfigSchema.safeParse(input);
  if (!r.success) {
    const where = (path: PropertyKey[]) => {
      const f = path.join('.') || 'config';
      const src = Object.hasOwn(sources, String(path[0])) ? sources[String(path[0])] : undefined;
      return src ? `${f} (config.json ${src})` : f;
    };
    const problems = r.error.issues.map((i) => `${where(i.path)}: ${i.message}`).join('; ');
    throw new HeadlensError(`invalid model config: ${problems}`, 'fix these fields in config.json');
  }
  const c = r.data;
  return {
    ...c,
    n_key_value_heads: c.n_key_value_heads ?? c.n_heads,
    attn_scale: c.attn_scale ?? Math.sqrt(c.d_head),
    rotary_dim: c.positional_embedding_type === 'rotary' ? (c.rotary_dim ?? c.d_head) : null,
  };
}
