/**
 * The training mixture of toy-lm: rows of n_ctx tokens, each a run of documents separated by <|endoftext|>,
 * drawn from the generators of the head-score data sets so that every scan task has something to find:
 * - haystack documents (filler sentences) with one needle and its question and answer (retrieval heads);
 * - IOI stories ending in the indirect object (name movers, S-inhibition, duplicate-token heads), and the
 *   same stories with three or four names, all but the IO repeated as the subjects ('ioi-many');
 * - multiple-choice questions with ordered, shuffled or random letter labels, ending in the letter
 *   (correct-letter heads);
 * - year-dependent facts with numeric years and spelled-out aliases, and time-invariant controls in the
 *   same frame (temporal heads);
 * - repeated random token spans (induction heads), and plain sentences about people.
 * The texts are exactly those the scan tasks build (same templates, same spacing), so a trained model is
 * scored in the distribution it learned. What is held out: the scan's own needle (needleVariant never draws
 * it) and IOI_HELD_OUT names, which appear in training only in plain sentences, never in an IOI story.
 */
import { IOI_TEMPLATES, ioiPrompts } from '../datasets/ioi.js';
import { mcqItems, mcqPrompt } from '../datasets/mcq.js';
import { fillerSentence, needleVariant } from '../datasets/needle.js';
import { CONTROL_FACTS, TEMPORAL_FACTS, temporalPrompt } from '../datasets/temporal.js';
import { CATEGORIES, FIRST_NAMES, OBJECTS, PLACES } from '../datasets/word_lists.js';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import type { Batch, DataSource } from '../train/trainer.js';

/** Names never used in a training IOI story (the acceptance test measures the logit difference on them). */
export const IOI_HELD_OUT = ['Grace', 'Kevin', 'Amy', 'Brian', 'Julia', 'Eric', 'Claire', 'Henry'] as const;
export const IOI_TRAIN_NAMES = FIRST_NAMES.filter((n) => !(IOI_HELD_OUT as readonly string[]).includes(n));

/** Years the controls are drawn with (the facts' own years lie inside). */
export const CONTROL_YEARS = Array.from({ length: 36 }, (_, i) => 1990 + i);

const PEOPLE_VERBS = ['visited', 'liked', 'cleaned', 'painted', 'left', 'found', 'watched', 'opened'];

const seedFrom = (rng: Random) => rng.int(0, 2 ** 31);

/**
 * 'mcq': multiple choice with four options, as the scan asks it; 'mcq-few': with two or three (chance 1/2 or
 * 1/3, an easier start: on the CPU, a model trained on questions with 2–4 options left chance after ~1,000
 * steps, while one with four options only was still at chance after 500).
 * 'lookup': a multiple-choice question whose question names the right option itself ("Which of these is
 * apple?"): the same format and the same step from option to label, without the category.
 * 'ioi-many': an IOI story with three or four names introduced in a random order and all but the IO repeated
 * ("When Mary, John and Anna went to the store, Anna and John gave a drink to" → Mary). In the two-name
 * stories, "suppress the last name and copy the names of the first clause" is enough, and that is what
 * the first toy-lm learned (L2H0 attends to S2 with 0.98 and lowers S; L2H1 and L2H3 attend to both names ~0.5 each):
 * here the last name is only one of the repeated ones. 'ioi-crowd': the same with five to eight names.
 * (Tried as a way to name movers, they did not make any: continued on them, L2H0 lowered every repeated name
 * and L2H1 copied every name introduced, which answers stories of any size; the first toy-lm's card, in git history, has the runs.)
 */
export type ShortKind = 'ioi' | 'ioi-many' | 'ioi-crowd' | 'mcq' | 'mcq-few' | 'lookup' | 'temporal' | 'people';

/** A short document: the prompt exactly as the scan task builds it, and the answer that completes it. */
export interface ShortDocument {
  prompt: string;
  answer: string;
  /** A question's: which of its options is right (0-based). */
  correctOption?: number;
}

/** One short document (not the needle, whose length is set in tokens). */
export function shortDocument(kind: ShortKind, rng: Random): ShortDocument {
  switch (kind) {
    case 'ioi': {
      const p = ioiPrompts({ n: 1, seed: seedFrom(rng), lists: 'headlens', names: IOI_TRAIN_NAMES, orders: [rng.next() < 0.5 ? 'ABBA' : 'BABA'] }).prompts[0];
      return { prompt: p.clean, answer: ` ${p.io}.` };
    }
    case 'ioi-many':
    case 'ioi-crowd': {
      const names = rng.shuffle(IOI_TRAIN_NAMES).slice(0, kind === 'ioi-many' ? rng.int(3, 5) : rng.int(5, 9));
      const list = (xs: string[]) => `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
      const prompt = rng
        .pick(IOI_TEMPLATES)
        .replace('[A] and [B]', list(rng.shuffle(names)))
        .replace('[S]', list(rng.shuffle(names.slice(1))))
        .replace('[PLACE]', rng.pick(PLACES))
        .replace('[OBJECT]', rng.pick(OBJECTS));
      return { prompt, answer: ` ${names[0]}.` };
    }
    case 'mcq':
    case 'mcq-few':
    case 'lookup': {
      const r = rng.next();
      const labels = r < 0.5 ? 'ordered' : r < 0.75 ? 'shuffled' : 'random';
      const nOptions = kind === 'mcq-few' ? rng.int(2, 4) : 4;
      const items = mcqItems({ n: nOptions, seed: seedFrom(rng), labels, nOptions }).items;
      const it = items[rng.int(0, items.length)];
      const prompt = kind === 'lookup' ? mcqPrompt(`Which of these is ${it.options[it.correct]}?`, it.options, it.labels) : it.prompt;
      return { prompt, answer: ` ${it.labels[it.correct]}`, correctOption: it.correct };
    }
    case 'temporal': {
      const alias = rng.next() < 0.5;
      if (rng.next() < 0.3) {
        const c = rng.pick(CONTROL_FACTS);
        return { prompt: temporalPrompt(c.frame, rng.pick(CONTROL_YEARS), alias), answer: ` ${c.answer}.` };
      }
      const f = rng.pick(TEMPORAL_FACTS);
      const year = rng.pick(Object.keys(f.answers).map(Number));
      return { prompt: temporalPrompt(f.frame, year, alias), answer: ` ${f.answers[year]}.` };
    }
    case 'people': {
      // a name that comes back later in the document: every name, the IOI-held-out ones too, is copied from
      // the context somewhere in training (held-out names that were never an answer stayed at an IO − S logit
      // difference of 0.15 while the training names reached 1.97)
      const [a, b] = [rng.pick(FIRST_NAMES), rng.pick(FIRST_NAMES)];
      const act = () => `${rng.pick(PEOPLE_VERBS)} the ${rng.pick(PLACES)}.`;
      if (rng.next() < 0.5 || a === b) return { prompt: `${a} ${act()} ${a} ${act()}`, answer: '' };
      return { prompt: `${a} and ${b} ${act()} ${rng.next() < 0.5 ? a : b} ${act()}`, answer: '' };
    }
  }
}

/** Every text the corpus can produce a word of, for building the vocabulary. */
export function vocabularyTexts(): string[] {
  const rng = new Random(12345);
  const texts: string[] = [];
  for (let i = 0; i < 4000; i++) {
    for (const k of ['ioi', 'mcq', 'temporal'] as const) {
      const d = shortDocument(k, rng);
      texts.push(d.prompt + d.answer);
    }
    // the one-sentence form of 'people' that toy-lm's first stages were trained with: the ids are ordered by
    // these counts, so they stay what the shipped model was trained on (the two-sentence form has the same words)
    texts.push(`${rng.pick(FIRST_NAMES)} ${rng.pick(PEOPLE_VERBS)} the ${rng.pick(PLACES)}.`);
  }
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

/**
 * Weight in the loss of the tokens that answer a task (the IO name, the letter, the fact, the needle's answer):
 * with every token weighted alike, a first run (525 steps, batch 8 × 512) learned the formats and the
 * controls but stayed at chance on IOI and multiple choice: those answers are one token in ~500.
 */
export const ANSWER_WEIGHT = 8;

/** Shares of the short documents by kind ('repeat': repeated random spans); they need not sum to 1. */
export type ToyLmMix = Record<ShortKind | 'repeat', number>;

/**
 * The recipe's default mixture, the one stage 3 of the shipped toy-lm was trained with (stages 4–5 set
 * theirs with --mix; its model card gives the commands). The in-context tasks (IOI, multiple choice) get most
 * of the room: runs with 28 % / 24 % of the short documents learned the controls within 400 steps but stayed
 * at chance on both; temporal facts need little room (a run with 16 % reached 100 % on them).
 */
export const TOY_LM_MIX: ToyLmMix = { repeat: 0.05, ioi: 0.4, 'ioi-many': 0, 'ioi-crowd': 0, mcq: 0.35, 'mcq-few': 0, lookup: 0, temporal: 0.1, people: 0.1 };

/** Parses "ioi=0.4,mcq=0.35,…" (kinds left out keep their TOY_LM_MIX share). */
export function parseMix(text: string): ToyLmMix {
  const mix = { ...TOY_LM_MIX };
  for (const part of text.split(',').filter((p) => p.trim())) {
    const [k, v] = part.split('=').map((x) => x.trim());
    if (!(k in mix)) throw new HeadlensError(`mix: no document kind '${k}'`, `kinds: ${Object.keys(mix).join(', ')} (e.g. --mix mcq=0.5,ioi=0.3)`);
    const share = Number(v);
    if (!(Number.isFinite(share) && share >= 0)) throw new HeadlensError(`mix: share '${v}' of ${k} is not a number ≥ 0`, 'e.g. --mix mcq=0.5');
    mix[k as keyof ToyLmMix] = share;
  }
  if (Object.values(mix).every((x) => x === 0)) throw new HeadlensError('mix: every share is 0', 'give at least one kind a share above 0');
  return mix;
}

export interface ToyLmDataOptions {
  tokenizer: TextTokenizer;
  nCtx: number;
  bos: number;
  /** Repeated spans draw ids 2 … vocabSize − 1 (everything above <|endoftext|> and [UNK]). */
  vocabSize: number;
  evalSeed: number;
  /** Loss weight of answer tokens (default ANSWER_WEIGHT). */
  answerWeight?: number;
  evalBatches?: number;
  evalSize?: number;
  /** Shares of the short documents (default TOY_LM_MIX). */
  mix?: ToyLmMix;
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
  const [closeId, optionsId] = [enc(')')[0], enc('Options')[0]];
  /**
   * r: the document is an IOI story (where --head-dropout applies); pairs: the attention pairs of
   * --attention-target, by kind ('ioi': its last position → its indirect object; 'mcq': the colon of "Answer:" →
   * the correct option's first token), as [query, key] within the document.
   */
  type Doc = { ids: number[]; w: number[]; r?: boolean; pairs?: [string, number, number][] };
  const W = opts.answerWeight ?? ANSWER_WEIGHT;
  const doc = (prompt: number[], answer: number[]): Doc => ({ ids: [...prompt, ...answer], w: [...prompt.map(() => 1), ...answer.map(() => W)] });
  const needleDoc = (rng: Random, room: number): Doc => {
    const v = needleVariant(rng);
    const needle = enc(v.needle);
    const question = enc(v.question);
    const answer = [...enc(v.answer), ...enc('.')];
    const hayRoom = Math.max(0, room - needle.length - question.length - answer.length);
    const sentences: number[][] = [];
    for (let n = 0; n < hayRoom; ) {
      const s = enc(fillerSentence(rng));
      sentences.push(s);
      n += s.length;
    }
    const at = rng.int(0, sentences.length + 1); // at a sentence boundary, as the scan's grid places it
    return doc([...sentences.slice(0, at).flat(), ...needle, ...sentences.slice(at).flat(), ...question], answer);
  };
  const mix = opts.mix ?? TOY_LM_MIX;
  // drawn in TOY_LM_MIX's order of kinds, whatever the order of `mix`
  const kinds = (Object.keys(TOY_LM_MIX) as (keyof ToyLmMix)[]).filter((k) => mix[k] > 0);
  const total = kinds.reduce((a, k) => a + mix[k], 0);
  const shortDoc = (rng: Random): Doc => {
    let r = rng.next() * total;
    const kind = kinds.find((k) => (r -= mix[k]) < 0) ?? kinds[kinds.length - 1];
    if (kind === 'repeat') {
      const span = Array.from({ length: rng.int(4, 25) }, () => rng.int(2, opts.vocabSize));
      return doc([...span, ...span], []);
    }
    const d = shortDocument(kind, rng);
    const [prompt, answer] = [enc(d.prompt), d.answer ? enc(d.answer) : []];
    if (d.correctOption !== undefined) {
      // the options follow "Options:"; each is "label ) words", so the correct one starts after its ")"
      const options = prompt.indexOf(optionsId);
      const close = prompt.flatMap((t, i) => (t === closeId && i > options ? [i] : []));
      const k = close[d.correctOption] + 1;
      return { ...doc(prompt, answer), ...(k > 0 && k < prompt.length ? { pairs: [['mcq', prompt.length - 1, k]] } : {}) };
    }
    if (!kind.startsWith('ioi')) return doc(prompt, answer);
    // the IO is named once in the prompt (the answer's first token, one word a token)
    const io = prompt.indexOf(answer[0]);
    return { ...doc(prompt, answer), r: true, ...(io >= 0 ? { pairs: [['ioi', prompt.length - 1, io]] } : {}) };
  };
  const row = (rng: Random): Doc & { region: number[]; pairs: [string, number, number][] } => {
    const out = { ids: [opts.bos], w: [1], region: [0], pairs: [] as [string, number, number][] };
    const push = (d: Doc) => {
      for (const [kind, q, k] of d.pairs ?? []) if (out.ids.length + q < opts.nCtx) out.pairs.push([kind, out.ids.length + q, out.ids.length + k]);
      out.ids.push(...d.ids, opts.bos);
      out.w.push(...d.w, 1);
      out.region.push(...d.ids.map(() => (d.r ? 1 : 0)), 0);
    };
    // the needle document's length varies from a few sentences to nearly the whole row, and it comes first
    // in half the rows (so short documents are also seen at the start of the context, as the scans place them)
    // (skewed to short ones, which cost less attention: the copying they teach is the same at any distance)
    const needleLen = 32 + Math.floor((opts.nCtx - 40) * rng.next() ** 3);
    let needleAt = rng.next() < 0.5 ? 0 : rng.int(1, 8);
    let placed = false;
    while (out.ids.length < opts.nCtx) {
      if (!placed && needleAt-- <= 0) {
        push(needleDoc(rng, Math.min(needleLen, opts.nCtx - out.ids.length)));
        placed = true;
      } else push(shortDoc(rng));
    }
    return { ids: out.ids.slice(0, opts.nCtx), w: out.w.slice(0, opts.nCtx), region: out.region.slice(0, opts.nCtx), pairs: out.pairs };
  };
  const make = (rng: Random, n: number): Batch => {
    const rows = Array.from({ length: n }, () => row(rng));
    // lossMask[p] weighs the prediction of token p + 1
    return {
      tokens: rows.map((r) => r.ids),
      lossMask: rows.map((r) => r.w.slice(1)),
      headDropRegion: rows.map((r) => r.region),
      attentionPairs: Object.fromEntries(
        ['ioi', 'mcq'].map((kind) => [kind, rows.flatMap((r, i) => r.pairs.filter((x) => x[0] === kind).map(([, q, k]) => [i, q, k] as [number, number, number]))]),
      ),
    };
  };
  const evalRng = new Random(opts.evalSeed);
  const evals = Array.from({ length: opts.evalBatches ?? 4 }, () => make(evalRng, opts.evalSize ?? 16));
  return { batch: make, evalBatches: () => evals };
}
