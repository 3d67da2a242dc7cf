import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZOO_DIR } from '../src/loading/load.js';
import { IOI_TEMPLATES } from '../src/datasets/ioi.js';
import { DEFAULT_NEEDLE, needleVariant } from '../src/datasets/needle.js';
import { FIRST_NAMES } from '../src/datasets/word_lists.js';
import { RECIPES, toyLmTokenizer } from '../src/zoo/recipes.js';
import { ANSWER_WEIGHT, IOI_HELD_OUT, parseMix, shortDocument, TOY_LM_MIX, vocabularyTexts } from '../src/zoo/toy_lm_data.js';
import { wordTokenizerJson, wordVocabulary } from '../src/zoo/word_tokenizer.js';
import { HFTokenizer } from '../src/loading/tokenizer.js';
import { Random } from '../src/util/random.js';

const UNK = 1;

describe('the word-level tokenizer', () => {
  it('wordTokenizerJson(words) encodes each word, and each run of punctuation, as one token', () => {
    const tok = new HFTokenizer(wordTokenizerJson(wordVocabulary(['Mary gave a drink, to John.'])));
    const ids = tok.encode('Mary gave a drink, to John.');
    expect(ids.map((i) => tok.tokenText(i))).toEqual(['Mary', 'gave', 'a', 'drink', ',', 'to', 'John', '.']);
    expect(tok.encode(' John')).toEqual([tok.encode('John')[0]]);
    expect(tok.encode('Bob')).toEqual([UNK]);
    expect(tok.vocabSize).toBe(10); // <|endoftext|>, [UNK] and 8 words
  });

  it('refuses a word holding whitespace, naming it', () => {
    expect(() => wordTokenizerJson(['two words'])).toThrow(/'two words'/);
  });

  it("toy-lm's tokenizer encodes every text of its mixture without [UNK], and the scan tasks' words as one token each", () => {
    const tok = toyLmTokenizer();
    for (const t of vocabularyTexts().slice(0, 3000)) expect(tok.encode(t).includes(UNK), t).toBe(false);
    for (const w of [...FIRST_NAMES, 'A', 'B', 'C', 'D']) expect(tok.encode(` ${w}`).length, w).toBe(1);
    for (const t of [DEFAULT_NEEDLE.needle, DEFAULT_NEEDLE.question, DEFAULT_NEEDLE.answer]) expect(tok.encode(t).includes(UNK), t).toBe(false);
    expect(RECIPES['toy-lm'].config.d_vocab).toBe(tok.vocabSize);
  });

  it("the recipe's tokenizer is the shipped toy-lm's, id for id (a mixture change must not renumber the words)", () => {
    const shipped = JSON.parse(readFileSync(path.join(ZOO_DIR, 'toy-lm', 'tokenizer.json'), 'utf8'));
    expect((wordTokenizerJson(wordVocabulary(vocabularyTexts())) as { model: { vocab: unknown } }).model.vocab).toEqual(shipped.model.vocab);
  });

  it('decoding and encoding again gives the same ids', () => {
    const tok = toyLmTokenizer();
    const d = shortDocument('mcq', new Random(3));
    const ids = tok.encode(d.prompt + d.answer);
    expect(tok.encode(tok.decode(ids))).toEqual(ids);
  });
});

describe('the toy-lm training mixture', () => {
  it('batch(rng, n) gives n rows of n_ctx tokens starting with BOS, the same for the same seed', () => {
    const data = RECIPES['toy-lm'].data(0);
    const a = data.batch(new Random(7), 3);
    const b = data.batch(new Random(7), 3);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens.map((r) => r.length)).toEqual([512, 512, 512]);
    expect(a.tokens.every((r) => r[0] === 0)).toBe(true);
    expect(a.tokens.flat().includes(UNK)).toBe(false);
    const text = toyLmTokenizer().decode(a.tokens.flat());
    expect(text).toMatch(/secret ingredient/);
    expect(data.batch(new Random(8), 3).tokens).not.toEqual(a.tokens);
    // answers weigh ANSWER_WEIGHT in the loss, everything else 1: the token after "Answer:" in an MCQ is a letter
    expect(a.lossMask!.map((m) => m.length)).toEqual([511, 511, 511]);
    expect(new Set(a.lossMask!.flat())).toEqual(new Set([1, ANSWER_WEIGHT]));
    const tok = toyLmTokenizer();
    let letters = 0;
    a.tokens.forEach((row, b) => row.forEach((t, p) => {
      if (p > 1 && tok.tokenText(row[p - 1]) === ':' && tok.tokenText(row[p - 2]) === 'Answer' && row[p + 1] === 0 && /^[A-Z]$/.test(tok.tokenText(t))) {
        expect(a.lossMask![b][p - 1]).toBe(ANSWER_WEIGHT);
        expect(a.lossMask![b][p - 2]).toBe(1); // ':' itself is part of the prompt
        letters++;
      }
    }));
    expect(letters).toBeGreaterThan(0);
  });

  it('--mix sets the shares of the short documents: multiple choice alone gives rows of questions and one needle', () => {
    const tok = toyLmTokenizer();
    const rows = RECIPES['toy-lm'].data(0, { mix: 'mcq=1,ioi=0,temporal=0,people=0,repeat=0,lookup=0' }).batch(new Random(7), 2).tokens;
    const text = tok.decode(rows.flat());
    expect(text).toMatch(/Question/);
    const docs = rows.flatMap((r) => tok.decode(r).split('<|endoftext|>').map((d) => d.trim()).filter(Boolean));
    // every document but the needle's and the row's cut-off last one is a question
    expect(docs.filter((d) => d.startsWith('Question')).length).toBeGreaterThanOrEqual(docs.length - 4);
    expect(() => parseMix('mcq=lots')).toThrow(/share 'lots' of mcq/);
    expect(() => parseMix('poems=0.5')).toThrow(/no document kind 'poems'.*kinds: repeat, ioi/);
    expect(() => parseMix('repeat=0,ioi=0,mcq=0,temporal=0,people=0')).toThrow(/every share is 0/);
    const lookup = shortDocument('lookup', new Random(2));
    expect(lookup.prompt).toMatch(new RegExp(`^Question: Which of these is (\\w+)\\?\nOptions:.* ${lookup.answer.trim()}\\) \\1\\b`));
    expect(parseMix('mcq=0.6')).toEqual({ ...TOY_LM_MIX, mcq: 0.6 });
    expect(() => RECIPES['toy-induction-2l'].data(0, { mix: 'mcq=1' })).toThrow(/no mixture/);
  });

  it('IOI stories never use the held-out names, which still occur in other documents', () => {
    const rng = new Random(11);
    const text = (d: { prompt: string; answer: string }) => d.prompt + d.answer;
    const stories = Array.from({ length: 2000 }, () => text(shortDocument('ioi', rng)));
    const people = Array.from({ length: 2000 }, () => text(shortDocument('people', rng)));
    const words = (s: string) => new Set(s.split(/[^A-Za-z]+/));
    for (const s of stories) for (const n of IOI_HELD_OUT) expect(words(s).has(n), s).toBe(false);
    for (const n of IOI_HELD_OUT) expect(people.some((s) => words(s).has(n)), n).toBe(true);
    // and each comes back in the second sentence of some document, so copying it from the context is trained
    const second = (s: string) => s.split('. ')[1]?.split(' ')[0];
    for (const n of IOI_HELD_OUT) expect(people.some((s) => second(s) === n && s.split('. ')[0].split(' ').includes(n)), n).toBe(true);
    const starts = new Set(IOI_TEMPLATES.map((t) => t.split(' ')[0]));
    expect(stories.every((s) => starts.has(s.split(' ')[0]))).toBe(true);
  });

  it.each([['ioi-many', [3, 4]], ['ioi-crowd', [5, 6, 7, 8]]] as const)("'%s' stories introduce %j names and repeat every one but the answer, which is the IO", (kind, counts) => {
    const rng = new Random(4);
    const tok = toyLmTokenizer();
    const sizes = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const d = shortDocument(kind, rng);
      const io = d.answer.replace(/[ .]/g, '');
      const names = d.prompt.split(/[^A-Za-z]+/).filter((w) => (FIRST_NAMES as readonly string[]).includes(w));
      const count = (n: string) => names.filter((x) => x === n).length;
      const distinct = [...new Set(names)];
      sizes.add(distinct.length);
      expect(count(io), d.prompt).toBe(1);
      expect(distinct.filter((n) => n !== io).every((n) => count(n) === 2), d.prompt).toBe(true);
      // the IO is one of the names introduced, never the last name before the end
      expect(names.indexOf(io)).toBeLessThan(distinct.length);
      for (const n of IOI_HELD_OUT) expect(names.includes(n), d.prompt).toBe(false);
      expect(tok.encode(d.prompt + d.answer).includes(UNK), d.prompt).toBe(false);
    }
    expect([...sizes].sort()).toEqual(counts);
    expect(shortDocument(kind, new Random(9)).prompt).toEqual(shortDocument(kind, new Random(9)).prompt);
  });

  it('the head-dropout region of a row covers its IOI stories and nothing else', () => {
    const tok = toyLmTokenizer();
    const b = RECIPES['toy-lm'].data(0, { mix: 'ioi=0.3,ioi-many=0.2,mcq=0.5' }).batch(new Random(3), 2);
    let stories = 0;
    b.tokens.forEach((row, r) => {
      const region = b.headDropRegion![r];
      expect(region.length).toBe(row.length);
      // documents are the runs between <|endoftext|> (id 0); the row's cut-off last one is left out
      const starts = row.flatMap((t, p) => (t === 0 ? [p] : []));
      for (let k = 0; k + 1 < starts.length; k++) {
        const [from, to] = [starts[k] + 1, starts[k + 1]];
        if (from === to) continue;
        const text = tok.decode(row.slice(from, to));
        const ioi = IOI_TEMPLATES.some((t) => text.startsWith(t.split(' ')[0] + ' ')) && / to [A-Z][a-z]+\.$/.test(text);
        expect(new Set(region.slice(from, to)), text).toEqual(new Set([ioi ? 1 : 0]));
        expect(region[starts[k]]).toBe(0);
        if (ioi) stories++;
      }
    });
    expect(stories).toBeGreaterThan(5);
  });

  it('marks, in each IOI story, the pair --attention-target trains: from its last position to its indirect object', () => {
    const tok = toyLmTokenizer();
    const b = RECIPES['toy-lm'].data(0, { mix: 'ioi=0.4,ioi-many=0.2,mcq=0.4' }).batch(new Random(4), 3);
    const pairs = b.attentionPairs!.ioi;
    expect(pairs.length).toBeGreaterThan(5);
    for (const [r, q, k] of pairs) {
      const row = b.tokens[r];
      expect(q).toBeLessThan(row.length);
      // the story's prompt ends at q ("… to"); the answer at q + 1 is the IO (where the row is long enough),
      // named once in the story, at k
      expect(tok.decode([row[q]])).toBe('to');
      const start = row.lastIndexOf(0, q) + 1;
      const story = row.slice(start, q + 1);
      expect(story.filter((t) => t === row[k]).length).toBe(1);
      expect(k).toBeGreaterThanOrEqual(start);
      if (q + 1 < row.length) expect(row[q + 1]).toBe(row[k]);
      expect(b.headDropRegion![r][q]).toBe(1);
    }
  });

  it("marks, in each question, the 'mcq' pair: from the colon of \"Answer:\" to the first word of the correct option", () => {
    const tok = toyLmTokenizer();
    const b = RECIPES['toy-lm'].data(0, { mix: 'mcq=0.4,mcq-few=0.3,lookup=0.1,ioi=0.2' }).batch(new Random(4), 3);
    const pairs = b.attentionPairs!.mcq;
    expect(pairs.length).toBeGreaterThan(10);
    const letters = new Set<string>();
    for (const [r, q, k] of pairs) {
      const row = b.tokens[r];
      const start = row.lastIndexOf(0, q) + 1;
      const question = tok.decode(row.slice(start, q + 1));
      expect(question).toMatch(/^Question : .* Answer :$/s); // decode puts a space between tokens
      // the option at k is the one whose label the answer names
      expect(tok.decode([row[k - 1]])).toBe(')');
      const label = tok.decode([row[k - 2]]);
      if (q + 1 < row.length) expect(tok.decode([row[q + 1]])).toBe(label);
      letters.add(label);
      expect(k).toBeGreaterThan(start);
    }
    expect(letters.size).toBeGreaterThan(3); // not always the same option
    // IOI pairs are kept apart
    expect(b.attentionPairs!.ioi.length).toBeGreaterThan(0);
    expect(b.attentionPairs!.ioi.some(([r, q]) => pairs.some(([r2, q2]) => r === r2 && q === q2))).toBe(false);
  });

  it("needleVariant never draws the scan's own needle, so scoring sees it for the first time", () => {
    const rng = new Random(5);
    for (let i = 0; i < 20000; i++) {
      const v = needleVariant(rng);
      expect(v.needle === DEFAULT_NEEDLE.needle).toBe(false);
      expect(v.needle.endsWith(`is${v.answer}.`)).toBe(true);
    }
  });
});
