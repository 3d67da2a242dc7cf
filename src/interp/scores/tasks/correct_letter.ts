/**
 * Correct-letter heads (Lieberum et al. 2023): on a multiple-choice question, heads at the final position that
 * attend to the correct option's label and write that letter into the logits. The causal check masks them and
 * measures letter accuracy, with the probability on the label tokens as a control for the answer format.
 */
import { mcqItems, mcqTokens, type LetterPrompt } from '../../../datasets/mcq.js';
import { HeadlensError } from '../../../errors.js';
import { correctLetterScorer } from '../correct_letter.js';
import { argmax, lastLogProbsReads } from '../task_metrics.js';
import { needTokenizer, type TaskDefinition } from './task.js';

export const correctLetterTask: TaskDefinition = (model, { samples, seed, prefix }) => {
  const tok = needTokenizer(model, 'correct-letter');
  const prompts: LetterPrompt[] = mcqItems({ n: samples, seed, labels: 'ordered' }).items.map((it) => mcqTokens(it, tok, prefix)).filter((p): p is LetterPrompt => p !== undefined && p.tokens.length <= model.cfg.n_ctx);
  if (prompts.length === 0) throw new HeadlensError('correct-letter: no prompt has single-token labels (" A" … " D") and fits the model\'s context', 'use a model whose tokenizer has " A" … " D" as tokens');
  return {
    scorer: correctLetterScorer(prompts),
    causal: {
      metric: function* (h) {
        let hit = 0;
        let mass = 0;
        for (const p of prompts) {
          const lp = yield* lastLogProbsReads(model, p.tokens, h);
          const onLabels = p.labelTokens.map((t) => lp[t]);
          hit += argmax(onLabels) === p.correct ? 1 : 0;
          mass += onLabels.reduce((a, b) => a + Math.exp(b), 0);
        }
        return { main: hit / prompts.length, control: mass / prompts.length };
      },
      names: { metric: 'letter accuracy (argmax over the labels)', control: 'probability on the label tokens (format)' },
      ablation: { kind: 'uniform' },
    },
  };
};
