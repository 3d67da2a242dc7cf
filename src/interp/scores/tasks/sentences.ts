/**
 * The items of the text tasks (special-tokens, attention-entropy): the first `samples` lines of the caller's
 * text or of the shipped sentences, each encoded as the model encodes text (toTokens: BOS first where the model
 * has one; an encoder's tokenizer adds its own [CLS]/[SEP]).
 */
import { sentenceLines } from '../../../datasets/sentences.js';
import { HeadlensError } from '../../../errors.js';
import type { HookedTransformer } from '../../../hooks/hooked_transformer.js';
import { needTokenizer, type TaskInputs } from './task.js';

export function sentenceItems(model: HookedTransformer, { samples, lines }: TaskInputs, task: string): number[][] {
  needTokenizer(model, task);
  const all = lines ?? sentenceLines();
  if (all.length === 0) throw new HeadlensError(`${task}: the text has no lines`, 'pass a text file with one item per line');
  const seqs = all.slice(0, samples).map((l) => model.toTokens(l)[0]);
  const short = seqs.findIndex((s) => s.length < 2);
  if (short >= 0) throw new HeadlensError(`${task}: line ${short + 1} encodes to ${seqs[short].length} token(s)`, 'attention needs at least two positions: use longer lines');
  return seqs;
}
