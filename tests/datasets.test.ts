/**
 * Task data sets: seeded (same seed, same data; another seed, other data), schema-checked, and built as their
 * papers describe (IOI orders and corrupted names, needle spans and depths, balanced letter positions,
 * year patching with textual aliases).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import { inductionSequences, InductionSetSchema } from '../src/datasets/induction.js';
import { ioiPrompts, IoiSetSchema, singleTokenWords } from '../src/datasets/ioi.js';
import { mcqItems, McqSetSchema, mcqTokens } from '../src/datasets/mcq.js';
import { needleGrid, needleTextTrials, needleTokenTrials, needleWithAnswer, NeedleSetSchema } from '../src/datasets/needle.js';
import { temporalItems, TemporalSetSchema, temporalTokenPairs, yearInWords } from '../src/datasets/temporal.js';
import { HFTokenizer } from '../src/loading/tokenizer.js';
import type { TextTokenizer } from '../src/model/tokenizer.js';
import { FIXTURES } from './helpers.js';

const byteLevel = new HFTokenizer(JSON.parse(readFileSync(path.join(FIXTURES, 'tokenizers', 'byte_level_bpe.json'), 'utf8')));

/** A word-level tokenizer: known words (with their leading space) are one token, anything else one token per character. */
function wordTokenizer(words: string[]): TextTokenizer {
  const vocab = new Map(words.map((w, i) => [w, 1000 + i]));
  return {
    encode: (text) => (text.match(/ ?[^ ]+| /g) ?? []).flatMap((w) => (vocab.has(w) ? [vocab.get(w)!] : [...w].map((c) => c.codePointAt(0)!))),
    decode: (ids) => ids.map((id) => (id >= 1000 ? words[id - 1000] : String.fromCodePoint(id))).join(''),
    tokenText: (id) => String(id),
  };
}

describe('induction', () => {
  it('inductionSequences({seed}) repeats a seeded random block after BOS', () => {
    const a = inductionSequences({ n: 3, halfLength: 10, low: 5, high: 50, bos: 0, seed: 1 });
    expect(InductionSetSchema.parse(a)).toEqual(a);
    expect(inductionSequences({ n: 3, halfLength: 10, low: 5, high: 50, bos: 0, seed: 1 })).toEqual(a);
    expect(inductionSequences({ n: 3, halfLength: 10, low: 5, high: 50, bos: 0, seed: 2 }).sequences).not.toEqual(a.sequences);
    for (const s of a.sequences) {
      expect(s).toHaveLength(21);
      expect(s[0]).toBe(0);
      expect(s.slice(1, 11)).toEqual(s.slice(11));
      for (const t of s.slice(1)) expect(t >= 5 && t < 50).toBe(true);
    }
  });

  it('InductionSetSchema rejects a sequence with a negative token', () => {
    const a = inductionSequences({ n: 1, halfLength: 3, low: 1, high: 9, seed: 0 });
    a.sequences[0][0] = -1;
    expect(InductionSetSchema.safeParse(a).success).toBe(false);
  });
});

describe('ioi', () => {
  it("ioiPrompts({seed, corruption: 's2'}) alternates ABBA and BABA with IO, S and a third name for S2 in the corrupted prompt", () => {
    const set = ioiPrompts({ n: 20, seed: 4, corruption: 's2' });
    expect(IoiSetSchema.parse(set)).toEqual(set);
    expect(ioiPrompts({ n: 20, seed: 4, corruption: 's2' })).toEqual(set);
    expect(ioiPrompts({ n: 20, seed: 5, corruption: 's2' }).prompts).not.toEqual(set.prompts);
    set.prompts.forEach((p, i) => {
      expect(p.order).toBe(i % 2 === 0 ? 'ABBA' : 'BABA');
      const first = p.order === 'ABBA' ? p.io : p.s;
      const second = p.order === 'ABBA' ? p.s : p.io;
      expect(p.clean.indexOf(first)).toBeLessThan(p.clean.indexOf(second));
      // S appears twice in the clean prompt, IO once; in the corrupted prompt S2 is C
      expect(p.clean.split(new RegExp(`\\b${p.s}\\b`)).length - 1).toBe(2);
      expect(p.clean.split(new RegExp(`\\b${p.io}\\b`)).length - 1).toBe(1);
      expect(p.corruptedNames.io).toBe(p.io);
      expect(p.corruptedNames.s1).toBe(p.s);
      expect(p.corrupted).toBe(p.clean.replace(new RegExp(`(.*)\\b${p.s}\\b`), `$1${p.corruptedNames.s2}`));
      expect(p.clean.endsWith(' to')).toBe(true);
    });
  });

  it('singleTokenWords drops names the HF byte-level tokenizer splits, with their token counts', () => {
    const { ok, dropped } = singleTokenWords(['Mary', 'Jo'], byteLevel);
    expect(ok).toEqual([]);
    expect(dropped).toEqual({ Mary: 5, Jo: 3 }); // ' Mary' is 5 bytes, one token each in this byte-level vocabulary
    expect(() => ioiPrompts({ n: 2, tokenizer: byteLevel })).toThrow(HeadlensError);
  });

  it('ioiPrompts({tokenizer}) keeps only single-token names and reports the rest', () => {
    const tok = wordTokenizer([' Mary', ' John', ' Anna', ' Paul', ' Kate']);
    const set = ioiPrompts({ n: 10, seed: 1, tokenizer: tok, lists: 'headlens' });
    for (const p of set.prompts) for (const n of [p.io, p.s, ...Object.values(p.corruptedNames)]) expect(['Mary', 'John', 'Anna', 'Paul', 'Kate']).toContain(n);
    expect(Object.keys(set.droppedNames)).toHaveLength(35);
    expect(set.warnings).toEqual(['35 of 40 names are not single tokens for this tokenizer and were left out (James, Robert, Sarah, Michael, Laura, …)']);
    expect(set.droppedNames.James).toBe(6);
  });
});

describe('needle', () => {
  it('needleGrid spans lengths up to n_ctx and depths 0–100 %', () => {
    expect(needleGrid(100, 1000, 4, 5)).toEqual({ contextLengths: [100, 400, 700, 1000], depths: [0, 25, 50, 75, 100] });
  });

  it('needleTokenTrials puts the needle at the depth and cues its first token at the end', () => {
    const set = needleTokenTrials({ contextLengths: [30, 50], depths: [0, 50, 100], haystackPool: [10, 11, 12, 13], needlePool: [1, 2, 3, 4, 5, 6], needleLength: 4, bos: 0, seed: 3 });
    expect(NeedleSetSchema.parse(set)).toEqual(set);
    expect(set.trials).toHaveLength(6);
    for (const t of set.trials) {
      expect(t.tokens).toHaveLength(t.contextLength);
      const needle = t.tokens.slice(t.needleStart, t.needleEnd);
      expect(t.tokens.at(-1)).toBe(needle[0]);
      expect(t.answer).toEqual(needle.slice(1));
      expect(t.tokens.slice(t.answerStart, t.answerEnd)).toEqual(t.answer); // the answer span: the needle after its cue
      expect([t.answerStart, t.answerEnd]).toEqual([t.needleStart + 1, t.needleEnd]);
      const room = t.contextLength - 1 - 4 - 1;
      expect(t.needleStart - 1).toBe(Math.round((room * t.depth) / 100));
    }
    expect(() => needleTokenTrials({ contextLengths: [30], depths: [0], haystackPool: [1, 2], needlePool: [2, 3], needleLength: 2 })).toThrow(/overlap/);
  });

  it('needleTextTrials inserts the needle after a full stop and ends with the question', () => {
    const set = needleTextTrials({ tokenizer: byteLevel, contextLengths: [300, 400], depths: [0, 40, 100], seed: 2 });
    expect(NeedleSetSchema.parse(set)).toEqual(set);
    const dot = byteLevel.encode('.')[0];
    for (const t of set.trials) {
      expect(t.tokens).toHaveLength(t.contextLength);
      expect(byteLevel.decode(t.tokens.slice(t.needleStart, t.needleEnd))).toContain('secret ingredient');
      if (t.needleStart > 0 && t.depth < 100) expect(t.tokens[t.needleStart - 1]).toBe(dot); // at 100 % the needle ends the haystack, as in Kamradt's code
      expect(byteLevel.decode(t.tokens).endsWith('Answer:')).toBe(true);
      // the answer span is the answer's own tokens, inside the needle, ending before its full stop
      expect(t.tokens.slice(t.answerStart, t.answerEnd)).toEqual(t.answer);
      expect(byteLevel.decode(t.tokens.slice(t.answerStart, t.answerEnd))).toBe(' a spoonful of smoked paprika');
      expect(t.answerEnd).toBe(t.needleEnd - 1);
    }
    expect(set.trials.find((t) => t.depth === 0)!.needleStart).toBe(0);
  });

  it('needleWithAnswer finds an answer not literally in the needle as Wu et al.\'s find_needle_idx does (> 90 % of its distinct tokens), and refuses one that is not there', () => {
    const answerText = ' Because he is a mean person';
    const answer = byteLevel.encode(answerText);
    const needleText = ' Mr Green is disliked by everyone because he is a mean person.'; // "because", lower case
    const { needle, from, to } = needleWithAnswer(byteLevel, needleText, answerText, answer);
    expect(needle).toEqual(byteLevel.encode(needleText));
    expect(to - from).toBe(answer.length);
    const covered = new Set(needle.slice(from, to));
    expect(new Set(answer).size * 0.9).toBeLessThan([...new Set(answer)].filter((t) => covered.has(t)).length);
    expect(() => needleWithAnswer(byteLevel, needleText, ' a pinch of salt', byteLevel.encode(' a pinch of salt'))).toThrow(/not in the needle/);
    expect(() => NeedleSetSchema.parse({ kind: 'needle', seed: 0, trials: [{ tokens: [1, 2, 3, 4], needleStart: 1, needleEnd: 3, answerStart: 2, answerEnd: 4, answer: [4], contextLength: 4, depth: 0 }] })).toThrow(/answer span/);
  });
});

describe('mcq', () => {
  it.each(['ordered', 'shuffled', 'random'] as const)('mcqItems({labels: %s}) balances the correct position and the content decides it', (labels) => {
    const set = mcqItems({ n: 12, seed: 9, labels });
    expect(McqSetSchema.parse(set)).toEqual(set);
    expect(mcqItems({ n: 12, seed: 9, labels })).toEqual(set);
    set.items.forEach((q, i) => {
      expect(q.correct).toBe(i % 4);
      if (labels === 'ordered') expect(q.labels).toEqual(['A', 'B', 'C', 'D']);
      if (labels === 'shuffled') expect([...q.labels].sort()).toEqual(['A', 'B', 'C', 'D']);
      expect(q.prompt).toContain(`${q.labels[q.correct]}) ${q.options[q.correct]}`);
    });
  });

  it('mcqTokens locates each label token and refuses labels that are not one token', () => {
    const item = mcqItems({ n: 1, seed: 0 }).items[0];
    const tok = wordTokenizer([' A', ' B', ' C', ' D']);
    const t = mcqTokens(item, tok)!;
    t.labelPositions.forEach((p, i) => expect(t.tokens[p]).toBe(t.labelTokens[i]));
    expect(t.labelTokens).toEqual([1000, 1001, 1002, 1003]);
    expect(mcqTokens(item, byteLevel)).toBeUndefined(); // ' A' is two byte tokens
  });
});

describe('temporal', () => {
  it('yearInWords says years as people do', () => {
    expect([1998, 2004, 2014, 2000, 1905, 2022].map(yearInWords)).toEqual([
      'nineteen ninety-eight', 'two thousand four', 'twenty fourteen', 'two thousand', 'nineteen oh five', 'twenty twenty-two',
    ]);
  });

  it('temporalItems pairs each fact with a year of another answer, numerically and in words, plus controls', () => {
    const set = temporalItems({ seed: 1 });
    expect(TemporalSetSchema.parse(set)).toEqual(set);
    expect(temporalItems({ seed: 1 })).toEqual(set);
    const alias = set.items.filter((i) => i.kind === 'alias');
    expect(alias.length).toBe(set.items.filter((i) => i.kind === 'temporal').length);
    expect(set.items.find((i) => i.kind === 'temporal' && i.year === 2004 && i.relation === 'olympics-host')).toMatchObject({ clean: 'In 2004, the Summer Olympics were held in', answer: ' Athens' });
    expect(alias.find((i) => i.year === 2004 && i.relation === 'olympics-host')!.clean).toBe('In the year two thousand four, the Summer Olympics were held in');
    for (const i of set.items) expect(i.kind === 'control' ? i.answer === i.corruptedAnswer : i.answer !== i.corruptedAnswer).toBe(true);
    const bad = { ...set.items[0], corruptedAnswer: set.items[0].answer };
    expect(TemporalSetSchema.safeParse({ ...set, items: [bad] }).success).toBe(false);
  });

  it('temporalTokenPairs keeps pairs of equal token length', () => {
    const { pairs, dropped } = temporalTokenPairs(temporalItems({ seed: 1 }), byteLevel);
    for (const p of pairs) expect(p.clean.length).toBe(p.corrupted.length);
    expect(pairs.length + dropped).toBe(temporalItems({ seed: 1 }).items.length);
    expect(pairs.filter((p) => p.kind === 'temporal').length).toBeGreaterThan(0); // 4-digit years are 4 bytes each
  });
});
