/** Attention to [CLS]/BOS, [SEP] and punctuation per head (Clark et al. 2019, special_tokens.ts). No causal check. */
import { specialTokensScorer } from '../special_tokens.js';
import { sentenceItems } from './sentences.js';
import { needTokenizer, type TaskDefinition } from './task.js';

export const specialTokensTask: TaskDefinition = (model, inputs) => {
  const tok = needTokenizer(model, 'special-tokens');
  return { scorer: specialTokensScorer(sentenceItems(model, inputs, 'special-tokens'), (id) => tok.tokenText(id)) };
};
