/**
 * Multiple-choice questions with letter labels (Lieberum et al. 2023, "Does Circuit Analysis
 * Interpretability Scale? Evidence from Multiple Choice Capabilities in Chinchilla"). The paper asks
 * Chinchilla-70B MMLU questions with options labelled A–D and studies the heads that move the correct letter;
 * to separate "which option is right" from "which letter is it", it also randomises the labels (other letters
 * or a permutation) and finds the correct-letter heads still work on the randomised labels.
 * Here the questions are ones whose answer the content determines ("Which of these is a fruit?" with one fruit
 * among three other things), so any label set can be checked; the correct option's position is balanced
 * (question i has it at position i mod n). Labels: 'ordered' (A B C D), 'shuffled' (a permutation of A–D),
 * 'random' (four distinct random capital letters). Word lists in word_lists.ts; questions and format are ours.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import { CATEGORIES } from './word_lists.js';

export const McqItemSchema = z
  .object({
    category: z.string(),
    question: z.string(),
    options: z.array(z.string()).min(2),
    labels: z.array(z.string().length(1)).min(2),
    correct: z.number().int().nonnegative(),
    prompt: z.string(),
  })
  .strict()
  .refine((q) => q.options.length === q.labels.length && q.correct < q.options.length && new Set(q.labels).size === q.labels.length, {
    message: 'one distinct label per option and a correct index in range',
  });
export type McqItem = z.infer<typeof McqItemSchema>;

export const McqSetSchema = z.object({ kind: z.literal('mcq'), seed: z.number().int(), labelMode: z.enum(['ordered', 'shuffled', 'random']), items: z.array(McqItemSchema).min(1) }).strict();
export type McqSet = z.infer<typeof McqSetSchema>;

export interface McqOptions {
  n: number;
  seed?: number;
  labels?: 'ordered' | 'shuffled' | 'random';
  /** Options per question (2–4, default 4). */
  nOptions?: number;
}

/** The prompt text: "Question: …\nOptions: A) red B) dog …\nAnswer:" (the answer is " A"). */
export function mcqPrompt(question: string, options: string[], labels: string[]): string {
  return `Question: ${question}\nOptions:${options.map((o, i) => ` ${labels[i]}) ${o}`).join('')}\nAnswer:`;
}

/** Seeded content-determined multiple-choice questions. */
export function mcqItems(opts: McqOptions): McqSet {
  const seed = opts.seed ?? 0;
  const rng = new Random(seed);
  const nOpt = opts.nOptions ?? 4;
  if (!(Number.isInteger(nOpt) && nOpt >= 2 && nOpt <= 4)) throw new HeadlensError(`mcq: nOptions ${nOpt} must be 2, 3 or 4`);
  const mode = opts.labels ?? 'ordered';
  const cats = Object.keys(CATEGORIES);
  const items = Array.from({ length: opts.n }, (_, i) => {
    const category = cats[rng.int(0, cats.length)];
    const others = rng.shuffle(cats.filter((c) => c !== category)).slice(0, nOpt - 1);
    const correct = i % nOpt;
    const distractors = others.map((c) => rng.pick(CATEGORIES[c].members));
    const options = [...distractors];
    options.splice(correct, 0, rng.pick(CATEGORIES[category].members));
    const base = 'ABCD'.slice(0, nOpt).split('');
    const labels = mode === 'ordered' ? base : mode === 'shuffled' ? rng.shuffle(base) : rng.shuffle('ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')).slice(0, nOpt);
    const question = CATEGORIES[category].question;
    return { category, question, options, labels, correct, prompt: mcqPrompt(question, options, labels) };
  });
  return McqSetSchema.parse({ kind: 'mcq', seed, labelMode: mode, items });
}

/**
 * The same questions with other labels: Lieberum et al.'s label mutations keep each question, its options and the
 * correct option's place, and change only the labels ('ordered' A B C D, 'shuffled' a permutation of them,
 * 'random' distinct random capital letters), so a head's scores under the mutations compare like with like.
 */
export function relabelMcq(set: McqSet, labels: 'ordered' | 'shuffled' | 'random', seed = 1): McqSet {
  const rng = new Random(seed);
  const items = set.items.map((it) => {
    const base = 'ABCD'.slice(0, it.options.length).split('');
    const ls = labels === 'ordered' ? base : labels === 'shuffled' ? rng.shuffle(base) : rng.shuffle('ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')).slice(0, it.options.length);
    return { ...it, labels: ls, prompt: mcqPrompt(it.question, it.options, ls) };
  });
  return McqSetSchema.parse({ kind: 'mcq', seed: set.seed, labelMode: labels, items });
}

/** One multiple-choice prompt in tokens, as the correct-letter scorer (interp/scores/correct_letter.ts) reads it. */
export interface LetterPrompt {
  tokens: number[];
  /** The token id of each option's label, in option order. */
  labelTokens: number[];
  /** Where each option's label token sits in `tokens`. */
  labelPositions: number[];
  /** The index of the correct option. */
  correct: number;
}

/**
 * Tokens of an item with the position of each label, encoding the prompt piece by piece (so positions are
 * exact). Returns undefined when a label (with its leading space) is not one token.
 */
export function mcqTokens(item: McqItem, tokenizer: TextTokenizer, prefix: number[] = []): LetterPrompt | undefined {
  const tokens = [...prefix, ...tokenizer.encode(`Question: ${item.question}\nOptions:`)];
  const labelTokens: number[] = [];
  const labelPositions: number[] = [];
  for (let i = 0; i < item.options.length; i++) {
    const lab = tokenizer.encode(` ${item.labels[i]}`);
    if (lab.length !== 1) return undefined;
    labelTokens.push(lab[0]);
    labelPositions.push(tokens.length);
    tokens.push(lab[0], ...tokenizer.encode(`) ${item.options[i]}`));
  }
  tokens.push(...tokenizer.encode('\nAnswer:'));
  return { tokens, labelTokens, labelPositions, correct: item.correct };
}
