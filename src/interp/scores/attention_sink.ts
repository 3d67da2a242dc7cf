/**
 * Attention sinks (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks"): many heads
 * park most of their attention on the first token(s) whatever they are; in Llama-2 the first tokens take a
 * large share of attention in most layers after the first two, which is why StreamingLLM keeps 4 of them.
 * Score: the mass a head puts on the first `sinkTokens` keys, averaged over queries q ≥ sinkTokens (earlier
 * queries can attend nowhere else, so they would score 1 whatever the head does).
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { attentionMassReads, range } from './attention_mass.js';
import { checkSequences, runScorer, runScorerAsync, type HeadScorer, type HeadScores } from './head_scores.js';

export interface SinkOptions {
  /** How many leading keys count as the sink (default 1). */
  sinkTokens?: number;
  top?: number;
}

export function attentionSinkScorer(sequences: number[][], opts: SinkOptions = {}): HeadScorer<number[]> {
  checkSequences('sink', sequences);
  const sink = opts.sinkTokens ?? 1;
  if (!Number.isInteger(sink) || sink < 1) throw new HeadlensError(`sinkTokens ${sink} must be a positive integer`);
  const short = sequences.findIndex((s) => s.length <= sink);
  if (short >= 0) throw new HeadlensError(`sink: sequence ${short} has ${sequences[short].length} tokens, not more than sinkTokens (${sink})`, 'use longer sequences');
  return {
    task: 'sink',
    settings: { sinkTokens: sink, sequences: sequences.length, length: sequences[0].length },
    primary: 'score',
    items: sequences,
    scoreItem: function* (model, tokens) {
      return { tables: { score: yield* attentionMassReads(model, tokens, (_q, k) => k < sink, range(sink, tokens.length)) }, weight: 1 };
    },
  };
}

/** Attention-sink mass of every head, [n_layers][n_heads], in [0, 1]. */
export function attentionSinkScores(model: HookedTransformer, sequences: number[][], opts: SinkOptions = {}): HeadScores {
  return runScorer(model, attentionSinkScorer(sequences, opts), { top: opts.top });
}

/** attentionSinkScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function attentionSinkScoresAsync(model: HookedTransformer, sequences: number[][], opts: SinkOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, attentionSinkScorer(sequences, opts), { top: opts.top });
}
