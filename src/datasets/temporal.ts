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
