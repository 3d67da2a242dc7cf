/** Attention-sink heads (Xiao et al. 2023): attention parked on the first tokens. Scored without a causal check. */
import { attentionSinkScorer } from '../attention_sink.js';
import { repeatedSequences } from './repeated_sequences.js';
import type { TaskDefinition } from './task.js';

export const sinkTask: TaskDefinition = (model, inputs) => ({ scorer: attentionSinkScorer(repeatedSequences(model, inputs).seqs) });
