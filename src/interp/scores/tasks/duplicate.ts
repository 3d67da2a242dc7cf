/** Duplicate-token heads: attention from a repeated token to its earlier copy; masking the top heads should cost accuracy on the repeated half. */
import { duplicateTokenScorer } from '../duplicate_token.js';
import { repeatAccuracyReads, repeatedSequences } from './repeated_sequences.js';
import type { TaskDefinition } from './task.js';

export const duplicateTask: TaskDefinition = (model, inputs) => {
  const { seqs, half } = repeatedSequences(model, inputs);
  return {
    scorer: duplicateTokenScorer(seqs),
    causal: { metric: function* (h) {
        return { main: yield* repeatAccuracyReads(model, seqs, half, h) };
      }, names: { metric: 'top-1 accuracy on the repeated half' }, ablation: { kind: 'uniform' } },
  };
};
