/**
 * Indirect object identification (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect
 * Object Identification in GPT-2 small"). "When Mary and John went to the store, John gave a drink to" → Mary:
 * the indirect object (IO) is the name that is not repeated; the subject (S) appears twice. Their data set
 * uses 15 templates in two orders — ABBA (IO first: "Mary and John …, John …") and BABA (S first: "John and
 * Mary …, John …") — filled with single-token names, places and objects; GPT-2 small gets a logit
 * difference IO − S of 3.56 on average. The corrupted prompt (their "ABC" distribution) replaces the second
 * subject S2 by a third name, which removes the information the circuit uses.
 * The templates below are written for headlens in the same shape (two names introduced, a place, one of them
 * repeated as the subject of giving, the prompt ending before the IO); the word lists are in word_lists.ts.
 * With a tokenizer, names that are not one token (with their leading space) are dropped and reported.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import { FIRST_NAMES, OBJECTS, PLACES } from './word_lists.js';

/** [A] and [B] are the first and second names as introduced; [C] is the repeated subject; ends before the IO. */
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

export const IoiPromptSchema = z
  .object({
    template: z.number().int().nonnegative(),
    order: z.enum(['ABBA', 'BABA']),
    io: z.string().min(1),
    s: z.string().min(1),
    /** The third name that replaces S2 in the corrupted prompt. */
    c: z.string().min(1),
    place: z.string(),
    object: z.string(),
    clean: z.string(),
    corrupted: z.string(),
  })
  .strict()
  .refine((p) => p.io !== p.s && p.c !== p.io && p.c !== p.s, { message: 'IO, S and C must be three different names' });
export type IoiPrompt = z.infer<typeof IoiPromptSchema>;

export const IoiSetSchema = z
  .object({
    kind: z.literal('ioi'),
    seed: z.number().int(),
    prompts: z.array(IoiPromptSchema).min(1),
    /** Names left out because the tokenizer splits them (name → its token count). */
    droppedNames: z.record(z.string(), z.number().int()),
  })
  .strict();
export type IoiSet = z.infer<typeof IoiSetSchema>;

/** Splits words into those the tokenizer encodes as one token (with `prefix`, default a space) and the rest. */
export function singleTokenWords(words: readonly string[], tokenizer: TextTokenizer, prefix = ' '): { ok: string[]; dropped: Record<string, number> } {
  const ok: string[] = [];
  const dropped: Record<string, number> = {};
  for (const w of words) {
    const n = tokenizer.encode(prefix + w).length;
    if (n === 1) ok.push(w);
    else dropped[w] = n;
  }
  return { ok, dropped };
}

export interface IoiOptions {
  n: number;
  seed?: number;
  /** Which orders to draw (default both, alternating ABBA, BABA). */
  orders?: ('ABBA' | 'BABA')[];
  names?: readonly string[];
  /** Drop names that are not single tokens for this tokenizer. */
  tokenizer?: TextTokenizer;
}

function fill(t: string, a: string, b: string, s: string, place: string, object: string): string {
  return t.replace('[A]', a).replace('[B]', b).replace('[S]', s).replace('[PLACE]', place).replace('[OBJECT]', object);
}

/** Seeded IOI prompts with matched corrupted (ABC) prompts. */
export function ioiPrompts(opts: IoiOptions): IoiSet {
  const seed = opts.seed ?? 0;
  const rng = new Random(seed);
  let names = [...(opts.names ?? FIRST_NAMES)];
  let droppedNames: Record<string, number> = {};
  if (opts.tokenizer) ({ ok: names, dropped: droppedNames } = singleTokenWords(names, opts.tokenizer));
  if (names.length < 3) {
    throw new HeadlensError(`ioi: only ${names.length} names are single tokens for this tokenizer (${Object.keys(droppedNames).length} dropped)`, 'pass names the tokenizer keeps whole, or a tokenizer with a word-level vocabulary');
  }
  const orders = opts.orders ?? ['ABBA', 'BABA'];
  const prompts = Array.from({ length: opts.n }, (_, i) => {
    const template = rng.int(0, IOI_TEMPLATES.length);
    const [io, s, c] = rng.shuffle(names).slice(0, 3);
    const place = rng.pick(PLACES);
    const object = rng.pick(OBJECTS);
    const order = orders[i % orders.length];
    const [a, b] = order === 'ABBA' ? [io, s] : [s, io];
    return {
      template, order, io, s, c, place, object,
      clean: fill(IOI_TEMPLATES[template], a, b, s, place, object),
      corrupted: fill(IOI_TEMPLATES[template], a, b, c, place, object),
    };
  });
  return IoiSetSchema.parse({ kind: 'ioi', seed, prompts, droppedNames });
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

/** Encodes a text IOI prompt; undefined if a name is not one token or the pair tokenizes to different lengths. */
export function ioiTokens(p: IoiPrompt, tokenizer: TextTokenizer, prefix: number[] = []): IoiTokens | undefined {
  const one = (w: string) => {
    const ids = tokenizer.encode(` ${w}`);
    return ids.length === 1 ? ids[0] : undefined;
  };
  const [io, s] = [one(p.io), one(p.s)];
  if (io === undefined || s === undefined) return undefined;
  const clean = [...prefix, ...tokenizer.encode(p.clean)];
  const corrupted = [...prefix, ...tokenizer.encode(p.corrupted)];
  const sPos = clean.flatMap((t, i) => (t === s ? [i] : []));
  const ioPos = clean.indexOf(io);
  if (clean.length !== corrupted.length || sPos.length !== 2 || ioPos < 0) return undefined;
  return { clean, corrupted, io, s, ioPos, s1Pos: sPos[0], s2Pos: sPos[1] };
}
