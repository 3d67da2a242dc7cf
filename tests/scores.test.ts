/**
 * Head scorers on a hand-built model with planted heads (src/zoo/planted.ts): each scorer must put the
 * planted head first, with a margin, and the numbers that can be worked out by hand must come out.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { inductionSequences } from '../src/datasets/induction.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { attentionSinkScores } from '../src/interp/scores/attention_sink.js';
import { duplicateTokenScores } from '../src/interp/scores/duplicate_token.js';
import { inductionScores, inductionPattern } from '../src/interp/scores/induction.js';
import { previousTokenScores } from '../src/interp/scores/previous_token.js';
import { streamingScores } from '../src/interp/scores/streaming.js';
import { razorAttentionHeads, razorScores } from '../src/interp/scores/razor_attention.js';
import { repeatedBlocks } from '../src/datasets/induction.js';
import { decodesExactly, greedyDecode, retrievalHeads, retrievalScorer, retrievalScores, retrievalScoresTeacherForced } from '../src/interp/scores/retrieval.js';
import { runScorer, zeros, type HeadScorer } from '../src/interp/scores/head_scores.js';
import { scan } from '../src/interp/scores/scan.js';
import { headlensError } from './expect_error.js';
import { headAblationHooks } from '../src/interp/interventions/ablation.js';
import { correctLetterScores, labelMutationScores, qkSubspaceAnalysis } from '../src/interp/scores/correct_letter.js';
import { temporalScores } from '../src/interp/scores/temporal.js';
import { ioiHeadClasses } from '../src/interp/scores/ioi_classes.js';
import { PLANTED, PLANTED_TOK as TOK, plantedIoiPrompts as ioiPrompts, plantedLetterPrompts as letterPrompts, plantedNeedleTrials as needleTrials, plantedModel, plantedTemporalPairs as temporalPairs } from '../src/zoo/planted.js';

let model: HookedTransformer;
let seqs: number[][];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
  seqs = inductionSequences({ n: 4, halfLength: 20, pool: TOK.CONTENT, bos: TOK.BOS, seed: 3 }).sequences;
});
afterAll(() => model.dispose());

/** The planted head is first and every other head is at most `rest`. */
function expectOnly(scores: number[][], top: { layer: number; head: number }[], planted: { layer: number; head: number }, min: number, rest: number) {
  expect({ layer: top[0].layer, head: top[0].head }).toEqual(planted);
  scores.forEach((row, l) =>
    row.forEach((v, h) => {
      if (l === planted.layer && h === planted.head) expect(v).toBeGreaterThan(min);
      else expect(v).toBeLessThan(rest);
    }),
  );
}

describe('pattern detectors', () => {
  it('previousTokenScores(model, seqs) finds L0H1 with score (pos − 1)/pos', () => {
    const r = previousTokenScores(model, seqs);
    console.log('prev-token', JSON.stringify(r.scores));
    expectOnly(r.scores, r.top, PLANTED.previous, 0.97, 0.3);
    expect(r.scores[0][1]).toBeCloseTo(40 / 41, 5); // query 0 can only attend to itself
  });

  it('duplicateTokenScores(model, seqs) finds L0H0', () => {
    const r = duplicateTokenScores(model, seqs);
    console.log('duplicate', JSON.stringify(r.scores));
    expectOnly(r.scores, r.top, PLANTED.duplicate, 0.4, 0.2);
  });

  it('inductionScores(model, seqs) finds L1H0', () => {
    const r = inductionScores(model, seqs);
    console.log('induction', JSON.stringify(r.scores));
    expectOnly(r.scores, r.top, PLANTED.induction, 0.4, 0.2);
  });

  it('inductionPattern marks the token after each earlier occurrence', () => {
    expect(inductionPattern([7, 8, 7, 9])).toEqual([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0, 0],
    ]);
  });

  it('attentionSinkScores(model, seqs) finds L1H1 with mass ≈ 1', () => {
    const r = attentionSinkScores(model, seqs);
    console.log('sink', JSON.stringify(r.scores));
    expectOnly(r.scores, r.top, PLANTED.sink, 0.999, 0.3);
  });

  it('streamingScores(model, seqs) puts exactly the sink and previous-token heads near 1', () => {
    const r = streamingScores(model, seqs, { sinkTokens: 1, recent: 4 });
    console.log('streaming', JSON.stringify(r.scores));
    const streaming = [PLANTED.sink, PLANTED.previous];
    r.scores.forEach((row, layer) =>
      row.forEach((v, head) => {
        if (streaming.some((p) => p.layer === layer && p.head === head)) expect(v).toBeGreaterThan(0.999);
        else expect(v).toBeLessThan(0.3);
      }),
    );
    expect(r.tables!.retrievalness[1][0]).toBeCloseTo(1 - r.scores[1][0], 12);
  });
});

describe('retrieval heads (Wu et al. 2024)', () => {
  it('retrievalScores(model, trials) finds exactly L1H0, scoring 1 per trial: it copies each of the 4 answer tokens (the needle after its cue) once', () => {
    const r = retrievalScores(model, needleTrials(), { maxNewTokens: 4 });
    console.log('retrieval (4 steps)', JSON.stringify(r.scores));
    expect(r.counted).toEqual({ used: 9, total: 9 }); // every trial passes the recall gate
    expect(r.settings).toMatchObject({ span: 'answer', maxNewTokens: 4 });
    r.scores.forEach((row, l) => row.forEach((v, h) => expect(v).toBeCloseTo(l === 1 && h === 0 ? 4 / 4 : 0, 12)));
    expect(retrievalHeads(r.scores)).toEqual([{ layer: 1, head: 0, score: r.scores[1][0] }]);
  });

  it("span: 'needle' (the old score) divides the same 4 copies by the whole 5-token needle: 4/5", () => {
    const r = retrievalScores(model, needleTrials(), { maxNewTokens: 4, span: 'needle' });
    expect(r.settings).toMatchObject({ span: 'needle' });
    r.scores.forEach((row, l) => row.forEach((v, h) => expect(v).toBeCloseTo(l === 1 && h === 0 ? 4 / 5 : 0, 12)));
  });

  it('only copies from inside the answer span count: with the span starting one token later, the copy of the first answer token is left out (3/3, not 4/3)', () => {
    const trials = needleTrials().map((t) => ({ ...t, answerStart: t.answerStart + 1 })); // needle = cue, a1, [a2 a3 a4]
    const r = retrievalScores(model, trials, { maxNewTokens: 4 });
    r.scores.forEach((row, l) => row.forEach((v, h) => expect(v).toBeCloseTo(l === 1 && h === 0 ? 3 / 3 : 0, 12)));
    // the teacher-forced variant counts the same way
    expect(retrievalScoresTeacherForced(model, trials).scores).toEqual(r.scores);
    const bad = { ...needleTrials()[0], answerStart: needleTrials()[0].needleStart - 1 };
    expect(headlensError(() => retrievalScores(model, [bad])).message).toMatch(/trial 0 has answer span \[\d+, \d+\) outside its needle/);
  });

  it('retrievalScores with the default 50 steps still finds only L1H0 above 0.1', () => {
    const r = retrievalScores(model, needleTrials().filter((_, i) => i % 3 === 1));
    console.log('retrieval (50 steps)', JSON.stringify(r.scores));
    expect(retrievalHeads(r.scores).map((h) => [h.layer, h.head])).toEqual([[1, 0]]);
  });

  it('retrievalScoresTeacherForced agrees with decoding on the planted model', () => {
    const trials = needleTrials();
    const exact = retrievalScores(model, trials, { maxNewTokens: 4 });
    const forced = retrievalScoresTeacherForced(model, trials);
    console.log('teacher-forced', JSON.stringify(forced.scores));
    expect(forced.scores).toEqual(exact.scores);
  });

  it('decodesExactly (one teacher-forced pass) says what greedy decoding says, intact and with the retrieval head masked', () => {
    const masked = headAblationHooks(model, [PLANTED.induction], { kind: 'uniform' });
    let agreed = 0;
    for (const hooks of [[], masked]) {
      for (const t of needleTrials()) {
        const decoded = greedyDecode(model, t.tokens, { maxNewTokens: t.answer.length, fwdHooks: hooks });
        const same = decoded.length === t.answer.length && decoded.every((x, j) => x === t.answer[j]);
        expect(decodesExactly(model, t.tokens, t.answer, hooks)).toBe(same);
        agreed += same ? 1 : 0;
      }
    }
    expect(agreed).toBe(needleTrials().length); // every trial exact intact, none with the head masked
  });

  it('a trial that loops over repeated needle tokens scores above 1 unless cap is set', () => {
    const [a, b] = [TOK.LABELS[0], TOK.LABELS[1]];
    const hay = TOK.CONTENT.slice(0, 10);
    const tokens = [TOK.BOS, ...hay, a, b, a, b, TOK.SEP, ...hay, a]; // needle a b a b SEP; the model loops a b a b …
    const trial = { tokens, needleStart: 11, needleEnd: 16, answerStart: 12, answerEnd: 16, answer: [b, a, b, TOK.SEP] };
    const loose = retrievalScores(model, [trial]);
    const capped = retrievalScores(model, [trial], { cap: true });
    console.log('uncapped L1H0', loose.scores[1][0]);
    expect(loose.scores[1][0]).toBeGreaterThan(1);
    expect(capped.scores[1][0]).toBe(1);
  });

  it('a trial whose answer fails the recall gate is left out', () => {
    const trial = { ...needleTrials()[0] };
    trial.answer = [TOK.CONTENT[0], TOK.CONTENT[1]]; // not what the model says
    const r = retrievalScores(model, [trial, needleTrials()[1]], { maxNewTokens: 4 });
    expect(r.counted).toEqual({ used: 1, total: 2 });
  });
});

describe('items that cannot be scored, and results computed on nothing', () => {
  /** A planted trial pushed past n_ctx by filler in front (its needle moves with it). */
  const tooLong = (t: ReturnType<typeof needleTrials>[number]) => {
    const pad = new Array<number>(model.cfg.n_ctx).fill(TOK.CONTENT[0]);
    return { ...t, tokens: [...pad, ...t.tokens], needleStart: t.needleStart + pad.length, needleEnd: t.needleEnd + pad.length, answerStart: t.answerStart + pad.length, answerEnd: t.answerEnd + pad.length };
  };

  it.each([
    ['retrievalScores', retrievalScores],
    ['retrievalScoresTeacherForced', retrievalScoresTeacherForced],
  ] as const)('%s of trials that are all longer than n_ctx is an error naming n_ctx', (_, score) => {
    const e = headlensError(() => score(model, needleTrials().slice(0, 2).map(tooLong), { maxNewTokens: 4 }));
    expect(e.message).toMatch(/retrieval: none of the 2 items can run on .*: trial 0 has \d+ tokens, more than n_ctx 64/);
    expect(e.message).toContain('contextLengths ≤ 64');
  });

  it('retrievalScores drops the trials longer than n_ctx, scores the rest as before, and says how many it dropped', () => {
    const trials = needleTrials();
    const r = retrievalScores(model, [...trials, tooLong(trials[0]), tooLong(trials[1])], { maxNewTokens: 4 });
    expect(r.scores).toEqual(retrievalScores(model, trials, { maxNewTokens: 4 }).scores);
    expect(r.counted).toEqual({ used: 9, total: 9 });
    expect(r.dropped).toEqual({ count: 2, of: 11, reason: `trial 9 has ${trials[0].tokens.length + 64} tokens, more than n_ctx 64` });
    expect(r.warnings).toEqual([`retrieval: 2 of 11 items were dropped (trial 9 has ${trials[0].tokens.length + 64} tokens, more than n_ctx 64); the scores use the other 9`]);
  });

  it('scan() drops the same trials as runScorer and reports them', () => {
    const trials = needleTrials().slice(0, 2);
    const r = scan(model, retrievalScorer([tooLong(trials[0]), ...trials], { maxNewTokens: 4 }));
    expect(r.counted).toEqual({ used: 2, total: 2 });
    expect(r.dropped?.count).toBe(1);
  });

  it('no scorer returns a table no item counted in: runScorer and scan refuse it, saying what makes an item count', () => {
    const trial = { ...needleTrials()[0], answer: [TOK.CONTENT[0], TOK.CONTENT[1]] }; // fails the recall gate
    const e = headlensError(() => retrievalScores(model, [trial, trial], { maxNewTokens: 4 }));
    expect(e.message).toContain('retrieval: none of the 2 items scored counted (an item counts when its answer passes the recall gate');
    const zeroWeight: HeadScorer<number> = { task: 'toy', settings: {}, primary: 'score', items: [1, 2], scoreItem: (m) => ({ tables: { score: zeros(m.cfg.n_layers, m.cfg.n_heads) }, weight: 0 }) };
    expect(headlensError(() => runScorer(model, zeroWeight)).message).toContain('toy: none of the 2 items scored counted (every weight was 0)');
    expect(headlensError(() => scan(model, zeroWeight)).message).toContain('toy: none of the 2 items scored counted');
  });
});

describe('correct-letter heads (Lieberum et al. 2023)', () => {
  it.each([false, true])('correctLetterScores finds exactly L1H0 by the contrast DLA (labels shuffled: %s)', (shuffled) => {
    const prompts = letterPrompts(8, shuffled);
    const r = correctLetterScores(model, prompts);
    console.log('correct-letter contrast', JSON.stringify(r.scores), 'raw', JSON.stringify(r.tables!.raw), 'attention', JSON.stringify(r.tables!.attention));
    expect(r.settings.primary).toBe('contrast');
    // by hand: L1H0 attends to the correct label (≈ 1) and writes COPY = 10 to it and 0 to the other labels, so
    // contrast = 10 − mean(0, 0, 0) = 10 and raw = 10
    expectOnly(r.scores, r.top, PLANTED.induction, 9.9, 0.01);
    expect(r.scores[1][0]).toBeCloseTo(10, 3);
    expect(r.tables!.raw[1][0]).toBeCloseTo(10, 3);
    expect(r.tables!.attention[1][0]).toBeGreaterThan(0.999);
    // the per-head raw DLAs add up to the logit of the correct label (no norm, no biases; the query token is no label)
    const logits = model.forward([prompts[0].tokens]);
    const logit = logits.slice([0, prompts[0].tokens.length - 1, prompts[0].labelTokens[prompts[0].correct]], [1, 1, 1]).dataSync()[0];
    logits.dispose();
    const single = correctLetterScores(model, [prompts[0]]);
    expect(single.tables!.raw.flat().reduce((a, b) => a + b, 0)).toBeCloseTo(logit, 4);
  });

  it('a head that raises every label alike ranks first by raw DLA and scores 0 on the contrast', () => {
    // L1H1 (the sink head, attention ≈ 1 on BOS) made to write 12 to every label's logit from BOS's value
    const m = plantedModel();
    const WV = m.param('blocks.1.attn.W_V').arraySync() as number[][][]; // [head, d_model, d_head]
    const WO = m.param('blocks.1.attn.W_O').arraySync() as number[][][]; // [head, d_head, d_model]
    WV[1][TOK.BOS][0] = 1; // the token subspace starts at 0: BOS's one-hot coordinate
    for (const t of TOK.LABELS) WO[1][0][t] = 12; // W_U reads token t from coordinate t
    m.setParams({ 'blocks.1.attn.W_V': tf.tensor3d(WV), 'blocks.1.attn.W_O': tf.tensor3d(WO) });
    const prompts = letterPrompts(8, true);
    const raw = correctLetterScores(m, prompts, { primary: 'raw' });
    const contrast = correctLetterScores(m, prompts);
    console.log('equal-raiser raw', JSON.stringify(raw.scores), 'contrast', JSON.stringify(contrast.scores));
    expect(raw.settings.primary).toBe('raw');
    expect({ layer: raw.top[0].layer, head: raw.top[0].head }).toEqual({ layer: 1, head: 1 });
    expect(raw.scores[1][1]).toBeCloseTo(12, 3); // 12 × attention to BOS (1 − O(e^-20))
    expect(Math.abs(contrast.scores[1][1])).toBeLessThan(1e-5); // 12 − mean(12, 12, 12)
    expect({ layer: contrast.top[0].layer, head: contrast.top[0].head }).toEqual(PLANTED.induction);
    expect(contrast.tables!.raw).toEqual(raw.scores);
    m.dispose();
  });

  it('labelMutationScores keeps L1H0 first, at 10, with labels in order, shuffled and random', () => {
    const r = labelMutationScores(model, { ordered: letterPrompts(8, 'ordered'), shuffled: letterPrompts(8, 'shuffled'), random: letterPrompts(8, 'random') });
    console.log('label mutations', JSON.stringify(r.heads.slice(0, 3)));
    expect(r.conditions).toEqual(['ordered', 'shuffled', 'random']);
    expect({ layer: r.heads[0].layer, head: r.heads[0].head }).toEqual(PLANTED.induction);
    expect(r.heads[0].ranks).toEqual({ ordered: 1, shuffled: 1, random: 1 });
    for (const v of r.byHead[1][0]) expect(v).toBeCloseTo(10, 3);
    for (const c of r.conditions) expect(r.results[c].top[1].score).toBeLessThan(0.01);
  });

  it('qkSubspaceAnalysis of L1H0: uniform (1/11) at rank 0, the clean head (attention ≈ 1, accuracy 1) at rank d_head', () => {
    const prompts = letterPrompts(8, true);
    const r = qkSubspaceAnalysis(model, PLANTED.induction, prompts);
    console.log('qk subspace', JSON.stringify({ rows: r.rows, full: r.full, sq: r.singularValues.query.slice(0, 6), sk: r.singularValues.key.slice(0, 6) }));
    const d = model.cfg.d_head;
    expect(r.rows.map((x) => x.rank)).toEqual([0, 1, 2, 4, 8, 16, 32, 64, d]);
    expect(r.full.attention).toBeGreaterThan(0.999);
    expect(r.full.accuracy).toBe(1);
    // rank 0: every score 0, so the final position (11 tokens) attends 1/11 to each key
    expect(r.rows[0].attention).toBeCloseTo(1 / 11, 6);
    expect(r.rows[0].accuracy).toBeLessThanOrEqual(0.5);
    const last = r.rows[r.rows.length - 1];
    expect(last.attention).toBeCloseTo(r.full.attention, 6);
    expect([last.attentionKept, last.accuracyKept]).toEqual([expect.closeTo(1, 6), 1]);
    // the queries are one-hots s·e_q (q the correct option's token): one singular direction per distinct q
    expect(r.singularValues.query.filter((x) => x > 1e-6).length).toBe(new Set(prompts.map((p) => p.tokens[p.tokens.length - 1])).size);
  });
});

describe('RazorAttention head selection (Tang et al. 2024)', () => {
  it('razorScores: echo finds L0H0, induction L1H0; razorAttentionHeads keeps the top 14 % by induction and 1 % by echo', () => {
    const { sequences, period, offset } = repeatedBlocks({ n: 2, blockLength: 8, repeats: 4, pool: TOK.CONTENT, distinct: true, bos: TOK.BOS, seed: 5 });
    const r = razorScores(model, sequences, { period, offset });
    const echo = r.tables!.echo;
    console.log('razor induction', JSON.stringify(r.scores), 'echo', JSON.stringify(echo));
    // by hand: the duplicate-token head L0H0 puts all its attention on the token's earlier copies (echo 1), the
    // induction head L1H0 on the tokens after them (induction 1)
    expect(echo[0][0]).toBeCloseTo(1, 5);
    expect(r.scores[1][0]).toBeCloseTo(1, 5);
    expect(r.scores[0][0]).toBeLessThan(1e-5);
    expect(echo[1][0]).toBeLessThan(1e-5);
    // L0H2 and L1H2 attend uniformly over the q + 1 keys: both scores are the mean over queries of copies / (q + 1)
    const len = sequences[0].length;
    const qs = Array.from({ length: len - offset - period }, (_, i) => offset + period + i);
    const uniform = qs.reduce((a, q) => a + Math.floor((q - offset) / period) / (q + 1), 0) / qs.length;
    for (const [l, h] of [[0, 2], [1, 2]]) {
      expect(echo[l][h]).toBeCloseTo(uniform, 5);
      expect(r.scores[l][h]).toBeCloseTo(uniform, 5);
    }
    // previous-token and sink heads look at neither
    for (const [l, h] of [[0, 1], [1, 1]]) expect(Math.max(echo[l][h], r.scores[l][h])).toBeLessThan(1e-5);

    // 6 heads: round(6 · 0.14) = 1 induction head, round(6 · 0.01) = 0 echo heads
    const sel = razorAttentionHeads({ induction: r.scores, echo });
    expect(sel.settings).toEqual({ inductionRatio: 0.14, echoRatio: 0.01, inductionHeads: 1, echoHeads: 0 });
    expect(sel.retrieval).toEqual([PLANTED.induction]);
    expect(sel.streaming).toHaveLength(5);
    const withEcho = razorAttentionHeads({ induction: r.scores, echo }, { echoRatio: 1 / 6 });
    expect(withEcho.retrieval).toEqual([PLANTED.duplicate, PLANTED.induction]);
  });
});

describe('temporal heads (2025)', () => {
  it('temporalScores finds exactly L1H2, also on textual aliases, and no head moves the controls', () => {
    const r = temporalScores(model, temporalPairs());
    console.log('temporal selectivity', JSON.stringify(r.scores), 'tables', JSON.stringify(r.tables));
    expectOnly(r.scores, r.top, PLANTED.temporal, 9, 0.01);
    expect(r.tables!.alias[1][2]).toBeGreaterThan(9);
    for (const row of r.tables!.control) for (const v of row) expect(Math.abs(v)).toBeLessThan(1e-3);
  });
});

describe('IOI head classes by path patching (Wang et al. 2022)', () => {
  it('ioiHeadClasses finds exactly L1H0 as the name mover and no other class on the planted model', () => {
    const r = ioiHeadClasses(model, ioiPrompts(6));
    console.log('ioi', JSON.stringify({ classes: r.classes, clean: r.clean, corrupted: r.corrupted, logits: r.tables.logits, sInhibition: r.tables.sInhibition }));
    expect(r.classes.nameMovers.map(({ layer, head }) => ({ layer, head }))).toEqual([PLANTED.induction]);
    // by hand: clean LD = 10 − 1 = 9 (copy of IO vs the direct path of S), ABC LD = 0; patched, L1H0 spreads 10/6 over
    // the six tokens while the direct path still adds 1 to S: LD = −1, effect (−1 − 9) / 9
    expect(r.classes.nameMovers[0].effect).toBeCloseTo(-10 / 9, 4);
    // the strength table carries the name mover's share with the sign that reads as strength
    expect(r.nameMoverStrength[PLANTED.induction.layer][PLANTED.induction.head]).toBeCloseTo(10 / 9, 4);
    expect(r.nameMoverStrength).toEqual(r.tables.logits.map((row) => row.map((x) => -x)));
    expect([r.clean, r.corrupted].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([9, 0]);
    expect(r.classes.negativeNameMovers).toEqual([]);
    // no other head copies names, so with L1H0 mean-ablated none takes over its job
    expect(r.classes.backupNameMovers).toEqual([]);
    expect(r.classes.sInhibition).toEqual([]); // nothing in layer 0 writes what L1H0's query reads
    expect(r.attention.endToIo[1][0]).toBeGreaterThan(0.999);
  });
});

describe('scorers leave no tensors behind', () => {
  it('every scorer, called a second time, leaves tf.memory().numTensors unchanged', () => {
    const calls = [
      () => previousTokenScores(model, seqs.slice(0, 1)),
      () => inductionScores(model, seqs.slice(0, 1)),
      () => duplicateTokenScores(model, seqs.slice(0, 1)),
      () => attentionSinkScores(model, seqs.slice(0, 1)),
      () => streamingScores(model, seqs.slice(0, 1), { sinkTokens: 1, recent: 4 }),
      () => razorScores(model, seqs.slice(0, 1), { period: 20 }),
      () => retrievalScores(model, needleTrials().slice(0, 1), { maxNewTokens: 4 }),
      // 2 of the 4 answer tokens fail the recall gate (> 0.5): refused, and the refusal leaks nothing either
      () => headlensError(() => retrievalScores(model, needleTrials().slice(0, 1), { maxNewTokens: 2 })),
      () => retrievalScoresTeacherForced(model, needleTrials().slice(0, 1)),
      // decode hooks: the intact prefill's KV cache is freed
      () => decodesExactly(model, needleTrials()[0].tokens, needleTrials()[0].answer, [], headAblationHooks(model, [PLANTED.induction], { kind: 'uniform' })),
      () => greedyDecode(model, needleTrials()[0].tokens, { maxNewTokens: 3, decodeHooks: headAblationHooks(model, [PLANTED.induction], { kind: 'uniform' }) }),
      () => correctLetterScores(model, letterPrompts(1, false)),
      () => qkSubspaceAnalysis(model, PLANTED.induction, letterPrompts(1, false), { ranks: [0, 4] }),
      () => temporalScores(model, temporalPairs().slice(0, 3)),
      () => ioiHeadClasses(model, ioiPrompts(2)),
    ];
    for (const call of calls) {
      call();
      const before = tf.memory().numTensors;
      call();
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
