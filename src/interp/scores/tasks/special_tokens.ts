/**
 * Attention to [CLS]/BOS, [SEP] and punctuation per head (Clark et al. 2019, special_tokens.ts). The default
 * classes, with the model's own BOS string added to `cls` (a decoder whose BOS is none of the usual spellings).
 * No causal check.
 */
import { DEFAULT_TOKEN_CLASSES, specialTokensScorer } from '../special_tokens.js';
import { sentenceItems } from './sentences.js';
import { needTokenizer, type TaskDefinition } from './task.js';

export const specialTokensTask: TaskDefinition = (model, inputs) => {
  const tok = needTokenizer(model, 'special-tokens');
  const bos = inputs.bos === null ? [] : [tok.tokenText(inputs.bos)];
  const classes = { ...DEFAULT_TOKEN_CLASSES, cls: [...new Set([...DEFAULT_TOKEN_CLASSES.cls, ...bos])] };
  return { scorer: specialTokensScorer(sentenceItems(model, inputs, 'special-tokens'), (id) => tok.tokenText(id), { classes }) };
};
