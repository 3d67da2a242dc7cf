/**
 * Fused WebGPU kernels for the forward (issue 18 §2): what the forward does between its matmuls, in one dispatch
 * each instead of one per tfjs op. src/model calls them only when `fusedKernelsActive()` (webgpu backend, no
 * gradient being recorded) and `optimisations.fusedKernels` are both true; every other backend and the
 * gradient path run the plain ops unchanged.
 *   norm.ts        LayerNorm / RMSNorm (and the hook_scale split when a hook listens there), also of a sum
 *   attention.ts   scores, mask, softmax and ·V for every query row, GQA-aware, reading the KV cache in place;
 *                  and the scores or pattern rows a read-only cache keeps, when one asks
 *   flash_attention.ts  the same attention tiled for many query rows (a prefill), FlashAttention-2 style
 *   rotary.ts      rotary embeddings of q and k together, straight from the fused QKV output
 *   kv_append.ts   the KV cache's new keys and values written in place into its preallocated slab
 *   activation.ts  the MLP's nonlinearity, or SwiGLU's act(gate)·up; the block's two residual adds as one
 *   split.ts       the fused QKV output cut into q, k and v in one dispatch
 * A kernel may write several outputs (the norm with its scale and residual sum for a cache, the split) through
 * headlens' own dispatch path (src/backend/webgpu_dispatch.ts); `multiOutputActive()` says when it can.
 */
export { fusedKernelsActive, multiOutputActive } from './program.js';
export { fusedNorm, fusedNormApply, fusedNormOfSum, fusedNormScale, fusedNormWith, type NormType } from './norm.js';
export { fusedSplitColumns } from './split.js';
export { attentionSplitCount, attentionSplits, bhpView, bphView, fusedAttention, fusedAttentionRows, fusedAttentionScoresAndPattern, fusedAttentionSplitRows, fusedAttentionWithRows, FUSED_ATTENTION_MAX_D_HEAD, type DecodeAttentionOptions, type HeadView, type InlineRotary } from './attention.js';
export { flashAttention, flashAttentionWithRows, flashAttentionZ } from './flash_attention.js';
export { fusedRotary, type RotaryOptions } from './rotary.js';
export { uninitialisedTensor, writeKVInPlace } from './kv_append.js';
export { fusedActivation, fusedAdd3, fusedGatedActivation, type FusedActivation } from './activation.js';
