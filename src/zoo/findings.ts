/**
 * What a zoo model's model card reports about its heads, measured with headlens' own scorers and
 * interventions: for toy-lm, one function per task of issue 6's acceptance (retrieval, IOI, temporal,
 * correct letter). `tests/toy_lm_acceptance.ts` checks the criteria on these numbers, and
 * `headlens findings --model DIR` prints them for any trained folder (a run in progress, a variant).
 * Every measure runs on held-out data where the mixture has some (IOI_HELD_OUT names, for the logit difference and
 * the IOI classes alike; the scan's own needle,
 * the seeds below, which the training data never draws).
 */
import { ioiPrompts, ioiTokens, type IoiCorruption, type IoiTokens } from '../datasets/ioi.js';
import { mcqItems, mcqTokens, type LetterPrompt } from '../datasets/mcq.js';
import { temporalItems, temporalTokenPairs } from '../datasets/temporal.js';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { headAblationHooks, type HeadRef } from '../interp/interventions/ablation.js';
import { headLabel } from '../interp/head_label.js';
import { logitDiff } from '../interp/metrics.js';
import { pathPatch } from '../interp/interventions/path_patching.js';
import { runScorer, topHeads, type TopHead } from '../interp/scores/head_scores.js';
import { ioiHeadClasses } from '../interp/scores/ioi_classes.js';
import { retrievalHeads } from '../interp/scores/retrieval.js';
import { factAccuracy, ioiLogitDiff, letterAccuracy } from '../interp/scores/task_metrics.js';
import { ioiTask, scanTask, taskCausalCheck } from '../interp/scores/tasks.js';
import { IOI_HELD_OUT } from './toy_lm_data.js';
import { Random } from '../util/random.js';

const label = (hs: HeadRef[]) => hs.map((h) => headLabel(h.layer, h.head));

/** The heads a scorer ranks first: those within half of the best score, at most `max` (at least one). */
export function leaders(top: TopHead[], max: number): HeadRef[] {
  return top
    .filter((h, i) => i === 0 || (h.score > 0 && h.score >= top[0].score / 2))
    .slice(0, max)
    .map(({ layer, head }) => ({ layer, head }));
}

function bos(model: HookedTransformer): number[] {
  const id = model.cfg.bos_token_id;
  if (id === undefined || id === null) throw new HeadlensError('findings need a model with a BOS token (bos_token_id in its config)', 'set bos_token_id');
  return [id];
}

/** Retrieval (Wu et al.), part 1: the scan's scores (copies from the needle's answer, 50 decoded tokens at most) and the heads above 0.1. */
export function retrievalScan(model: HookedTransformer, opts: { samples?: number } = {}) {
  const setup = scanTask(model, 'retrieval', { samples: opts.samples ?? 8, seed: 0 });
  const scores = runScorer(model, setup.scorer);
  return { setup, scores: scores.scores, settings: scores.settings, found: retrievalHeads(scores.scores, 0.1), top: topHeads(scores.scores, 6), counted: scores.counted };
}

/**
 * Retrieval, part 2: needle accuracy with up to 3 of the heads found masked while decoding (the prompt before
 * the last token intact, as Wu et al.), against as many random heads from outside the top 100 (`draws` seeded
 * draws). Apart from part 1 so that a caller can yield in between (a test worker that blocks
 * its event loop for 60 s is declared dead).
 */
export function retrievalMasking(model: HookedTransformer, scan: ReturnType<typeof retrievalScan>, opts: { draws?: number } = {}) {
  const { setup, found } = scan;
  const heads = found.slice(0, 3).map(({ layer, head }) => ({ layer, head }));
  const base = { heads: label(heads), scores: found.slice(0, 6), top: scan.top, counted: scan.counted, settings: scan.settings };
  if (!heads.length) return { ...base, masking: undefined };
  const check = taskCausalCheck(model, setup.causal!, heads, scan.scores, { draws: opts.draws ?? 5, seed: 1 });
  const masking = {
    baseline: check.baseline.main,
    masked: check.top.main,
    random: check.random.map((r) => ({ heads: label(r.heads), accuracy: r.main })),
    randomMean: check.randomMean.main,
    settings: check.settings,
  };
  return { ...base, masking };
}

/** Retrieval: both parts at once. */
export function retrievalFindings(model: HookedTransformer) {
  return retrievalMasking(model, retrievalScan(model));
}

/**
 * IOI (Wang et al.): the logit difference on 40 stories with held-out names, the IOI classes headlens finds on
 * 16 prompts that use held-out names only (IOI_HELD_OUT, never in a training story), the share of the clean logit
 * difference the name movers' direct paths carry on those prompts, and the head whose direct path matters most
 * with where it looks from the last position. Defaults as Wang et al.: ABC corruption, paths patched at END
 * (`corruption: 's2'`, `positions: 'all'` give headlens' earlier measure). toy-lm's word lists are headlens' own
 * (its vocabulary cannot spell the paper's templates).
 */
export function ioiFindings(model: HookedTransformer, opts: { corruption?: IoiCorruption; positions?: 'paper' | 'all' } = {}) {
  const tok = model.tokenizer;
  if (!tok) throw new HeadlensError('IOI findings need a model with a tokenizer', 'use a model folder with tokenizer.json');
  const corruption = opts.corruption ?? 'abc';
  const positions = opts.positions ?? 'paper';
  const heldOut = ioiPrompts({ n: 40, seed: 77, lists: 'headlens', names: [...IOI_HELD_OUT], corruption })
    .prompts.map((p) => ioiTokens(p, tok, bos(model)))
    .filter((p): p is IoiTokens => p !== undefined);
  const heldOutLogitDiff = ioiLogitDiff(model, heldOut);
  const task = ioiTask(model, { samples: 16, seed: 3, lists: 'headlens', names: IOI_HELD_OUT, corruption });
  const { prompts } = task;
  const classes = ioiHeadClasses(model, prompts, { positions });
  const movers = classes.classes.nameMovers.map(({ layer, head }) => ({ layer, head }));
  const base = { clean: prompts.map((p) => p.clean), corrupted: prompts.map((p) => p.corrupted), metric: logitDiff(prompts.map((p) => p.io), prompts.map((p) => p.s)) };
  const endOnly = positions === 'paper' ? { senderPositions: [prompts[0].clean.length - 1] } : {};
  const patchedDirect = movers.length ? pathPatch(model, movers, { kind: 'logits' }, { ...base, ...endOnly }) : classes.clean;
  // the control: as many seeded random heads, never the name movers, their direct paths patched the same way
  const rng = new Random(11);
  const others = Array.from({ length: model.cfg.n_layers * model.cfg.n_heads }, (_, i) => ({ layer: Math.floor(i / model.cfg.n_heads), head: i % model.cfg.n_heads }))
    .filter((h) => !movers.some((m) => m.layer === h.layer && m.head === h.head));
  const randomDraws = movers.length
    ? Array.from({ length: 8 }, () => {
        const pool = [...others];
        const heads = Array.from({ length: movers.length }, () => pool.splice(rng.int(0, pool.length), 1)[0]);
        const v = pathPatch(model, heads, { kind: 'logits' }, { ...base, ...endOnly });
        return { heads: label(heads), carried: (classes.clean - v) / classes.clean };
      })
    : [];
  const best = topHeads(classes.nameMoverStrength)[0];
  const look = (k: keyof typeof classes.attention) => classes.attention[k][best.layer][best.head];
  const found = Object.entries(classes.classes).filter(([, hs]) => hs.length).map(([k]) => k);
  return {
    settings: { ...classes.settings, ...task.settings, heldOutNames: [...IOI_HELD_OUT] },
    heldOutPrompts: heldOut.length,
    heldOutLogitDiff,
    classPrompts: prompts.length,
    clean: classes.clean,
    corrupted: classes.corrupted,
    classes: classes.classes,
    /** Which of Wang et al.'s seven classes have at least one head. */
    classesFound: found,
    nameMovers: label(movers),
    patchedDirect,
    /** Share of the clean logit difference the name movers' direct paths carry (0 with no name movers). */
    carried: (classes.clean - patchedDirect) / classes.clean,
    /** The same loss over the clean–corrupted gap (ABC prompts can go below 0, so `carried` can pass 100 %). */
    carriedOfGap: (classes.clean - patchedDirect) / (classes.clean - classes.corrupted),
    /** The same share for 8 seeded draws of as many random heads (never the name movers), and their mean. */
    random: randomDraws,
    randomCarriedMean: randomDraws.length ? randomDraws.reduce((a, d) => a + d.carried, 0) / randomDraws.length : 0,
    strongestDirect: { head: headLabel(best.layer, best.head), share: best.score, endToIo: look('endToIo'), endToS1: look('endToS'), endToS2: look('endToS2') },
  };
}

/** Temporal heads: the leaders of the temporal scan (up to 3), fact accuracy with them ablated, their response to year aliases. */
export function temporalFindings(model: HookedTransformer) {
  const setup = scanTask(model, 'temporal', { samples: 8, seed: 0 });
  const scores = runScorer(model, setup.scorer);
  const heads = leaders(scores.top, 3);
  const { pairs } = temporalTokenPairs(temporalItems({ seed: 0 }), model.tokenizer!, bos(model));
  const of = (k: string) => pairs.filter((p) => p.kind === k);
  const hooks = headAblationHooks(model, heads, setup.causal!.ablation);
  const acc = (h: typeof hooks) => ({ temporal: factAccuracy(model, of('temporal'), h), alias: factAccuracy(model, of('alias'), h), control: factAccuracy(model, of('control'), h) });
  const alias = scores.tables!.alias;
  const sorted = alias.flat().sort((a, b) => a - b);
  return {
    heads: label(heads),
    top: scores.top.slice(0, 5),
    before: acc([]),
    after: acc(hooks),
    aliasOfFound: heads.map((h) => alias[h.layer][h.head]),
    aliasMedian: sorted[Math.floor(sorted.length / 2)],
    pairs: { temporal: of('temporal').length, alias: of('alias').length, control: of('control').length },
  };
}

/**
 * Correct-letter heads (Lieberum et al.): the scan's leaders (up to 3) by the contrast DLA (the correct label against
 * the mean of the others; `raw` is the DLA to the correct label alone, beside it), and MCQ accuracy and letter rate
 * with them ablated, per labelling.
 */
export function letterFindings(model: HookedTransformer) {
  const setup = scanTask(model, 'correct-letter', { samples: 16, seed: 0 });
  const scores = runScorer(model, setup.scorer);
  const heads = leaders(scores.top, 3);
  const tok = model.tokenizer!;
  const prefix = bos(model);
  const held = (labels: 'ordered' | 'shuffled' | 'random') =>
    mcqItems({ n: 48, seed: 4242, labels })
      .items.map((it) => mcqTokens(it, tok, prefix))
      .filter((p): p is LetterPrompt => p !== undefined);
  const hooks = headAblationHooks(model, heads, setup.causal!.ablation);
  const labelling = Object.fromEntries(
    (['ordered', 'shuffled', 'random'] as const).map((m) => {
      const prompts = held(m);
      return [m, { before: letterAccuracy(model, prompts), after: letterAccuracy(model, prompts, hooks) }];
    }),
  ) as Record<'ordered' | 'shuffled' | 'random', { before: { accuracy: number; letterRate: number }; after: { accuracy: number; letterRate: number } }>;
  const raw = scores.tables!.raw;
  return {
    score: scores.settings.primary as string,
    heads: label(heads),
    top: scores.top.slice(0, 5).map((t) => ({ ...t, raw: raw[t.layer][t.head] })),
    topRaw: topHeads(raw, 5),
    attention: heads.map((h) => scores.tables!.attention[h.layer][h.head]),
    ...labelling,
  };
}

export const FINDINGS = { retrieval: retrievalFindings, ioi: ioiFindings, temporal: temporalFindings, 'correct-letter': letterFindings } as const;
export type FindingTask = keyof typeof FINDINGS;
