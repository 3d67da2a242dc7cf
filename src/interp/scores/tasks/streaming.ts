/** Streaming heads (DuoAttention, Xiao et al. 2024): heads that need only the sink tokens and a recent window, by the attention-mass proxy of streaming.ts (DuoAttention learns its gates; RazorAttention's own selection is razor_attention.ts). */
import { streamingScorer } from '../streaming.js';
import { repeatAccuracyReads, repeatedSequences } from './repeated_sequences.js';
import type { TaskDefinition } from './task.js';

export const streamingTask: TaskDefinition = (model, inputs) => {
  const { seqs, half } = repeatedSequences(model, inputs);
  const sinkTokens = Math.min(4, half);
  const recent = Math.max(1, Math.min(16, Math.floor(half / 2)));
  // DuoAttention's claim, inverted from the other checks: restricting the top streaming heads to sink +
  // window should cost nothing, while as many random heads (some of which read far back) may cost accuracy
  return {
    scorer: streamingScorer(seqs, { sinkTokens, recent }),
    causal: { metric: function* (h) {
        return { main: yield* repeatAccuracyReads(model, seqs, half, h) };
      }, names: { metric: 'top-1 accuracy on the repeated half (should not move when streaming heads are windowed)' }, ablation: { kind: 'window', sinkTokens, recent } },
  };
};
