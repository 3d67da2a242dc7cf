/**
 * IOI as Wang et al. 2022 built it (issue 19, item 2): the ABC corruption, their 15 templates and their names
 * filtered to single tokens with a warning, the word lists chosen by what the tokenizer can spell, and path
 * patching at one position per prompt (END for the direct path, S2 for values, S1+1 for keys), each checked
 * on a hand-made prompt or the planted model with values computed by hand.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { IOI_LISTS, ioiPrompts, ioiTokens, singleTokenWords, unspelledWords } from '../src/datasets/ioi.js';
import { WANG2022_NAMES, WANG2022_TEMPLATES } from '../src/datasets/ioi_wang2022.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { pathPatch } from '../src/interp/interventions/path_patching.js';
import { logitDiff } from '../src/interp/metrics.js';
import { ioiCopyScores, ioiHeadClasses } from '../src/interp/scores/ioi_classes.js';
import { chooseIoiLists } from '../src/interp/scores/tasks/ioi.js';
import { HFTokenizer } from '../src/loading/tokenizer.js';
import type { TextTokenizer } from '../src/model/tokenizer.js';
import { PLANTED, PLANTED_TOK as TOK, plantedIoiPrompts, plantedModel } from '../src/zoo/planted.js';
import { ZOO_DIR } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

/** Every space-separated word one token, decoded back exactly: a tokenizer that spells anything, as GPT-2's does. */
function wholeWords(): TextTokenizer {
  const ids = new Map<string, number>();
  const words: string[] = [];
  const id = (w: string) => ids.get(w) ?? (ids.set(w, words.push(w) - 1), words.length - 1);
  return {
    encode: (text) => (text.match(/ ?[^ ]+/g) ?? []).map(id),
    decode: (xs) => xs.map((x) => words[x]).join(''),
    tokenText: (x) => words[x],
  };
}

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});

describe('IOI data as Wang et al.', () => {
  it("ioiPrompts corrupts as ABC by default: IO, S1 and S2 replaced by three other names (ABB → XYZ, BAB → XYZ)", () => {
    const set = ioiPrompts({ n: 2, seed: 0, names: ['Mary', 'John', 'Anna', 'Paul', 'Kate'] });
    expect(set.corruption).toBe('abc');
    expect(set.lists).toBe('wang2022');
    // by hand from their template 3 ("Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to
    // give a [OBJECT] to [A]") in ABBA order, and template 9 in BABA order
    expect(set.prompts[0].clean).toBe('Then, John and Anna were thinking about going to the hospital. Anna wanted to give a computer to');
    expect(set.prompts[0].corrupted).toBe('Then, Paul and Kate were thinking about going to the hospital. Mary wanted to give a computer to');
    expect(set.prompts[1].clean).toBe('While Paul and John were commuting to the station, Paul gave a basketball to');
    expect(set.prompts[1].corrupted).toBe('While Kate and Mary were commuting to the station, Anna gave a basketball to');
    for (const p of ioiPrompts({ n: 40, seed: 3 }).prompts) {
      const { io, s1, s2 } = p.corruptedNames;
      expect(new Set([io, s1, s2, p.io, p.s]).size).toBe(5); // three new names, none from the clean prompt
      // the words differ exactly at IO, S1 and S2
      const [a, b] = [p.clean.split(' '), p.corrupted.split(' ')];
      const diff = a.flatMap((w, i) => (w !== b[i] ? [[w.replace(/[.,]$/, ''), b[i].replace(/[.,]$/, '')]] : []));
      const [ioSlot, s1Slot] = p.order === 'ABBA' ? [0, 1] : [1, 0];
      expect(diff[ioSlot]).toEqual([p.io, io]);
      expect(diff[s1Slot]).toEqual([p.s, s1]);
      expect(diff[2]).toEqual([p.s, s2]);
      expect(diff).toHaveLength(3);
    }
  });

  it("corruption: 's2' keeps headlens' earlier prompts: the clean text is the same draw, only S2 replaced", () => {
    const [abc, s2] = (['abc', 's2'] as const).map((corruption) => ioiPrompts({ n: 20, seed: 9, lists: 'headlens', corruption }));
    expect(s2.prompts.map((p) => p.clean)).toEqual(abc.prompts.map((p) => p.clean));
    for (const p of s2.prompts) expect(p.corrupted).toBe(p.clean.replace(new RegExp(`(.*)\\b${p.s}\\b`), `$1${p.corruptedNames.s2}`));
  });

  it('their 15 templates in both orders, their 99 names, 8 places and 8 objects', () => {
    expect(WANG2022_TEMPLATES).toHaveLength(15);
    expect(new Set(WANG2022_NAMES).size).toBe(99);
    expect([IOI_LISTS.wang2022.places.length, IOI_LISTS.wang2022.objects.length]).toEqual([8, 8]);
    const set = ioiPrompts({ n: 400, seed: 1 });
    expect(new Set(set.prompts.map((p) => `${p.template}${p.order}`)).size).toBe(30);
    for (const p of set.prompts) expect(p.clean.endsWith(' to')).toBe(true); // stops before the IO
  });

  it('names that are not single tokens are dropped, counted and warned about; too few is an error naming the fix', () => {
    const kept = ['Mary', 'John', 'Paul', 'Lisa', 'Adam', 'Eric'];
    /** The first `k` of `kept` are one token each (ids 0…); anything else is one token per character (1000 + code). */
    const names = (k: number): TextTokenizer => ({
      encode: (t) => (kept.slice(0, k).includes(t.trim()) ? [kept.indexOf(t.trim())] : [...t].map((c) => 1000 + c.charCodeAt(0))),
      decode: (ids) => ids.map((i) => (i < 1000 ? kept[i] : String.fromCharCode(i - 1000))).join(''),
      tokenText: String,
    });
    const tok = names(6);
    const set = ioiPrompts({ n: 5, seed: 0, tokenizer: tok });
    expect(Object.keys(set.droppedNames)).toHaveLength(93); // 99 − 6, by hand
    expect(set.droppedNames.Christopher).toBe(12); // ' Christopher' is 12 characters
    expect(set.warnings).toEqual(['93 of 99 names are not single tokens for this tokenizer and were left out (Michael, Christopher, Jessica, Matthew, Ashley, …)']);
    for (const p of set.prompts) for (const n of [p.io, p.s, ...Object.values(p.corruptedNames)]) expect(kept).toContain(n);
    const four = names(4);
    expect(() => ioiPrompts({ n: 1, tokenizer: four })).toThrow(/4 usable names, and corruption 'abc' needs 5.*95 were dropped/);
    expect(ioiPrompts({ n: 1, tokenizer: four, corruption: 's2' }).prompts).toHaveLength(1);
  });

  it("'auto' lists: the paper's for a tokenizer that spells their words, headlens' for toy-lm's word-level vocabulary", () => {
    expect(chooseIoiLists(wholeWords())).toEqual({ lists: 'wang2022', reason: "the tokenizer spells every word of Wang et al.'s templates and keeps 99 of their 99 names whole" });
    const toyLm = new HFTokenizer(JSON.parse(readFileSync(path.join(ZOO_DIR, 'toy-lm', 'tokenizer.json'), 'utf8')));
    const unspelled = unspelledWords(IOI_LISTS.wang2022, toyLm);
    expect(unspelled).toContain('commuting');
    expect(unspelledWords(IOI_LISTS.headlens, toyLm)).toEqual([]); // toy-lm was trained on these
    const choice = chooseIoiLists(toyLm);
    expect(choice.lists).toBe('headlens');
    // 16 of their words are not in toy-lm's 418-word vocabulary (afterwards, argument, commuting, …); 21 names are.
    // A name it does not know encodes as one token too, [UNK]: that is not the name, and it is dropped
    expect(unspelled).toHaveLength(16);
    expect(toyLm.encode(' Christopher')).toHaveLength(1);
    expect(choice.reason).toMatch(/^headlens' lists: it cannot spell 16 words of Wang et al.'s templates \(/);
    expect(singleTokenWords(WANG2022_NAMES, toyLm).ok).toHaveLength(21);
    // a byte-level BPE spells every word but keeps no name whole
    const byteLevel = new HFTokenizer(JSON.parse(readFileSync(path.join(FIXTURES, 'tokenizers', 'byte_level_bpe.json'), 'utf8')));
    expect(chooseIoiLists(byteLevel).reason).toMatch(/only 0 of their names are single tokens/);
  });

  it('ioiTokens of an ABC prompt: the corrupted tokens differ from the clean ones at IO, S1 and S2 only', () => {
    const tok = wholeWords();
    for (const p of ioiPrompts({ n: 6, seed: 2 }).prompts) {
      const t = ioiTokens(p, tok, [])!;
      const diff = t.clean.flatMap((x, i) => (x !== t.corrupted[i] ? [i] : []));
      expect(diff).toEqual([t.ioPos, t.s1Pos, t.s2Pos].sort((a, b) => a - b));
    }
  });
});

describe('path patching at one position per prompt (END / S2 / S1+1 as Wang et al.)', () => {
  // two rows whose S1+1 sits at different positions: [BOS, S, IO, x, y, S] (S1+1 = 2) and [BOS, w, S, IO, y, S] (S1+1 = 3)
  const [S, IO, x, y, w, X, Y, Z] = TOK.CONTENT;
  const rows = {
    clean: [[TOK.BOS, S, IO, x, y, S], [TOK.BOS, w, S, IO, y, S]],
    corrupted: [[TOK.BOS, Y, X, x, y, Z], [TOK.BOS, w, Y, X, y, Z]],
    metric: logitDiff([IO, IO], [S, S]),
  };
  const keys = { kind: 'heads' as const, heads: [PLANTED.induction], inputs: ['k' as const] };

  it("patching L0H1's path to the induction head's keys at each prompt's S1+1 takes both prompts to the hand value", () => {
    // clean: L1H0 at END attends to IO (its previous token is S) and copies it ×10; S's own direct path adds 1 to S:
    // 10 − 1 = 9. Patched at S1+1, the key there says "after Y", so no key matches S: L1H0 spreads 10/6 over the six
    // tokens, S twice among them: 10/6 − 20/6 − 1 = −8/3
    expect(pathPatch(model, [PLANTED.previous], keys, { ...rows, senderPositions: [[2], [3]], receiverPositions: [[2], [3]] })).toBeCloseTo(-8 / 3, 3);
    // one list for both rows misses the second prompt's S1+1: (−8/3 + 9) / 2
    expect(pathPatch(model, [PLANTED.previous], keys, { ...rows, senderPositions: [2], receiverPositions: [2] })).toBeCloseTo((-8 / 3 + 9) / 2, 3);
    expect(() => pathPatch(model, [PLANTED.previous], keys, { ...rows, senderPositions: [[2]] })).toThrow(HeadlensError);
  });

  it('ioiHeadClasses patches at END / S2 / S1+1 by default and says so; the planted name mover keeps its hand value', () => {
    const r = ioiHeadClasses(model, plantedIoiPrompts(6));
    expect(r.settings.positions).toBe('paper');
    expect(r.settings.patchedAt).toEqual({ logits: 'END', q: 'END', v: 'S2', k: 'S1+1' });
    expect(r.settings.effect).toBe('(patched − clean) / clean');
    // ABC prompts [BOS, Y, X, x, y, Z]: L1H0 finds no earlier Z and copies none of IO or S, and Z's direct path adds
    // nothing to S: ABC LD = 0. Patched at END: L1H0's ABC output (10/6 to each ABC token) plus S's direct 1: −1;
    // effect (−1 − 9) / 9
    expect([r.clean, r.corrupted].map((v) => Math.round(v * 1e4) / 1e4)).toEqual([9, 0]);
    expect(r.classes.nameMovers).toHaveLength(1);
    expect(r.classes.nameMovers[0]).toMatchObject(PLANTED.induction);
    expect(r.classes.nameMovers[0].effect).toBeCloseTo(-10 / 9, 4);
    // copy scores by hand: L1H0's OV writes the token it reads ×10 (COPY), so at IO, S1 and S2 the name is the top
    // logit (1 of 1); negated it is the lowest (0). Every other head writes no token logits at all: 0
    const expected = [[0, 0, 0], [1, 0, 0]];
    expect(r.copyScores.positive).toEqual(expected);
    expect(r.copyScores.negative).toEqual([[0, 0, 0], [0, 0, 0]]);
    const all = ioiHeadClasses(model, plantedIoiPrompts(6), { positions: 'all' });
    expect(all.settings.patchedAt).toBe('every position');
    // the direct path reads END only, so every position gives the same table
    expect(all.tables.logits.flat().map((v) => v.toFixed(4))).toEqual(r.tables.logits.flat().map((v) => v.toFixed(4)));
  });

  it('per-prompt positions and copy scores leave no tensors behind', () => {
    for (const call of [
      () => pathPatch(model, [PLANTED.previous], keys, { ...rows, senderPositions: [[2], [3]], receiverPositions: [[2], [3]] }),
      () => ioiCopyScores(model, plantedIoiPrompts(2)),
    ]) {
      call();
      const before = tf.memory().numTensors;
      call();
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
