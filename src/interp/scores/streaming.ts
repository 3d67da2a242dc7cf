/**
 * Streaming vs retrieval heads (DuoAttention, Xiao et al. 2024; RazorAttention, Tang et al. 2024). Most heads
 * of a long-context model only need the attention sink and a window of recent tokens ("streaming" heads);
 * a few need the whole context ("retrieval" heads). DuoAttention keeps full KV caches for about a quarter to
 * a half of the heads (25 % in MHA models, 50 % in GQA models) with little loss on long-context benchmarks;
 * RazorAttention cuts the KV cache of all but about 15 % of the heads to sink + window.
 *
 * Neither paper chooses its heads the way this file scores them. DuoAttention *learns* a gate per head: a trainable
 * weight mixing each head's full and streaming attention, optimised (model frozen) to keep the last hidden states of
 * a synthetic passkey-retrieval task, with an L1 penalty pushing gates to streaming — a training method, not a score
 * read off one run. RazorAttention picks retrieval heads by their echo and induction attention on repeated random
 * tokens (razor_attention.ts has that selection, `razorAttentionHeads`). The score here is a **proxy** for both:
 * the attention mass on the first `sinkTokens` keys plus the last `recent` keys (q − recent < k ≤ q), averaged over
 * queries q ≥ sinkTokens + recent (where sink and window leave something out). Near 1: the head would lose little
 * as a streaming head; low: it reads the middle of the context. `retrievalness` = 1 − score is a second table.
 * The causal check (tasks/streaming.ts) windows the top streaming heads, DuoAttention's streaming attention.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { attentionMassReads, range } from './attention_mass.js';
import { checkSequences, runScorer, runScorerAsync, type HeadScorer, type HeadScores } from './head_scores.js';

export interface StreamingOptions {
  /** Leading keys that count as the sink (default 4, as StreamingLLM and RazorAttention's implementation keep). */
  sinkTokens?: number;
  /** The recent window, the query itself included (default 16). */
  recent?: number;
  top?: number;
}

export function streamingScorer(sequences: number[][], opts: StreamingOptions = {}): HeadScorer<number[]> {
  checkSequences('streaming', sequences);
  const sink = opts.sinkTokens ?? 4;
  const recent = opts.recent ?? 16;
  if (!Number.isInteger(sink) || sink < 0 || !Number.isInteger(recent) || recent < 1) {
    throw new HeadlensError(`sinkTokens ${sink} and recent ${recent} must be integers (sink ≥ 0, recent ≥ 1)`);
  }
  const short = sequences.findIndex((s) => s.length <= sink + recent);
  if (short >= 0) {
    throw new HeadlensError(`streaming: sequence ${short} has ${sequences[short].length} tokens, not more than sinkTokens + recent (${sink + recent})`, 'use longer sequences or a smaller --recent');
  }
  return {
    task: 'streaming',
    settings: { sinkTokens: sink, recent, sequences: sequences.length, length: sequences[0].length },
    primary: 'score',
    items: sequences,
    scoreItem: function* (model, tokens) {
      const score = yield* attentionMassReads(model, tokens, (q, k) => k < sink || q - k < recent, range(sink + recent, tokens.length));
      return { tables: { score, retrievalness: score.map((row) => row.map((v) => 1 - v)) }, weight: 1 };
    },
  };
}

/** Sink + recent-window attention mass of every head, [n_layers][n_heads]; high = streaming head. */
export function streamingScores(model: HookedTransformer, sequences: number[][], opts: StreamingOptions = {}): HeadScores {
  return runScorer(model, streamingScorer(sequences, opts), { top: opts.top });
}

/** streamingScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function streamingScoresAsync(model: HookedTransformer, sequences: number[][], opts: StreamingOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, streamingScorer(sequences, opts), { top: opts.top });
}
