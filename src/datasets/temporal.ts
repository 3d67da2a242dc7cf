/**
 * Temporal facts ("Temporal Heads: Where Language Models Recall Time-specific Information", Park et al. 2025):
 * facts whose answer depends on the year ("In 2004, the President of the United States was" → George W. Bush),
 * each year written as a number ("In 2004") and as words ("In the year two thousand four"), and
 * time-invariant controls with the same frame ("In 2004, the capital of France was" → Paris). A pair patches the
 * year to another year with a different answer (controls: any other year), for activation patching.
 * The facts are public record, chosen away from transition years (an office changing hands in January of
 * a year makes that year ambiguous): US presidents, UK prime ministers, German chancellors, Summer Olympics
 * hosts, FIFA World Cup winners.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';

/** A time-dependent relation: a frame with {year}, and answers by year. */
export const TEMPORAL_FACTS: { relation: string; frame: string; answers: Record<number, string> }[] = [
  {
    relation: 'us-president',
    frame: '{year}, the President of the United States was',
    answers: { 1995: 'Bill Clinton', 1998: 'Bill Clinton', 2003: 'George W. Bush', 2006: 'George W. Bush', 2011: 'Barack Obama', 2014: 'Barack Obama', 2018: 'Donald Trump', 2022: 'Joe Biden' },
  },
  {
    relation: 'uk-prime-minister',
    frame: '{year}, the Prime Minister of the United Kingdom was',
    answers: { 1999: 'Tony Blair', 2004: 'Tony Blair', 2008: 'Gordon Brown', 2012: 'David Cameron', 2014: 'David Cameron', 2017: 'Theresa May', 2020: 'Boris Johnson' },
  },
  {
    relation: 'german-chancellor',
    frame: '{year}, the Chancellor of Germany was',
    answers: { 1995: 'Helmut Kohl', 2001: 'Gerhard Schröder', 2003: 'Gerhard Schröder', 2009: 'Angela Merkel', 2015: 'Angela Merkel', 2023: 'Olaf Scholz' },
  },
  {
    relation: 'olympics-host',
    frame: '{year}, the Summer Olympics were held in',
    answers: { 1996: 'Atlanta', 2000: 'Sydney', 2004: 'Athens', 2008: 'Beijing', 2012: 'London', 2016: 'Rio de Janeiro' },
  },
  {
    relation: 'world-cup-winner',
    frame: '{year}, the FIFA World Cup was won by',
    answers: { 1998: 'France', 2002: 'Brazil', 2006: 'Italy', 2010: 'Spain', 2014: 'Germany', 2018: 'France', 2022: 'Argentina' },
  },
];

/** Facts that do not change with the year, in the same frame. */
export const CONTROL_FACTS: { relation: string; frame: string; answer: string }[] = [
  { relation: 'capital-france', frame: '{year}, the capital of France was', answer: 'Paris' },
  { relation: 'capital-japan', frame: '{year}, the capital of Japan was', answer: 'Tokyo' },
  { relation: 'largest-ocean', frame: '{year}, the largest ocean on Earth was the', answer: 'Pacific' },
  { relation: 'days-in-week', frame: '{year}, the number of days in a week was', answer: 'seven' },
  { relation: 'gold-symbol', frame: '{year}, the chemical symbol of gold was', answer: 'Au' },
];

const ONES = ['', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

function below100(n: number): string {
  if (n < 20) return ONES[n];
  return TENS[Math.floor(n / 10)] + (n % 10 ? `-${ONES[n % 10]}` : '');
}

/** A year as people say it: 1998 "nineteen ninety-eight", 2004 "two thousand four", 2014 "twenty fourteen". */
export function yearInWords(year: number): string {
  if (!(Number.isInteger(year) && year >= 1100 && year <= 2099)) throw new HeadlensError(`yearInWords: ${year} is outside 1100–2099`);
  const [hi, lo] = [Math.floor(year / 100), year % 100];
  if (hi === 20 && lo < 10) return lo === 0 ? 'two thousand' : `two thousand ${ONES[lo]}`;
  return `${below100(hi)} ${lo === 0 ? 'hundred' : lo < 10 ? `oh ${ONES[lo]}` : below100(lo)}`;
}

export const TemporalItemSchema = z
  .object({
    kind: z.enum(['temporal', 'control', 'alias']),
    relation: z.string(),
    year: z.number().int(),
    corruptedYear: z.number().int(),
    clean: z.string(),
    corrupted: z.string(),
    answer: z.string(),
    corruptedAnswer: z.string(),
  })
  .strict()
  .refine((t) => t.year !== t.corruptedYear, { message: 'the patched year must differ' })
  .refine((t) => (t.kind === 'control') === (t.answer === t.corruptedAnswer), { message: 'time-dependent pairs need different answers, controls the same' });
export type TemporalItem = z.infer<typeof TemporalItemSchema>;

export const TemporalSetSchema = z.object({ kind: z.literal('temporal'), seed: z.number().int(), items: z.array(TemporalItemSchema).min(1) }).strict();
export type TemporalSet = z.infer<typeof TemporalSetSchema>;

/** A frame with its year filled in: "In 2004, …" or, as an alias, "In the year two thousand four, …". */
export function temporalPrompt(frame: string, year: number, alias: boolean): string {
  return frame.replace('{year}', alias ? `In the year ${yearInWords(year)}` : `In ${year}`);
}

/** Every time-dependent fact pair (numeric and alias) plus `controlsPerFact` controls, seeded order of years. */
export function temporalItems(opts: { seed?: number; controls?: number } = {}): TemporalSet {
  const seed = opts.seed ?? 0;
  const rng = new Random(seed);
  const items: TemporalItem[] = [];
  const allYears = new Set<number>();
  for (const f of TEMPORAL_FACTS) {
    const years = Object.keys(f.answers).map(Number);
    years.forEach((y) => allYears.add(y));
    for (const year of years) {
      const others = years.filter((y) => f.answers[y] !== f.answers[year]);
      const corruptedYear = rng.pick(others);
      for (const alias of [false, true]) {
        items.push({
          kind: alias ? 'alias' : 'temporal', relation: f.relation, year, corruptedYear,
          clean: temporalPrompt(f.frame, year, alias), corrupted: temporalPrompt(f.frame, corruptedYear, alias),
          answer: ` ${f.answers[year]}`, corruptedAnswer: ` ${f.answers[corruptedYear]}`,
        });
      }
    }
  }
  const years = [...allYears].sort();
  const nControls = opts.controls ?? 4;
  for (const c of CONTROL_FACTS) {
    for (let i = 0; i < nControls; i++) {
      const [year, corruptedYear] = rng.shuffle(years).slice(0, 2);
      items.push({ kind: 'control', relation: c.relation, year, corruptedYear, clean: temporalPrompt(c.frame, year, false), corrupted: temporalPrompt(c.frame, corruptedYear, false), answer: ` ${c.answer}`, corruptedAnswer: ` ${c.answer}` });
    }
  }
  return TemporalSetSchema.parse({ kind: 'temporal', seed, items });
}

/**
 * Token pairs for the temporal scorer: the answer's first token; pairs whose clean and corrupted prompts
 * tokenize to different lengths are dropped (and counted), since patching needs aligned positions.
 */
export function temporalTokenPairs(set: TemporalSet, tokenizer: TextTokenizer, prefix: number[] = []) {
  const pairs: { clean: number[]; corrupted: number[]; answer: number; kind: 'temporal' | 'control' | 'alias' }[] = [];
  let dropped = 0;
  for (const it of set.items) {
    const clean = [...prefix, ...tokenizer.encode(it.clean)];
    const corrupted = [...prefix, ...tokenizer.encode(it.corrupted)];
    const answer = tokenizer.encode(it.answer)[0];
    if (clean.length !== corrupted.length || answer === undefined) dropped++;
    else pairs.push({ clean, corrupted, answer, kind: it.kind });
  }
  return { pairs, dropped };
}

// ---------------------------------------------------------------------------------------------------
// Park et al.'s circuit method (src/interp/scores/temporal_circuits.ts): event aliases and time-invariant tasks

/**
 * Years named by an event instead of a number, as Park et al.'s alias templates do ("In the year the Summer
 * Olympics were held in Atlanta, …"). Only events that name one year: France won the World Cup in 1998 and 2018,
 * so neither is used.
 */
export const EVENT_ALIASES: Record<number, string> = {
  1996: 'the Summer Olympics were held in Atlanta', 2000: 'the Summer Olympics were held in Sydney', 2004: 'the Summer Olympics were held in Athens',
  2008: 'the Summer Olympics were held in Beijing', 2012: 'the Summer Olympics were held in London', 2016: 'the Summer Olympics were held in Rio de Janeiro',
  2002: 'the FIFA World Cup was won by Brazil', 2006: 'the FIFA World Cup was won by Italy', 2010: 'the FIFA World Cup was won by Spain',
  2014: 'the FIFA World Cup was won by Germany', 2022: 'the FIFA World Cup was won by Argentina',
};

/** A frame with its year given by an event: "In the year the Summer Olympics were held in Athens, …". */
export function eventPrompt(frame: string, year: number): string {
  const e = EVENT_ALIASES[year];
  if (!e) throw new HeadlensError(`no event alias for ${year}`, `use one of ${Object.keys(EVENT_ALIASES).join(', ')}`);
  return frame.replace('{year}', `In the year ${e}`);
}

/**
 * Time-invariant tasks as separate prompts of fixed attributes, with no year in them (Park et al.'s data/Invariant:
 * fruit colours, object superclasses, geometric shapes, roman numerals): a relation, its frame and subject → object.
 */
export const INVARIANT_FACTS: { relation: string; frame: string; objects: Record<string, string> }[] = [
  { relation: 'capital', frame: 'The capital of {subject} is', objects: { France: 'Paris', Japan: 'Tokyo', Italy: 'Rome', Germany: 'Berlin', Spain: 'Madrid', Greece: 'Athens' } },
  { relation: 'chemical-symbol', frame: 'The chemical symbol of {subject} is', objects: { gold: 'Au', silver: 'Ag', iron: 'Fe', copper: 'Cu', lead: 'Pb' } },
  { relation: 'shape-sides', frame: 'The number of sides of a {subject} is', objects: { triangle: 'three', square: 'four', pentagon: 'five', hexagon: 'six', octagon: 'eight' } },
  { relation: 'roman-numeral', frame: 'The Roman numeral for {subject} is', objects: { one: 'I', five: 'V', ten: 'X', fifty: 'L', hundred: 'C', thousand: 'M' } },
];

/** A fact with its candidate answers (structurally temporal_circuits.ts' CandidateItem), and its group. */
export interface CandidateFact {
  group: string;
  prompt: number[];
  candidates: number[][];
  correct: number;
}

/** A token row task of temporal_circuits.ts (structurally its TemporalCircuitTask) and its candidate items. */
export interface TemporalCircuitData {
  tasks: { name: string; kind: 'temporal' | 'invariant'; group: string; clean: number[][]; corrupted: number[][]; answer: number[]; wrong: number[] }[];
  /** Candidate items for the ablation: each prompt with every answer of its relation (those in the vocabulary). */
  items: { temporal: CandidateFact[]; invariant: CandidateFact[] };
  /** Rows left out and why (corrupted prompt of another length in tokens, or a token outside the vocabulary). */
  dropped: { reason: string; clean: string; corrupted?: string }[];
}

/**
 * Tasks for Park et al.'s circuit method, one per (relation, year) for temporal facts — every other year of the
 * relation with another answer is a corrupted row, as their notebook pairs a target year with the subject's other
 * years — in three groups: 'numeric' ("In 2004"), 'words' ("In the year two thousand four") and 'event' ("In the
 * year the Summer Olympics were held in Athens"; corrupted by another event); and one per (relation, subject) for
 * time-invariant facts, corrupted by the relation's other subjects. A row whose corrupted prompt tokenizes to
 * another length is dropped and listed; `unk` (a tokenizer's unknown-token id) drops prompts that contain it.
 */
export function temporalCircuitData(tokenizer: TextTokenizer, opts: { prefix?: number[]; unk?: number } = {}): TemporalCircuitData {
  const prefix = opts.prefix ?? [];
  const enc = (s: string) => [...prefix, ...tokenizer.encode(s)];
  const out: TemporalCircuitData = { tasks: [], items: { temporal: [], invariant: [] }, dropped: [] };
  const hasUnk = (...xs: number[][]) => opts.unk !== undefined && xs.some((x) => x.includes(opts.unk!));
  const addTask = (name: string, kind: 'temporal' | 'invariant', group: string, clean: string, answer: string, others: { prompt: string; answer: string }[]) => {
    const c = enc(clean);
    const a = tokenizer.encode(` ${answer}`);
    const rows: { corrupted: number[]; wrong: number }[] = [];
    for (const o of others) {
      const k = enc(o.prompt);
      const w = tokenizer.encode(` ${o.answer}`);
      if (hasUnk(c, k, a, w)) out.dropped.push({ reason: 'unknown token', clean, corrupted: o.prompt });
      else if (k.length !== c.length) out.dropped.push({ reason: `corrupted is ${k.length} tokens, clean ${c.length}`, clean, corrupted: o.prompt });
      else if (w[0] === a[0]) out.dropped.push({ reason: 'answers share their first token', clean, corrupted: o.prompt });
      else rows.push({ corrupted: k, wrong: w[0] });
    }
    if (rows.length) out.tasks.push({ name, kind, group, clean: rows.map(() => c), corrupted: rows.map((r) => r.corrupted), answer: rows.map(() => a[0]), wrong: rows.map((r) => r.wrong) });
  };
  const addItem = (kind: 'temporal' | 'invariant', group: string, prompt: string, answers: string[], correct: string) => {
    const p = enc(prompt);
    const known = answers.filter((x) => x === correct || !hasUnk(tokenizer.encode(` ${x}`))); // a wrong candidate outside the vocabulary is left out
    const cands = known.map((x) => tokenizer.encode(` ${x}`));
    if (hasUnk(p, ...cands) || cands.length < 2) out.dropped.push({ reason: 'unknown token or fewer than 2 candidates (candidate item)', clean: prompt });
    else out.items[kind].push({ group, prompt: p, candidates: cands, correct: known.indexOf(correct) });
  };
  for (const f of TEMPORAL_FACTS) {
    const years = Object.keys(f.answers).map(Number);
    const answers = [...new Set(Object.values(f.answers))];
    const prompts = {
      numeric: (y: number) => temporalPrompt(f.frame, y, false),
      words: (y: number) => temporalPrompt(f.frame, y, true),
      event: (y: number) => eventPrompt(f.frame, y),
    };
    for (const [group, make] of Object.entries(prompts)) {
      // an event alias only where it names a year of this relation, and never the relation itself
      const ys = group === 'event' ? years.filter((y) => EVENT_ALIASES[y] && !EVENT_ALIASES[y].startsWith(f.frame.replace('{year}, ', ''))) : years;
      for (const y of ys) {
        const others = ys.filter((o) => f.answers[o] !== f.answers[y]).map((o) => ({ prompt: make(o), answer: f.answers[o] }));
        addTask(`${f.relation}-${group}-${y}`, 'temporal', group, make(y), f.answers[y], others);
        addItem('temporal', group, make(y), answers, f.answers[y]);
      }
    }
  }
  for (const f of INVARIANT_FACTS) {
    const subjects = Object.keys(f.objects);
    const answers = Object.values(f.objects);
    const make = (s: string) => f.frame.replace('{subject}', s);
    for (const s of subjects) {
      const others = subjects.filter((o) => o !== s).map((o) => ({ prompt: make(o), answer: f.objects[o] }));
      addTask(`${f.relation}-${s}`, 'invariant', 'invariant', make(s), f.objects[s], others);
      addItem('invariant', 'invariant', make(s), answers, f.objects[s]);
    }
  }
  return out;
}
