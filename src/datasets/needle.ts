/**
 * Needle in a haystack (Kamradt 2023; the retrieval-head setting of Wu et al. 2024): a long distracting text,
 * one sentence (the needle) inserted at a chosen depth, and a question only the needle answers. Wu et al. score
 * heads over a grid of context lengths up to the model's context and depths 0–100 % (their detection grid
 * spans 1K–50K tokens), placing the needle at a sentence boundary: the insertion point backs up to just after
 * the nearest earlier full stop.
 *
 * Two forms: `needleTextTrials` builds text prompts for a model with a tokenizer (haystack: your text, or
 * seeded filler sentences); `needleTokenTrials` builds token-only prompts for toy models (haystack and needle
 * drawn from disjoint token pools; the prompt ends with a cue, the needle's first tokens, which the model
 * should continue with the rest of the needle). Each part is tokenized on its own and the ids concatenated, so
 * the needle span is exact (their script finds it by a fuzzy search).
 *
 * Every trial also carries the answer's span inside the needle, [answerStart, answerEnd): the tokens a retrieval
 * head copies. Wu et al.'s needles.jsonl gives each needle a `real_needle`, the answer inside the sentence
 * ("take a walk in Chaoyang Park and have a cup of Espresso in the evening" in "The best thing to do in Beijing
 * is to …"), and their score counts copies from that span only. Text trials cut the needle at the answer (before,
 * answer, after, each tokenized on its own), so the span is exact; an answer that is not literally in the needle
 * is found as their find_needle_idx finds it: the first window of the answer's length whose distinct tokens cover
 * more than 90 % of the answer's. Token trials: the answer is the needle after its cue.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';

const int = z.number().int().nonnegative();

export const NeedleTrialSchema = z
  .object({
    tokens: z.array(int).min(2),
    needleStart: int,
    needleEnd: int,
    /** The answer's span inside the needle (Wu et al.'s real_needle), [answerStart, answerEnd). */
    answerStart: int,
    answerEnd: int,
    answer: z.array(int).min(1),
    answerText: z.string().optional(),
    contextLength: z.number().int().positive(),
    depth: z.number().min(0).max(100),
  })
  .strict()
  .refine((t) => t.needleStart < t.needleEnd && t.needleEnd <= t.tokens.length, { message: 'needle span must lie inside tokens' })
  .refine((t) => t.needleStart <= t.answerStart && t.answerStart < t.answerEnd && t.answerEnd <= t.needleEnd, { message: 'answer span must lie inside the needle' });
export type NeedleTrialItem = z.infer<typeof NeedleTrialSchema>;

export const NeedleSetSchema = z.object({ kind: z.literal('needle'), seed: z.number().int(), trials: z.array(NeedleTrialSchema).min(1) }).strict();
export type NeedleSet = z.infer<typeof NeedleSetSchema>;

/** Context lengths and depths as in Wu et al.'s grid: rounded linspace, lengths up to maxLength, depths 0–100 %. */
export function needleGrid(minLength: number, maxLength: number, nLengths: number, nDepths: number): { contextLengths: number[]; depths: number[] } {
  const lin = (a: number, b: number, n: number) => (n === 1 ? [Math.round(a)] : Array.from({ length: n }, (_, i) => Math.round(a + ((b - a) * i) / (n - 1))));
  return { contextLengths: lin(minLength, maxLength, nLengths), depths: lin(0, 100, nDepths) };
}

/** A needle of our own (Kamradt's and Wu et al.'s needles are sentences of the same kind). */
export const DEFAULT_NEEDLE = {
  needle: ' The secret ingredient in Grandma Rosa’s soup is a spoonful of smoked paprika.',
  question: '\nQuestion: What is the secret ingredient in Grandma Rosa’s soup?\nAnswer:',
  answer: ' a spoonful of smoked paprika',
};

const SUBJECTS = ['The river', 'An old map', 'The committee', 'A quiet street', 'The harvest', 'Our neighbour', 'The library', 'A long winter', 'The market', 'The engineer'];
const VERBS = ['changed', 'described', 'ignored', 'followed', 'shaped', 'remembered', 'surprised', 'measured', 'outlasted', 'explained'];
const OBJECTS = ['the town', 'every visitor', 'the last train', 'a small garden', 'the northern hills', 'the morning news', 'two careful students', 'the city walls', 'a borrowed boat', 'the evening light'];

/** One filler sentence (with its leading space). */
export function fillerSentence(rng: Random): string {
  return ` ${rng.pick(SUBJECTS)} ${rng.pick(VERBS)} ${rng.pick(OBJECTS)}.`;
}

/** Seeded filler text: plain sentences that say nothing a question could ask about. */
export function fillerText(sentences: number, seed: number): string {
  const rng = new Random(seed);
  return Array.from({ length: sentences }, () => fillerSentence(rng)).join('');
}

const OWNERS = ['Grandma', 'Uncle', 'Aunt', 'Chef', 'Doctor', 'Captain'];
const OWNER_NAMES = ['Rosa', 'Mary', 'John', 'Anna', 'Peter', 'Helen', 'Frank', 'Ruth', 'Simon', 'Clara', 'Otto', 'Nina'];
const MEASURES = ['spoonful', 'pinch', 'cup', 'handful', 'slice', 'drop'];
const FLAVOURS = ['smoked', 'sweet', 'dried', 'fresh', 'roasted', 'bitter', 'wild', 'salted', 'green', 'black', 'golden', 'crushed'];
const INGREDIENTS = ['paprika', 'honey', 'ginger', 'thyme', 'pepper', 'garlic', 'saffron', 'basil', 'cinnamon', 'lemon', 'mustard', 'vanilla', 'fennel', 'cocoa'];

/**
 * A needle of DEFAULT_NEEDLE's shape with its owner and answer drawn at random, for training a toy model to
 * retrieve: the answer must be copied from the context, since no pairing of owner and answer is fixed.
 * DEFAULT_NEEDLE's own pairing (Grandma Rosa, a spoonful of smoked paprika) is never drawn, so a model
 * trained on these sees the scan's needle for the first time when it is scored.
 */
export function needleVariant(rng: Random): { needle: string; question: string; answer: string } {
  for (;;) {
    const owner = `${rng.pick(OWNERS)} ${rng.pick(OWNER_NAMES)}`;
    const answer = ` a ${rng.pick(MEASURES)} of ${rng.pick(FLAVOURS)} ${rng.pick(INGREDIENTS)}`;
    if (owner === 'Grandma Rosa' && answer === DEFAULT_NEEDLE.answer) continue;
    return { needle: ` The secret ingredient in ${owner}’s soup is${answer}.`, question: `\nQuestion: What is the secret ingredient in ${owner}’s soup?\nAnswer:`, answer };
  }
}

export interface NeedleTextOptions {
  tokenizer: TextTokenizer;
  contextLengths: number[];
  depths: number[];
  needle?: string;
  question?: string;
  answer?: string;
  /** Haystack text (default: seeded filler). It is repeated if too short. */
  haystack?: string;
  /** Token ids put first (e.g. BOS); none by default. */
  prefix?: number[];
  seed?: number;
}

/** Text needle trials over a grid of context lengths (in tokens) and depths (%). */
export function needleTextTrials(opts: NeedleTextOptions): NeedleSet {
  const seed = opts.seed ?? 0;
  const tok = opts.tokenizer;
  // model.tokenizer is null for a model without tokenizer.json (the toy zoo): say so, not "cannot read 'encode' of null"
  if (!tok || typeof tok.encode !== 'function') {
    throw new HeadlensError('needleTextTrials: no tokenizer given (model.tokenizer is null for a model without tokenizer.json)', 'pass a model with a tokenizer.json, or use needleTokenTrials with token ids');
  }
  if (!Array.isArray(opts.contextLengths) || opts.contextLengths.length === 0 || !Array.isArray(opts.depths) || opts.depths.length === 0) {
    throw new HeadlensError('needleTextTrials: contextLengths and depths must be non-empty arrays', 'e.g. { contextLengths: [256], depths: [0, 50, 100] }');
  }
  const question = tok.encode(opts.question ?? DEFAULT_NEEDLE.question);
  const answerText = opts.answer ?? DEFAULT_NEEDLE.answer;
  const answer = tok.encode(answerText);
  const { needle, from, to } = needleWithAnswer(tok, opts.needle ?? DEFAULT_NEEDLE.needle, answerText, answer);
  const prefix = opts.prefix ?? [];
  const maxLen = Math.max(...opts.contextLengths);
  let hay = tok.encode(opts.haystack ?? fillerText(Math.ceil(maxLen / 4) + 8, seed));
  if (hay.length === 0) throw new HeadlensError('needle: the haystack is empty', 'pass some text as haystack');
  while (hay.length < maxLen) hay = hay.concat(hay);
  const stops = new Set([tok.encode('.'), tok.encode(' .')].filter((ids) => ids.length === 1).map((ids) => ids[0]));
  const trials = [];
  for (const contextLength of opts.contextLengths) {
    const room = contextLength - prefix.length - needle.length - question.length;
    if (room < 1) throw new HeadlensError(`needle: context length ${contextLength} leaves no room for a haystack`, `use lengths above ${prefix.length + needle.length + question.length}`);
    const context = hay.slice(0, room);
    for (const depth of opts.depths) {
      let at = depth >= 100 ? context.length : Math.floor((context.length * depth) / 100);
      while (at > 0 && depth < 100 && !stops.has(context[at - 1])) at--; // back up to a sentence end
      const tokens = [...prefix, ...context.slice(0, at), ...needle, ...context.slice(at), ...question];
      const needleStart = prefix.length + at;
      trials.push({ tokens, needleStart, needleEnd: needleStart + needle.length, answerStart: needleStart + from, answerEnd: needleStart + to, answer, answerText, contextLength, depth });
    }
  }
  return NeedleSetSchema.parse({ kind: 'needle', seed, trials });
}

/**
 * The needle's tokens and the answer's span in them, [from, to). Cut at the answer's text where the needle holds
 * it (the answer then keeps its own tokens); otherwise their find_needle_idx: the first window of the answer's
 * length whose distinct tokens cover more than 90 % of the answer's distinct tokens.
 */
export function needleWithAnswer(tok: TextTokenizer, needleText: string, answerText: string, answer: number[]): { needle: number[]; from: number; to: number } {
  const at = answerText === '' ? -1 : needleText.indexOf(answerText);
  if (at >= 0) {
    const before = tok.encode(needleText.slice(0, at));
    const after = tok.encode(needleText.slice(at + answerText.length));
    return { needle: [...before, ...answer, ...after], from: before.length, to: before.length + answer.length };
  }
  const needle = tok.encode(needleText);
  const want = new Set(answer);
  for (let i = 0; i + answer.length <= needle.length; i++) {
    const have = new Set(needle.slice(i, i + answer.length));
    if ([...want].filter((t) => have.has(t)).length / want.size > 0.9) return { needle, from: i, to: i + answer.length };
  }
  throw new HeadlensError(`needle: the answer ${JSON.stringify(answerText)} is not in the needle ${JSON.stringify(needleText)}`, 'give an answer that the needle contains (the retrieval score counts copies from the answer inside the needle)');
}

export interface NeedleTokenOptions {
  contextLengths: number[];
  depths: number[];
  /** Token pools; they must not overlap, so the needle is findable. */
  haystackPool: number[];
  needlePool: number[];
  needleLength: number;
  /** How many of the needle's first tokens end the prompt as the cue (default 1). */
  cueLength?: number;
  bos?: number | null;
  seed?: number;
}

/** Token-only needle trials for toy models: [bos] hay… needle hay… cue → answer = rest of the needle. */
export function needleTokenTrials(opts: NeedleTokenOptions): NeedleSet {
  const seed = opts.seed ?? 0;
  const rng = new Random(seed);
  const cue = opts.cueLength ?? 1;
  const overlap = opts.needlePool.filter((t) => opts.haystackPool.includes(t));
  if (overlap.length) throw new HeadlensError(`needle: pools overlap in ${overlap.slice(0, 5).join(', ')}`, 'draw needle and haystack from disjoint token pools');
  if (!(opts.needleLength > cue && opts.needleLength <= opts.needlePool.length)) {
    throw new HeadlensError(`needle: needleLength ${opts.needleLength} must exceed cueLength ${cue} and fit the needle pool (${opts.needlePool.length} distinct tokens)`);
  }
  const bos = opts.bos ?? null;
  const trials = [];
  for (const contextLength of opts.contextLengths) {
    for (const depth of opts.depths) {
      const needle = rng.shuffle(opts.needlePool).slice(0, opts.needleLength);
      const room = contextLength - (bos === null ? 0 : 1) - needle.length - cue;
      if (room < 0) throw new HeadlensError(`needle: context length ${contextLength} is too short for the needle and cue`);
      const hay = Array.from({ length: room }, () => rng.pick(opts.haystackPool));
      const at = Math.round((room * depth) / 100);
      const head = bos === null ? [] : [bos];
      const tokens = [...head, ...hay.slice(0, at), ...needle, ...hay.slice(at), ...needle.slice(0, cue)];
      const needleStart = head.length + at;
      trials.push({ tokens, needleStart, needleEnd: needleStart + needle.length, answerStart: needleStart + cue, answerEnd: needleStart + needle.length, answer: needle.slice(cue), contextLength, depth });
    }
  }
  return NeedleSetSchema.parse({ kind: 'needle', seed, trials });
}
