/**
 * The training mixture of toy-lm: rows of n_ctx tokens, each a run of documents separated by <|endoftext|>,
 * drawn from the generators of the head-score data sets so that every scan task has something to find:
 * - haystack documents (filler sentences) with one needle and its question and answer (retrieval heads);
 * - IOI stories ending in the indirect object (name movers, S-inhibition, duplicate-token heads);
 * - multiple-choice questions with ordered, shuffled or random letter labels, ending in the letter
 *   (correct-letter heads);
 * - year-dependent facts with numeric years and spelled-out aliases, and time-invariant controls in the
 *   same frame (temporal heads);
 * - repeated random token spans (induction heads), and plain sentences about people.
 * The texts are exactly those the scan tasks build (same templates, same spacing), so a trained model is
 * scored in the distribution it learned. What is held out: the scan's own needle (needleVariant never draws
 * it) and IOI_HELD_OUT names, which appear in training only in plain sentences, never in an IOI story.
 */
import { ioiPrompts } from '../datasets/ioi.js';
import { mcqItems } from '../datasets/mcq.js';
import { fillerSentence, needleVariant } from '../datasets/needle.js';
import { CONTROL_FACTS, TEMPORAL_FACTS, temporalPrompt } from '../datasets/temporal.js';
import { CATEGORIES, FIRST_NAMES, PLACES } from '../datasets/word_lists.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import type { Batch, DataSource } from './trainer.js';

/** Names never used in a training IOI story (the acceptance test measures the logit difference on them). */
export const IOI_HELD_OUT = ['Grace', 'Kevin', 'Amy', 'Brian', 'Julia', 'Eric', 'Claire', 'Henry'] as const;
export const IOI_TRAIN_NAMES = FIRST_NAMES.filter((n) => !(IOI_HELD_OUT as readonly string[]).includes(n));

/** Years the controls are drawn with (the facts' own years lie inside). */
export const CONTROL_YEARS = Array.from({ length: 36 }, (_, i) => 1990 + i);

const PEOPLE_VERBS = ['visited', 'liked', 'cleaned', 'painted', 'left', 'found', 'watched', 'opened'];

const seedFrom = (rng: Random) => rng.int(0, 2 ** 31);

export type DocKind = 'needle' | 'ioi' | 'mcq' | 'temporal' | 'repeat' | 'people';

/** One short document's text (not the needle, whose length is set in tokens). */
export function shortDocument(kind: Exclude<DocKind, 'needle' | 'repeat'>, rng: Random): string {
  switch (kind) {
    case 'ioi': {
      const p = ioiPrompts({ n: 1, seed: seedFrom(rng), names: IOI_TRAIN_NAMES, orders: [rng.next() < 0.5 ? 'ABBA' : 'BABA'] }).prompts[0];
      return `${p.clean} ${p.io}.`;
    }
    case 'mcq': {
      const r = rng.next();
      const labels = r < 0.5 ? 'ordered' : r < 0.75 ? 'shuffled' : 'random';
      const items = mcqItems({ n: 4, seed: seedFrom(rng), labels }).items;
      const it = items[rng.int(0, items.length)];
      return `${it.prompt} ${it.labels[it.correct]}`;
    }
    case 'temporal': {
      const alias = rng.next() < 0.5;
      if (rng.next() < 0.3) {
        const c = rng.pick(CONTROL_FACTS);
        return `${temporalPrompt(c.frame, rng.pick(CONTROL_YEARS), alias)} ${c.answer}.`;
      }
      const f = rng.pick(TEMPORAL_FACTS);
      const year = rng.pick(Object.keys(f.answers).map(Number));
      return `${temporalPrompt(f.frame, year, alias)} ${f.answers[year]}.`;
    }
    case 'people':
      return `${rng.pick(FIRST_NAMES)} ${rng.pick(PEOPLE_VERBS)} the ${rng.pick(PLACES)}.`;
  }
}

/** Every text the corpus can produce a word of, for building the vocabulary. */
export function vocabularyTexts(): string[] {
  const rng = new Random(12345);
  const texts: string[] = [];
  for (let i = 0; i < 4000; i++) for (const k of ['ioi', 'mcq', 'temporal', 'people'] as const) texts.push(shortDocument(k, rng));
  for (let i = 0; i < 4000; i++) {
    const v = needleVariant(rng);
    texts.push(v.needle, v.question, v.answer, fillerSentence(rng));
  }
  // everything a generator may draw from, even if the sample above missed it
  texts.push(FIRST_NAMES.join(' '), PLACES.join(' '), Object.values(CATEGORIES).map((c) => `${c.question} ${c.members.join(' ')}`).join(' '), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('').join(' '));
  for (const f of TEMPORAL_FACTS) for (const [y, a] of Object.entries(f.answers)) texts.push(temporalPrompt(f.frame, Number(y), false), temporalPrompt(f.frame, Number(y), true), a);
  for (const c of CONTROL_FACTS) for (const y of CONTROL_YEARS) texts.push(temporalPrompt(c.frame, y, false), temporalPrompt(c.frame, y, true), c.answer);
  return texts;
}

export interface ToyLmDataOptions {
  tokenizer: TextTokenizer;
  nCtx: number;
  bos: number;
  /** Token ids the repeated spans are drawn from (default: every id above bos and unk). */
  vocabSize: number;
  evalSeed: number;
  evalBatches?: number;
  evalSize?: number;
}

/** Rows of exactly nCtx tokens: [BOS] doc [BOS] doc …, one needle document per row at a random place. */
export function toyLmData(opts: ToyLmDataOptions): DataSource {
  const tok = opts.tokenizer;
  const cache = new Map<string, number[]>();
  const enc = (s: string): number[] => {
    let ids = cache.get(s);
    if (!ids) {
      ids = tok.encode(s);
      if (cache.size < 200_000) cache.set(s, ids);
    }
    return ids;
  };
  const needleDoc = (rng: Random, room: number): number[] => {
    const v = needleVariant(rng);
    const needle = enc(v.needle);
    const tail = [...enc(v.question), ...enc(v.answer), ...enc('.')];
    const hayRoom = Math.max(0, room - needle.length - tail.length);
    const sentences: number[][] = [];
    for (let n = 0; n < hayRoom; ) {
      const s = enc(fillerSentence(rng));
      sentences.push(s);
      n += s.length;
    }
    const at = rng.int(0, sentences.length + 1); // at a sentence boundary, as the scan's grid places it
    return [...sentences.slice(0, at).flat(), ...needle, ...sentences.slice(at).flat(), ...tail];
  };
  const shortDoc = (rng: Random): number[] => {
    const r = rng.next();
    if (r < 0.1) {
      const span = Array.from({ length: rng.int(4, 25) }, () => rng.int(2, opts.vocabSize));
      return [...span, ...span];
    }
    const kind = r < 0.38 ? 'ioi' : r < 0.62 ? 'mcq' : r < 0.9 ? 'temporal' : 'people';
    return enc(shortDocument(kind, rng));
  };
  const row = (rng: Random): number[] => {
    const out: number[] = [opts.bos];
    // the needle document's length varies from a few sentences to nearly the whole row, and it comes first
    // in half the rows (so short documents are also seen at the start of the context, as the scans place them)
    // (skewed to short ones, which cost less attention: the copying they teach is the same at any distance)
    const needleLen = 32 + Math.floor((opts.nCtx - 40) * rng.next() ** 2);
    let needleAt = rng.next() < 0.5 ? 0 : rng.int(1, 8);
    let placed = false;
    while (out.length < opts.nCtx) {
      if (!placed && needleAt-- <= 0) {
        out.push(...needleDoc(rng, Math.min(needleLen, opts.nCtx - out.length)), opts.bos);
        placed = true;
      } else out.push(...shortDoc(rng), opts.bos);
    }
    return out.slice(0, opts.nCtx);
  };
  const make = (rng: Random, n: number): Batch => ({ tokens: Array.from({ length: n }, () => row(rng)) });
  const evalRng = new Random(opts.evalSeed);
  const evals = Array.from({ length: opts.evalBatches ?? 4 }, () => make(evalRng, opts.evalSize ?? 16));
  return { batch: make, evalBatches: () => evals };
}
