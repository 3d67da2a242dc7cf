/** Induction heads (Olsson et al. 2022): attention from a repeated token to the token after its earlier copy; masking the top heads should cost accuracy on the repeated half. */
import { inductionScorer } from '../induction.js';
import { repeatAccuracyReads, repeatedSequences } from './repeated_sequences.js';
import type { TaskDefinition } from './task.js';

export const inductionTask: TaskDefinition = (model, inputs) => {
  const { seqs, half } = repeatedSequences(model, inputs);
  return {
    scorer: inductionScorer(seqs),
    causal: { metric: function* (h) {
        return { main: yield* repeatAccuracyReads(model, seqs, half, h) };
      }, names: { metric: 'top-1 accuracy on the repeated half' }, ablation: { kind: 'uniform' } },
  };
};
