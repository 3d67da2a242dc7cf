/** Attention entropy per head (Clark et al. 2019, attention_entropy.ts). No causal check. */
import { attentionEntropyScorer } from '../attention_entropy.js';
import { sentenceItems } from './sentences.js';
import type { TaskDefinition } from './task.js';

export const attentionEntropyTask: TaskDefinition = (model, inputs) => ({ scorer: attentionEntropyScorer(sentenceItems(model, inputs, 'attention-entropy')) });
