/**
 * Batches of unequal length: an attention mask [batch, pos] (1 = a real token, 0 = padding) and what the
 * forward does with it. This follows TransformerLens (HookedTransformer.forward with an attention_mask,
 * utils.get_offset_position_ids, components/attention's masking):
 *   - keys at padded positions get −Infinity in the scores, on top of the causal mask;
 *   - a query row whose keys are all padding (a left-padded position: everything before it is padding) has
 *     softmax NaN; its pattern is set to 0, as TransformerLens does (`torch.where(isnan(pattern), 0, pattern)`),
 *     so nothing NaN leaves a padded position;
 *   - position ids count real tokens only: cumsum(mask) − 1, clipped at 0 (TransformerLens'
 *     get_offset_position_ids), so a left-padded prompt's first real token sits at position 0 of the learned
 *     or rotary embedding, as it does run alone; with right padding the real tokens keep positions 0…n−1;
 *   - learned position embeddings are 0 at padded positions (TransformerLens' PosEmbed: "an arbitrary choice").
 * Real positions then compute what each prompt computes run alone (tests/padding.test.ts, 1e-4). What a padded
 * position computes is meaningless and must not be read. With a KV cache the cache keeps the mask of every
 * position it holds, so later steps mask the same keys and count positions from the real tokens.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

/** An attention mask: [batch, pos] of 1 (real token) and 0 (padding), nested arrays or a tensor. */
export type AttentionMaskInput = number[][] | tf.Tensor;

/** The mask as rows of 0/1, checked against the token shape [batch, pos]. Every row needs one real token. */
export function maskRows(mask: AttentionMaskInput, batch: number, pos: number): number[][] {
  let rows: number[][];
  if (mask instanceof tf.Tensor) {
    if (mask.rank !== 2) throw new HeadlensError(`attentionMask must be [batch, pos], got a tensor of shape [${mask.shape}]`, 'pass one row of 1 (token) and 0 (padding) per sequence');
    rows = mask.arraySync() as number[][];
  } else {
    rows = mask;
  }
  if (!Array.isArray(rows) || rows.length !== batch || rows.some((r) => !Array.isArray(r) || r.length !== pos)) {
    const shape = Array.isArray(rows) ? `[${rows.length}, ${Array.isArray(rows[0]) ? rows[0].length : '?'}]` : typeof rows;
    throw new HeadlensError(`attentionMask is ${shape} but the tokens are [${batch}, ${pos}]`, 'give one mask row per token row, as long as it (toTokens(texts, { padding }) returns both)');
  }
  rows.forEach((r, i) => {
    const bad = r.findIndex((x) => x !== 0 && x !== 1);
    if (bad >= 0) throw new HeadlensError(`attentionMask[${i}][${bad}] is ${r[bad]}, not 0 or 1`, 'use 1 for a real token and 0 for padding');
    if (!r.includes(1)) throw new HeadlensError(`attentionMask row ${i} has no real token (all 0)`, 'every row needs at least one token marked 1');
  });
  return rows;
}

/** Whether any position is padding. */
export function hasPadding(rows: number[][]): boolean {
  return rows.some((r) => r.includes(0));
}

/**
 * Position ids of the last `n` positions of each row: real tokens before them counted, cumsum(mask) − 1 clipped
 * at 0 (TransformerLens' get_offset_position_ids). `rows` covers every position so far (cached and new).
 */
export function positionIds(rows: number[][], n: number): number[][] {
  return rows.map((r) => {
    const out: number[] = [];
    let seen = 0;
    r.forEach((m, i) => {
      seen += m;
      if (i >= r.length - n) out.push(Math.max(seen - 1, 0));
    });
    return out;
  });
}

/**
 * The additive mask of a padded batch: the causal (and sliding-window) mask [query_pos, key_pos] plus −Infinity
 * at every padded key of each row. [batch, 1, query_pos, key_pos], broadcast over heads.
 */
export function paddedMask(causal: tf.Tensor2D, keyRows: number[][]): tf.Tensor4D {
  return tf.tidy(() => {
    const keys = keyRows[0].length;
    const pad = new Float32Array(keyRows.length * keys);
    keyRows.forEach((r, b) => r.forEach((m, k) => (pad[b * keys + k] = m === 1 ? 0 : -Infinity)));
    const padT = tf.tensor4d(pad, [keyRows.length, 1, 1, keys]); // [batch, 1, 1, key_pos]
    return causal.expandDims(0).expandDims(0).add(padT) as tf.Tensor4D; // [batch, 1, query_pos, key_pos]
  });
}

/**
 * Position ids of an encoder's tokens [batch][pos], as transformers computes them, so that every position (padded
 * ones too) gives transformers' hidden states for right-padded batches:
 *   - RoBERTa (`positionsAfterPad`): from the ids alone (create_position_ids_from_input_ids): a token whose id is not
 *     the padding id sits at pad + 1 + (how many such tokens precede it), a padding token at pad;
 *   - BERT: absolute positions 0…pos−1 (its position_ids buffer), except that with a mask the real tokens count
 *     only real tokens (cumsum(mask) − 1), so a left-padded row's real tokens sit where they sit run alone, as in
 *     the decoders (transformers would shift them by the padding; with right padding both agree).
 */
export function encoderPositionIds(ids: number[][], mask: number[][] | undefined, positionsAfterPad: boolean, padId: number | null): number[][] {
  if (positionsAfterPad) {
    const pad = padId as number;
    return ids.map((r) => {
      let seen = 0;
      return r.map((id) => (id === pad ? pad : pad + 1 + seen++));
    });
  }
  if (!mask) return ids.map((r) => r.map((_, i) => i));
  return mask.map((r) => {
    let seen = 0;
    return r.map((m, i) => (m === 1 ? seen++ : i));
  });
}
