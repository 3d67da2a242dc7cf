/** Previous-token heads: attention from each position to the one before it; masking the top heads should cost accuracy on the repeated half. */
import { previousTokenScorer } from '../previous_token.js';
import { repeatAccuracyReads, repeatedSequences } from './repeated_sequences.js';
import type { TaskDefinition } from './task.js';

export const prevTokenTask: TaskDefinition = (model, inputs) => {
  const { seqs, half } = repeatedSequences(model, inputs);
  return {
    scorer: previousTokenScorer(seqs),
    causal: { metric: function* (h) {
        return { main: yield* repeatAccuracyReads(model, seqs, half, h) };
      }, names: { metric: 'top-1 accuracy on the repeated half' }, ablation: { kind: 'uniform' } },
  };
};
