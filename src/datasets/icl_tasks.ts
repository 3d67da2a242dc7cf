/**
 * In-context word-mapping tasks for function vectors (Todd et al. 2024), built from headlens' own word lists so
 * that a word-level model such as toy-lm has every word as one token: `category` (a member to its category,
 * "dog" → "animal", like their abstractive tasks), `letter-successor` ("A" → "B", like their next_item) and
 * `identity` ("dog" → "dog"). Word pairs, not token ids: `iclTaskTokens` encodes them with a tokenizer and names
 * any word that is not exactly one token. datasets/icl/README.md says where they come from.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { CATEGORIES } from './word_lists.js';

export const IclTaskSchema = z.array(z.tuple([z.string().min(1), z.string().min(1)])).min(2);
/** [input word, output word] pairs. */
export type IclTask = z.infer<typeof IclTaskSchema>;

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('');

export const ICL_TASKS: Record<string, IclTask> = {
  category: Object.entries(CATEGORIES).flatMap(([name, c]) => c.members.map((m): [string, string] => [m, name])),
  'letter-successor': LETTERS.slice(0, -1).map((c, i): [string, string] => [c, LETTERS[i + 1]]),
  identity: Object.values(CATEGORIES).flatMap((c) => c.members.map((m): [string, string] => [m, m])),
};

/** The pairs as token ids: each input and output must be one token (the word with the tokenizer's spacing as given). */
export function iclTaskTokens(task: IclTask, tokenizer: TextTokenizer): { input: number[]; output: number }[] {
  IclTaskSchema.parse(task);
  const one = (w: string) => {
    const ids = tokenizer.encode(w);
    if (ids.length !== 1) throw new HeadlensError(`'${w}' is ${ids.length} tokens for this tokenizer`, 'function-vector tasks here need one-token words; pass other pairs');
    return ids[0];
  };
  return task.map(([a, b]) => ({ input: [one(a)], output: one(b) }));
}
