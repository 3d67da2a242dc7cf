/**
 * Indirect object identification (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect
 * Object Identification in GPT-2 small"). "When Mary and John went to the store, John gave a drink to" → Mary:
 * the indirect object (IO) is the name that is not repeated; the subject (S) appears twice (S1, S2). Their data
 * set fills 15 templates in two orders — ABBA (IO first: "Mary and John …, John …") and BABA (S first: "John and
 * Mary …, John …") — with single-token names, places and objects; GPT-2 small gets a logit difference IO − S of
 * 3.56 on average.
 *
 * The corrupted prompt is their "ABC" distribution (`corruption: 'abc'`, the default): IO, S1 and S2 are all
 * replaced by three other names, X, Y, Z ("ABB → XYZ, BAB → XYZ"), so the prompt keeps its template, place and
 * object but carries no information about which name is repeated. Here X, Y and Z are three distinct names,
 * none of them in the clean prompt (their code draws them one replacement at a time and can, rarely, repeat a
 * name). `corruption: 's2'` is what headlens did before: only S2 replaced by a third name C (the clean prompt's
 * IO and S1 kept); it is kept for comparison, and the set records which one it is.
 *
 * Word lists (`lists`): 'wang2022' (the default) is their 15 templates, 99 names, 8 places and 8 objects
 * (ioi_wang2022.ts); 'headlens' is headlens' own 8 templates of the same shape and its 40 names (word_lists.ts),
 * which toy-lm was trained on (its word-level vocabulary holds 21 of the paper's names and few of the templates'
 * words). With a tokenizer, names that are not one token (with their leading space) are dropped, counted in
 * `droppedNames` and said in `warnings`; never silently.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import { FIRST_NAMES, OBJECTS, PLACES } from './word_lists.js';
import { WANG2022_NAMES, WANG2022_OBJECTS, WANG2022_PLACES, WANG2022_TEMPLATES } from './ioi_wang2022.js';

/** headlens' own templates. [A] and [B] are the first and second names as introduced; [S] is the repeated subject; ends before the IO. */
export const IOI_TEMPLATES = [
  'When [A] and [B] went to the [PLACE], [S] gave a [OBJECT] to',
  'After [A] and [B] arrived at the [PLACE], [S] handed a [OBJECT] to',
  'Then, [A] and [B] were working at the [PLACE]. [S] passed a [OBJECT] to',
  'While [A] and [B] were waiting at the [PLACE], [S] offered a [OBJECT] to',
  'Yesterday [A] and [B] met at the [PLACE], and [S] showed a [OBJECT] to',
  'Once [A] and [B] had left the [PLACE], [S] sent a [OBJECT] to',
  'Later, [A] and [B] had lunch near the [PLACE]. [S] threw a [OBJECT] to',
  'Since [A] and [B] both liked the [PLACE], [S] brought a [OBJECT] to',
] as const;

export type IoiListsName = 'wang2022' | 'headlens';
export interface IoiLists {
  templates: readonly string[];
  names: readonly string[];
  places: readonly string[];
  objects: readonly string[];
}
/** The two sets of word lists: Wang et al.'s (their code's lists) and headlens' own. */
export const IOI_LISTS: Record<IoiListsName, IoiLists> = {
  wang2022: { templates: WANG2022_TEMPLATES, names: WANG2022_NAMES, places: WANG2022_PLACES, objects: WANG2022_OBJECTS },
  headlens: { templates: IOI_TEMPLATES, names: FIRST_NAMES, places: PLACES, objects: OBJECTS },
};

export type IoiCorruption = 'abc' | 's2';

export const IoiPromptSchema = z
  .object({
    template: z.number().int().nonnegative(),
    order: z.enum(['ABBA', 'BABA']),
    io: z.string().min(1),
    s: z.string().min(1),
    place: z.string(),
    object: z.string(),
    clean: z.string(),
    corrupted: z.string(),
    /** The names at IO, S1 and S2 in the corrupted prompt ('abc': X, Y, Z; 's2': IO, S and the third name C). */
    corruptedNames: z.object({ io: z.string().min(1), s1: z.string().min(1), s2: z.string().min(1) }).strict(),
  })
  .strict()
  .refine((p) => p.io !== p.s, { message: 'IO and S must be different names' })
  .refine((p) => p.corruptedNames.s2 !== p.s && p.corruptedNames.s2 !== p.corruptedNames.io && p.corruptedNames.s2 !== p.corruptedNames.s1, {
    message: 'the corrupted S2 must be a name that is neither S nor the corrupted IO or S1',
  });
export type IoiPrompt = z.infer<typeof IoiPromptSchema>;

export const IoiSetSchema = z
  .object({
    kind: z.literal('ioi'),
    seed: z.number().int(),
    lists: z.enum(['wang2022', 'headlens']),
    /** 'lists': the names are the lists' own; 'given': the caller's (IoiOptions.names). */
    namesFrom: z.enum(['lists', 'given']),
    corruption: z.enum(['abc', 's2']),
    prompts: z.array(IoiPromptSchema).min(1),
    /** Names left out because the tokenizer splits them (name → its token count). */
    droppedNames: z.record(z.string(), z.number().int()),
    /** What was left out, in words (empty when nothing was). */
    warnings: z.array(z.string()),
  })
  .strict();
export type IoiSet = z.infer<typeof IoiSetSchema>;

/**
 * The one token the tokenizer encodes `prefix + word` as, if it is one token that decodes back to the word
 * (a word-level vocabulary encodes a word it does not know as one unknown token: that is not the word).
 */
export function singleToken(word: string, tokenizer: TextTokenizer, prefix = ' '): number | undefined {
  const ids = tokenizer.encode(prefix + word);
  return ids.length === 1 && tokenizer.decode(ids).trim() === word ? ids[0] : undefined;
}

/**
 * Splits words into those the tokenizer encodes as one token of their own (with `prefix`, default a space; see
 * singleToken) and the rest, with their token counts (1: the one token is an unknown-word token).
 */
export function singleTokenWords(words: readonly string[], tokenizer: TextTokenizer, prefix = ' '): { ok: string[]; dropped: Record<string, number> } {
  const ok: string[] = [];
  const dropped: Record<string, number> = {};
  for (const w of words) {
    if (singleToken(w, tokenizer, prefix) !== undefined) ok.push(w);
    else dropped[w] = tokenizer.encode(prefix + w).length;
  }
  return { ok, dropped };
}

/**
 * The words of a list's templates, places and objects that the tokenizer cannot spell: encoding and decoding
 * them does not give them back (a word-level vocabulary maps them to an unknown token).
 */
export function unspelledWords(lists: IoiLists, tokenizer: TextTokenizer): string[] {
  const text = [...lists.templates.map((t) => t.replace(/\[(A|B|S|PLACE|OBJECT)\]/g, ' ')), ...lists.places, ...lists.objects].join(' ');
  const words = [...new Set(text.match(/[A-Za-z]+/g) ?? [])];
  return words.filter((w) => tokenizer.decode(tokenizer.encode(` ${w}`)).trim() !== w);
}

export interface IoiOptions {
  n: number;
  seed?: number;
  /** Which orders to draw (default both, alternating ABBA, BABA). */
  orders?: ('ABBA' | 'BABA')[];
  /** Word lists: 'wang2022' (default, the paper's) or 'headlens' (toy-lm's). */
  lists?: IoiListsName;
  /** Names to draw from instead of the lists' own. */
  names?: readonly string[];
  /** 'abc' (default): IO, S1 and S2 replaced by three other names, as Wang et al.; 's2': S2 alone replaced. */
  corruption?: IoiCorruption;
  /** Drop names that are not single tokens for this tokenizer (counted in droppedNames and warnings). */
  tokenizer?: TextTokenizer;
}

function fill(t: string, a: string, b: string, s: string, place: string, object: string): string {
  return t.replace('[A]', a).replace('[B]', b).replace('[S]', s).replaceAll('[PLACE]', place).replaceAll('[OBJECT]', object);
}

/** Seeded IOI prompts with matched corrupted prompts (ABC by default). */
export function ioiPrompts(opts: IoiOptions): IoiSet {
  const seed = opts.seed ?? 0;
  const rng = new Random(seed);
  const listsName = opts.lists ?? 'wang2022';
  const lists = IOI_LISTS[listsName];
  if (!lists) throw new HeadlensError(`ioi: no word lists '${listsName}'`, "use lists: 'wang2022' or 'headlens'");
  const corruption = opts.corruption ?? 'abc';
  if (corruption !== 'abc' && corruption !== 's2') throw new HeadlensError(`ioi: no corruption '${corruption}'`, "use corruption: 'abc' (Wang et al.) or 's2'");
  const given = [...(opts.names ?? lists.names)];
  let names = given;
  let droppedNames: Record<string, number> = {};
  if (opts.tokenizer) ({ ok: names, dropped: droppedNames } = singleTokenWords(names, opts.tokenizer));
  const nDropped = Object.keys(droppedNames).length;
  const warnings = nDropped
    ? [`${nDropped} of ${given.length} names are not single tokens for this tokenizer and were left out (${Object.keys(droppedNames).slice(0, 5).join(', ')}${nDropped > 5 ? ', …' : ''})`]
    : [];
  // the corrupted prompt takes names from the same shuffle as IO and S: C for 's2', X, Y and Z for 'abc'
  const needed = corruption === 'abc' ? 5 : 3;
  if (names.length < needed) {
    throw new HeadlensError(
      `ioi: ${names.length} usable names, and corruption '${corruption}' needs ${needed} (IO, S and ${corruption === 'abc' ? 'three other names' : 'a third name'})${nDropped ? `; ${nDropped} were dropped as not single tokens for this tokenizer` : ''}`,
      "pass names the tokenizer keeps whole (names: […]), lists: 'headlens' for a small word-level vocabulary, or a tokenizer with a larger vocabulary",
    );
  }
  const orders = opts.orders ?? ['ABBA', 'BABA'];
  const prompts = Array.from({ length: opts.n }, (_, i) => {
    // the draws in this order (template, names, place, object) keep toy-lm's training stories as they were
    const template = rng.int(0, lists.templates.length);
    const shuffled = rng.shuffle(names);
    const [io, s] = shuffled;
    const place = rng.pick(lists.places);
    const object = rng.pick(lists.objects);
    const order = orders[i % orders.length];
    const t = lists.templates[template];
    const intro = (x: string, y: string) => (order === 'ABBA' ? [x, y] : [y, x]); // (IO-slot name, S1-slot name) as introduced
    const [a, b] = intro(io, s);
    const corruptedNames = corruption === 'abc' ? { io: shuffled[2], s1: shuffled[3], s2: shuffled[4] } : { io, s1: s, s2: shuffled[2] };
    const [ca, cb] = intro(corruptedNames.io, corruptedNames.s1);
    return {
      template, order, io, s, place, object,
      clean: fill(t, a, b, s, place, object),
      corrupted: fill(t, ca, cb, corruptedNames.s2, place, object),
      corruptedNames,
    };
  });
  return IoiSetSchema.parse({ kind: 'ioi', seed, lists: listsName, namesFrom: opts.names ? 'given' : 'lists', corruption, prompts, droppedNames, warnings });
}

/** One IOI prompt in tokens: clean and corrupted (same length), the IO and S tokens and where they sit. */
export interface IoiTokens {
  clean: number[];
  corrupted: number[];
  io: number;
  s: number;
  ioPos: number;
  s1Pos: number;
  s2Pos: number;
}

/** Encodes a text IOI prompt; undefined if a name is not one token of its own or the pair tokenizes to different lengths. */
export function ioiTokens(p: IoiPrompt, tokenizer: TextTokenizer, prefix: number[] = []): IoiTokens | undefined {
  const [io, s] = [singleToken(p.io, tokenizer), singleToken(p.s, tokenizer)];
  if (io === undefined || s === undefined) return undefined;
  const clean = [...prefix, ...tokenizer.encode(p.clean)];
  const corrupted = [...prefix, ...tokenizer.encode(p.corrupted)];
  const sPos = clean.flatMap((t, i) => (t === s ? [i] : []));
  const ioPos = clean.indexOf(io);
  if (clean.length !== corrupted.length || sPos.length !== 2 || ioPos < 0) return undefined;
  return { clean, corrupted, io, s, ioPos, s1Pos: sPos[0], s2Pos: sPos[1] };
}
