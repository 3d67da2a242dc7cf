/**
 * IOI head classes by path patching (Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect
 * Object Identification in GPT-2 small"), following their code (redwoodresearch/Easy-Transformer,
 * experiments.py and ioi_utils.py `path_patching`). The paper works backwards from the logits, one class at a
 * time, with clean prompts (ABBA/BABA) and their ABC versions (IO, S1 and S2 replaced by three other names;
 * datasets/ioi.ts), metric logit(IO) − logit(S) at END:
 *   1. name movers: heads whose direct path to the logits carries the logit difference (patching it from ABC
 *      lowers it) and which attend from END to IO; negative name movers: the same path raises it.
 *   2. S-inhibition heads: path to the name movers' queries lowers it.
 *   3. induction and duplicate-token heads: path to the S-inhibition heads' values lowers it; told apart by
 *      where S2 attends (induction: the token after S1; duplicate-token: S1).
 *   4. previous-token heads: path to the induction heads' keys lowers it.
 *   Backup name movers (§3.4): with the name movers mean-ablated over the ABC prompts, other heads that attend to
 *   IO start writing it. Here: a head other than the name movers, in their layers or later, that attends from
 *   END more to IO than to S and whose direct logit attribution to IO − S grows by at least `threshold` of the
 *   clean logit difference once the name movers are ablated.
 * In GPT-2 small this gives 26 heads in 7 classes (name movers 9.9, 9.6, 10.0; negative 10.7, 11.10;
 * S-inhibition 7.3, 7.9, 8.6, 8.10; induction 5.5, 6.9 (5.8, 5.9 weaker); duplicate token 0.1, 3.0 (0.10);
 * previous token 2.2, 4.11; backup 10.10, 10.6, 10.2, 10.1, 11.2, 9.7, 9.0, 11.9) that keep 87 % of the logit
 * difference.
 *
 * Positions (`positions: 'paper'`, the default): as their code, a sender's output is patched at one position
 * and so is the receiver's input: END for the direct path and the name movers' queries, S2 for the S-inhibition
 * heads' values, S1+1 for the induction heads' keys (one position per prompt, so ABBA and BABA prompts batch
 * together). `positions: 'all'` patches every position (headlens before issue 19).
 * Effects (`normalise: 'clean'`, the default): (patched − clean) / clean, as their code divides by the clean
 * logit difference; `normalise: 'gap'` divides by |clean − corrupted| instead (with ABC prompts the corrupted
 * difference is about 0, so the two nearly agree). A head joins a class when its effect passes `threshold`
 * (default 0.1), at most `maxPerClass` heads, strongest first.
 * Copy scores (§3.1, their `check_copy_circuit`): the residual stream after block 0 at IO, S1 and S2, through the
 * head's ln1, its OV circuit (with b_V) and ln_final, unembedded: the share of those name positions whose name is
 * among the top 5 logits (`copyScores.positive`), and with the output negated (`copyScores.negative`, for negative
 * name movers). Wang et al. report over 95 % for the name movers and 98 % (negated) for the negative ones. Their
 * code applies block 1's ln1 for every head; here each head's own ln1.
 * Deviations that remain: the copy score is reported, not a filter (the paper uses it to confirm the heads the
 * patching found); previous-token heads are reported with their attention S1+1 → S1 (`attention.s1NextToS1`) but
 * not filtered by it. Thresholds are headlens' (the paper picks heads by eye from the patching plots).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { IoiTokens } from '../../datasets/ioi.js';
import { actName } from '../../hooks/act_name.js';
import { headDlaReads } from '../attribution/dla.js';
import { headAblationHooks, type HeadRef } from '../interventions/ablation.js';
import { logitDiff } from '../metrics.js';
import { pathPatchingSweepReads, type Receiver } from '../interventions/path_patching.js';
import { readAsync, readNested, readSync, type Reads, readNestedPair } from '../../util/reads.js';
import { zeros } from './head_scores.js';

export interface IoiClassOptions {
  threshold?: number;
  /** 'paper' (default): END / S2 / S1+1 per step, as Wang et al.'s code; 'all': every position. */
  positions?: 'paper' | 'all';
  /** 'clean' (default): effects over the clean logit difference, as their code; 'gap': over |clean − corrupted|. */
  normalise?: 'clean' | 'gap';
  maxPerClass?: number;
  /** Called after each chunk of a path-patching sweep with (sender sets done, in all, the sweep: logits, q, v or k). */
  onProgress?: (done: number, total: number, step: string) => void;
}

export type ClassHead = HeadRef & { effect: number };

export interface IoiClasses {
  classes: {
    nameMovers: ClassHead[];
    negativeNameMovers: ClassHead[];
    /** effect: growth of the head's DLA to IO − S with the name movers mean-ablated, over the clean logit difference. */
    backupNameMovers: ClassHead[];
    sInhibition: ClassHead[];
    induction: ClassHead[];
    duplicateToken: ClassHead[];
    previousToken: ClassHead[];
  };
  /**
   * Name-mover strength per head, [n_layers][n_heads]: the share of the IO − S logit difference the head's
   * direct path to the logits carries, −tables.logits. Positive for name movers (patching the path from the
   * ABC run loses that share), negative for negative name movers (the path works against IO); the score to
   * rank and plot, with its sign as it is.
   */
  nameMoverStrength: number[][];
  /**
   * Normalised path-patching effects per step, (patched − clean) / clean (or / |clean − corrupted| with
   * normalise: 'gap'), [n_layers][n_heads]
   * (0 for layers a step does not sweep): negative where the path carries the logit difference.
   */
  tables: Record<'logits' | 'sInhibition' | 'values' | 'keys', number[][]>;
  /** Copy scores per head [n_layers][n_heads] (see the module essay): name in the top 5 of the head's OV output, and of its negation. */
  copyScores: { positive: number[][]; negative: number[][] };
  /** Mean attention on clean prompts: END→IO, END→S1 (endToS), END→S2, S2→S1+1, S2→S1, S1+1→S1. */
  attention: Record<'endToIo' | 'endToS' | 'endToS2' | 's2ToS1Next' | 's2ToS1' | 's1NextToS1', number[][]>;
  settings: Record<string, unknown>;
  clean: number;
  corrupted: number;
}

function* meanAttention(model: HookedTransformer, prompts: IoiTokens[], from: (p: IoiTokens) => number, to: (p: IoiTokens) => number): Reads<number[][]> {
  const { n_layers, n_heads } = model.cfg;
  const out = zeros(n_layers, n_heads);
  const names = Array.from({ length: n_layers }, (_, l) => actName('pattern', l));
  for (const p of prompts) {
    const { logits, cache } = model.runWithCache([p.clean], { names });
    let at: tf.Tensor;
    try {
      at = tf.tidy(() => tf.stack(names.map((n) => cache.get(n).slice([0, 0, from(p), to(p)], [1, -1, 1, 1]).reshape([n_heads])))); // [layer, head]
    } finally {
      cache.dispose();
      logits.dispose();
    }
    const a = yield* readNested<number[][]>(at);
    a.forEach((row, l) => row.forEach((v, h) => (out[l][h] += v / prompts.length)));
  }
  return out;
}

/**
 * Wang et al.'s copy score of every head: at each prompt's IO, S1 and S2, the residual stream after block 0 through
 * the head's ln1, W_V (+ b_V) and W_O, then ln_final and the unembedding; the share of positions whose name is in
 * the top `k` (5) logits, for the output (`positive`) and its negation (`negative`).
 */
export function ioiCopyScores(model: HookedTransformer, prompts: IoiTokens[], k = 5): { positive: number[][]; negative: number[][] } {
  return readSync(ioiCopyScoresReads(model, prompts, k));
}

/** ioiCopyScores, read asynchronously (WebGPU in Node). */
export function ioiCopyScoresAsync(model: HookedTransformer, prompts: IoiTokens[], k = 5): Promise<{ positive: number[][]; negative: number[][] }> {
  return readAsync(ioiCopyScoresReads(model, prompts, k));
}

function* ioiCopyScoresReads(model: HookedTransformer, prompts: IoiTokens[], k: number): Reads<{ positive: number[][]; negative: number[][] }> {
  const { n_layers, n_heads, d_model } = model.cfg;
  const group = n_heads / (model.cfg.n_key_value_heads ?? n_heads);
  const resid = actName('resid_post', 0);
  const rows: tf.Tensor[] = [];
  const names: number[] = [];
  for (const p of prompts) {
    const { logits, cache } = model.runWithCache([p.clean], { names: [resid] });
    const positions = [p.ioPos, p.s1Pos, p.s2Pos];
    rows.push(tf.tidy(() => tf.concat(positions.map((i) => cache.get(resid).slice([0, i, 0], [1, 1, d_model]).reshape([1, d_model])))));
    names.push(p.io, p.s, p.s);
    cache.dispose();
    logits.dispose();
  }
  const positive = zeros(n_layers, n_heads);
  const negative = zeros(n_layers, n_heads);
  try {
    const x0 = tf.concat(rows) as tf.Tensor2D; // [prompt·3, d_model]
    try {
      for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) {
        const g = Math.floor(h / group);
        const [posT, negT] = tf.tidy(() => {
          const a = `blocks.${l}.attn`;
          const x = model.applyNorm(`blocks.${l}.ln1`, x0) as tf.Tensor2D;
          let v = tf.matMul(x, model.param(`${a}.W_V`).slice([g, 0, 0], [1, -1, -1]).squeeze([0]) as tf.Tensor2D); // [rows, d_head]
          if (model.cfg.attn_qkv_bias) v = v.add(model.param(`${a}.b_V`).slice([g, 0], [1, -1]));
          const o = tf.matMul(v, model.param(`${a}.W_O`).slice([h, 0, 0], [1, -1, -1]).squeeze([0]) as tf.Tensor2D); // [rows, d_model]
          const top = (y: tf.Tensor) => tf.topk(model.unembed(model.applyNorm('ln_final', y)) as tf.Tensor2D, k).indices; // [rows, k]
          return [top(o), top(o.neg())];
        });
        const [pos, neg] = yield* readNestedPair<number[][], number[][]>(posT, negT);
        positive[l][h] = pos.filter((ids, i) => ids.includes(names[i])).length / names.length;
        negative[l][h] = neg.filter((ids, i) => ids.includes(names[i])).length / names.length;
      }
    } finally {
      x0.dispose();
    }
  } finally {
    for (const r of rows) r.dispose();
  }
  return { positive, negative };
}

/**
 * Finds the IOI head classes of a model by path patching, working back from the logits. Signs: `tables` and
 * each class head's `effect` are (patched − clean) / |clean − corrupted|, so a name mover's effect is negative
 * (patching its path loses logit difference); `nameMoverStrength` is the same table with the sign that reads
 * as strength (positive for name movers), for ranking and pictures, so no caller flips it.
 */
export function ioiHeadClasses(model: HookedTransformer, prompts: IoiTokens[], opts: IoiClassOptions = {}): IoiClasses {
  return readSync(ioiHeadClassesReads(model, prompts, opts));
}

/** ioiHeadClasses, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function ioiHeadClassesAsync(model: HookedTransformer, prompts: IoiTokens[], opts: IoiClassOptions = {}): Promise<IoiClasses> {
  return readAsync(ioiHeadClassesReads(model, prompts, opts));
}

function* ioiHeadClassesReads(model: HookedTransformer, prompts: IoiTokens[], opts: IoiClassOptions): Reads<IoiClasses> {
  if (!prompts.length) throw new HeadlensError('ioi: no prompts', 'pass IOI prompts in tokens (ioiTokens)');
  const len = prompts[0].clean.length;
  if (prompts.some((p) => p.clean.length !== len || p.corrupted.length !== len)) {
    throw new HeadlensError('ioi: prompts differ in length in tokens', 'use one template per call, or prompts of one length');
  }
  const threshold = opts.threshold ?? 0.1;
  const maxPerClass = opts.maxPerClass ?? 5;
  const positions = opts.positions ?? 'paper';
  const normalise = opts.normalise ?? 'clean';
  if (positions !== 'paper' && positions !== 'all') throw new HeadlensError(`ioi: positions '${positions}' is not 'paper' or 'all'`);
  if (normalise !== 'clean' && normalise !== 'gap') throw new HeadlensError(`ioi: normalise '${normalise}' is not 'clean' or 'gap'`);
  // one position per prompt for each step's senders and receivers (Wang et al.'s code patches both at the same word)
  const at = (pos: (p: IoiTokens) => number) => (positions === 'paper' ? { senderPositions: prompts.map((p) => [pos(p)]), receiverPositions: prompts.map((p) => [pos(p)]) } : {});
  const { n_layers, n_heads } = model.cfg;
  const base = { clean: prompts.map((p) => p.clean), corrupted: prompts.map((p) => p.corrupted), metric: logitDiff(prompts.map((p) => p.io), prompts.map((p) => p.s)) };
  let gap = 0;
  let cleanLd = 0;
  let corruptLd = 0;
  const sweep = function* (receiver: Receiver, pos: (p: IoiTokens) => number): Reads<number[][]> {
    const t = zeros(n_layers, n_heads);
    const step = receiver.kind === 'logits' ? 'logits' : receiver.inputs.join('');
    const lab = yield* pathPatchingSweepReads(model, receiver, { ...base, ...at(pos), onProgress: opts.onProgress && ((done, total) => opts.onProgress!(done, total, step)) });
    [cleanLd, corruptLd] = [lab.meta.clean as number, lab.meta.corrupted as number];
    gap = Math.abs(cleanLd - corruptLd);
    if (!(gap > 0)) throw new HeadlensError('ioi: clean and corrupted prompts give the same logit difference', 'the model does not do the task; nothing to attribute');
    const scale = normalise === 'clean' ? Math.abs(cleanLd) : gap;
    if (!(scale > 0)) throw new HeadlensError('ioi: the clean logit difference is 0', "the model does not do the task; or use normalise: 'gap'");
    for (let l = 0; l < lab.shape[0]; l++) for (let h = 0; h < n_heads; h++) t[l][h] = (lab.get(l, h) - cleanLd) / scale;
    return t;
  };
  const pick = (t: number[][], sign: 1 | -1, ok: (l: number, h: number) => boolean = () => true, upTo = n_layers): ClassHead[] => {
    const hs: ClassHead[] = [];
    for (let l = 0; l < upTo; l++) for (let h = 0; h < n_heads; h++) if (sign * t[l][h] >= threshold && ok(l, h)) hs.push({ layer: l, head: h, effect: t[l][h] });
    return hs.sort((a, b) => sign * (b.effect - a.effect)).slice(0, maxPerClass);
  };
  const end = (p: IoiTokens) => p.clean.length - 1;
  const attention = {
    endToIo: yield* meanAttention(model, prompts, end, (p) => p.ioPos),
    endToS: yield* meanAttention(model, prompts, end, (p) => p.s1Pos),
    endToS2: yield* meanAttention(model, prompts, end, (p) => p.s2Pos),
    s2ToS1Next: yield* meanAttention(model, prompts, (p) => p.s2Pos, (p) => p.s1Pos + 1),
    s2ToS1: yield* meanAttention(model, prompts, (p) => p.s2Pos, (p) => p.s1Pos),
    s1NextToS1: yield* meanAttention(model, prompts, (p) => p.s1Pos + 1, (p) => p.s1Pos),
  };
  // a name mover attends to IO more than to both S tokens together (the first toy-lm's L2H0 attended to S2 with 0.98 and
  // raised IO − S by lowering S: compared with S1 alone it passed for a name mover)
  const toIo = (l: number, h: number) => attention.endToIo[l][h] > attention.endToS[l][h] + attention.endToS2[l][h];
  const tables = { logits: yield* sweep({ kind: 'logits' }, end), sInhibition: zeros(n_layers, n_heads), values: zeros(n_layers, n_heads), keys: zeros(n_layers, n_heads) };
  const nameMovers = pick(tables.logits, -1, toIo);
  const negativeNameMovers = pick(tables.logits, 1, toIo);
  const firstLayer = (hs: HeadRef[]) => Math.min(...hs.map((h) => h.layer));
  const backupNameMovers = nameMovers.length ? yield* backupNameMoverSearch(model, prompts, nameMovers, cleanLd, threshold, maxPerClass, toIo) : [];
  let sInhibition: ClassHead[] = [];
  let induction: ClassHead[] = [];
  let duplicateToken: ClassHead[] = [];
  let previousToken: ClassHead[] = [];
  if (nameMovers.length && firstLayer(nameMovers) > 0) {
    tables.sInhibition = yield* sweep({ kind: 'heads', heads: nameMovers, inputs: ['q'] }, end);
    sInhibition = pick(tables.sInhibition, -1, undefined, firstLayer(nameMovers));
  }
  if (sInhibition.length && firstLayer(sInhibition) > 0) {
    tables.values = yield* sweep({ kind: 'heads', heads: sInhibition, inputs: ['v'] }, (p) => p.s2Pos);
    const upTo = firstLayer(sInhibition);
    const moving = (l: number, h: number) => Math.abs(tables.values[l][h]) >= threshold;
    induction = pick(tables.values, -1, (l, h) => moving(l, h) && attention.s2ToS1Next[l][h] > attention.s2ToS1[l][h], upTo);
    duplicateToken = pick(tables.values, -1, (l, h) => moving(l, h) && attention.s2ToS1[l][h] >= attention.s2ToS1Next[l][h], upTo);
  }
  if (induction.length && firstLayer(induction) > 0) {
    tables.keys = yield* sweep({ kind: 'heads', heads: induction, inputs: ['k'] }, (p) => p.s1Pos + 1);
    previousToken = pick(tables.keys, -1, undefined, firstLayer(induction));
  }
  // the clean/corrupted metrics are the same in every sweep; keep the ones of the logits sweep
  return {
    classes: { nameMovers, negativeNameMovers, backupNameMovers, sInhibition, induction, duplicateToken, previousToken },
    copyScores: yield* ioiCopyScoresReads(model, prompts, 5),
    nameMoverStrength: tables.logits.map((row) => row.map((x) => -x)),
    tables,
    attention,
    settings: {
      task: 'ioi',
      prompts: prompts.length,
      threshold,
      maxPerClass,
      metric: 'logit(IO) − logit(S) at the last position',
      positions,
      patchedAt: positions === 'paper' ? { logits: 'END', q: 'END', v: 'S2', k: 'S1+1' } : 'every position',
      normalise,
      effect: normalise === 'clean' ? '(patched − clean) / clean' : '(patched − clean) / |clean − corrupted|',
      copyScore: 'resid after block 0 at IO, S1, S2 → ln1 → OV → ln_final → unembed: name in the top 5 (reported, not a filter)',
    },
    clean: cleanLd,
    corrupted: corruptLd,
  };
}

/** Heads whose direct effect on IO − S grows when `movers` are mean-ablated over the corrupted prompts (see the module essay). */
function* backupNameMoverSearch(
  model: HookedTransformer,
  prompts: IoiTokens[],
  movers: HeadRef[],
  cleanLd: number,
  threshold: number,
  maxPerClass: number,
  toIo: (l: number, h: number) => boolean,
): Reads<ClassHead[]> {
  const { n_layers, n_heads } = model.cfg;
  const layers = [...new Set(movers.map((h) => h.layer))];
  const { logits, cache: reference } = model.runWithCache(prompts.map((p) => p.corrupted), { names: layers.map((l) => actName('z', l)) });
  logits.dispose();
  try {
    const hooks = headAblationHooks(model, movers, { kind: 'mean', reference });
    const growth = zeros(n_layers, n_heads);
    for (const p of prompts) {
      const end = p.clean.length - 1;
      const intact = yield* headDlaReads(model, p.clean, end, [p.io, p.s], []);
      const ablated = yield* headDlaReads(model, p.clean, end, [p.io, p.s], hooks);
      for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) {
        growth[l][h] += (ablated[l][h][0] - ablated[l][h][1] - (intact[l][h][0] - intact[l][h][1])) / prompts.length;
      }
    }
    const first = Math.min(...layers);
    const out: ClassHead[] = [];
    for (let l = first; l < n_layers; l++) for (let h = 0; h < n_heads; h++) {
      const effect = growth[l][h] / Math.abs(cleanLd);
      if (!movers.some((m) => m.layer === l && m.head === h) && effect >= threshold && toIo(l, h)) out.push({ layer: l, head: h, effect });
    }
    return out.sort((a, b) => b.effect - a.effect).slice(0, maxPerClass);
  } finally {
    reference.dispose();
  }
}
