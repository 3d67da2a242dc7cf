/**
 * A hand-built attention-only model whose heads do known things (weights set with setParams): the scorers' tests
 * run on it, and a notebook can show what a scorer finds where the answer is known. No norms, standard positions,
 * 2 layers × 3 heads; the residual stream is split into one-hot subspaces so every head reads and writes exactly
 * one thing:
 *   L0H0 duplicate-token head (attends to earlier copies of its token, never to itself)
 *   L0H1 previous-token head (query q attends to key q − 1; writes "previous token" into its own subspace)
 *   L0H2 does nothing (zero weights: uniform attention, writes nothing)
 *   L1H0 induction head (K-composition with L0H1: attends to the key whose previous token is the query's token,
 *        copies that key's token into the logits with weight COPY)
 *   L1H1 attention-sink head (attends to position 0, writes nothing)
 *   L1H2 temporal head (from the time-dependent relation token R_T it attends to the year token and writes the
 *        answer for that year; the numeric year and its textual alias embed the same year feature)
 * Attention logits are ±LOGIT where a head should (not) attend, so patterns are one-hot to within e^-LOGIT.
 */
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig } from '../model/config.js';
import { needleTokenTrials } from '../datasets/needle.js';
import type { IoiCorruption, IoiTokens } from '../datasets/ioi.js';
import type { LetterPrompt } from '../datasets/mcq.js';
import type { NeedleTrial } from '../interp/scores/retrieval.js';
import type { TemporalPair } from '../interp/scores/temporal.js';
import { Random } from '../util/random.js';

const V = 48; // vocabulary
const C = 64; // n_ctx
const TOK = {
  BOS: 0,
  LABELS: [1, 2, 3, 4], // A B C D
  SEP: 5,
  YEARS: [6, 7, 8, 9],
  ALIASES: [10, 11, 12, 13], // the same years, spelled out
  YEAR_ANSWERS: [14, 15, 16, 17],
  R_T: 18, // a time-dependent relation ("… the president was")
  R_C: 19, // a time-invariant relation ("… the capital of France was")
  SUBJECTS: [20, 21],
  CONTENT: Array.from({ length: 26 }, (_, i) => 22 + i),
};
/** The planted model's token ids. */
export const PLANTED_TOK = TOK;
const LOGIT = 20;
const COPY = 10;

export const PLANTED = {
  duplicate: { layer: 0, head: 0 },
  previous: { layer: 0, head: 1 },
  induction: { layer: 1, head: 0 },
  sink: { layer: 1, head: 1 },
  temporal: { layer: 1, head: 2 },
};

export function plantedModel(): HookedTransformer {
  const nY = TOK.YEARS.length;
  const R = { tok: 0, pos: V, prev: V + C, yf: 2 * V + C, yid: 2 * V + C + 1 };
  const d = 2 * V + C + 1 + nY;
  const e = V + C;
  const cfg = makeConfig({
    model_name: 'planted-heads',
    d_model: d, n_layers: 2, n_heads: 3, d_head: e, d_vocab: V, n_ctx: C,
    attn_only: true, normalization_type: null, positional_embedding_type: 'standard',
  });
  const model = HookedTransformer.random(cfg, { seed: 1 });
  const s = cfg.attn_scale * LOGIT; // q·k / attn_scale = LOGIT for unit keys
  const mat = (rows: number, cols: number) => Array.from({ length: rows }, () => new Float32Array(cols));
  const heads = () => Array.from({ length: 3 }, () => mat(d, e));
  const W = { Q: [heads(), heads()], K: [heads(), heads()], V: [heads(), heads()], O: [[0, 1, 2].map(() => mat(e, d)), [0, 1, 2].map(() => mat(e, d))] };
  const bQ = [mat(3, e), mat(3, e)];

  // L0H0 duplicate token: +LOGIT for the same token, −2·LOGIT for itself
  for (let t = 0; t < V; t++) (W.Q[0][0][R.tok + t][t] = s), (W.K[0][0][R.tok + t][t] = 1);
  for (let p = 0; p < C; p++) (W.Q[0][0][R.pos + p][V + p] = 2 * s), (W.K[0][0][R.pos + p][V + p] = -1);
  // L0H1 previous token: query p matches key p − 1; copies the key's token into the prev subspace
  for (let p = 0; p < C; p++) {
    W.Q[0][1][R.pos + p][V + p] = s;
    if (V + p + 1 < e) W.K[0][1][R.pos + p][V + p + 1] = 1;
  }
  for (let t = 0; t < V; t++) (W.V[0][1][R.tok + t][t] = 1), (W.O[0][1][t][R.prev + t] = 1);
  // L1H0 induction: query token t matches keys whose previous token is t; copies the key's token to the logits
  for (let t = 0; t < V; t++) {
    W.Q[1][0][R.tok + t][t] = s;
    W.K[1][0][R.prev + t][t] = 1;
    W.V[1][0][R.tok + t][t] = 1;
    W.O[1][0][t][R.tok + t] = COPY;
  }
  // L1H1 sink: a constant query (bias) that matches position 0
  bQ[1][1][0] = s;
  W.K[1][1][R.pos + 0][0] = 1;
  // L1H2 temporal: R_T attends to the year feature, R_C to BOS; writes the year's answer
  W.Q[1][2][R.tok + TOK.R_T][0] = s;
  W.K[1][2][R.yf][0] = 1;
  W.Q[1][2][R.tok + TOK.R_C][1] = s;
  W.K[1][2][R.pos + 0][1] = 1;
  for (let i = 0; i < nY; i++) (W.V[1][2][R.yid + i][i] = 1), (W.O[1][2][i][R.tok + TOK.YEAR_ANSWERS[i]] = COPY);

  const WE = mat(V, d);
  for (let t = 0; t < V; t++) WE[t][R.tok + t] = 1;
  for (let i = 0; i < nY; i++) for (const t of [TOK.YEARS[i], TOK.ALIASES[i]]) (WE[t][R.yf] = 1), (WE[t][R.yid + i] = 1);
  const Wpos = mat(C, d);
  for (let p = 0; p < C; p++) Wpos[p][R.pos + p] = 1;
  const WU = mat(d, V);
  for (let t = 0; t < V; t++) WU[R.tok + t][t] = 1;

  const t3 = (m: Float32Array[][]) => tf.tensor3d(m.map((h) => h.map((r) => Array.from(r))));
  const t2 = (m: Float32Array[]) => tf.tensor2d(m.map((r) => Array.from(r)));
  const updates: Record<string, tf.Tensor> = { 'embed.W_E': t2(WE), 'pos_embed.W_pos': t2(Wpos), 'unembed.W_U': t2(WU), 'unembed.b_U': tf.zeros([V]) };
  for (let l = 0; l < 2; l++) {
    const b = `blocks.${l}.attn`;
    Object.assign(updates, {
      [`${b}.W_Q`]: t3(W.Q[l]), [`${b}.W_K`]: t3(W.K[l]), [`${b}.W_V`]: t3(W.V[l]), [`${b}.W_O`]: t3(W.O[l]),
      [`${b}.b_Q`]: t2(bQ[l]), [`${b}.b_K`]: tf.zeros([3, e]), [`${b}.b_V`]: tf.zeros([3, e]), [`${b}.b_O`]: tf.zeros([d]),
    });
  }
  model.setParams(updates);
  return model;
}

// Task data the planted heads solve

const NEEDLE_POOL = [...TOK.LABELS, TOK.SEP, ...TOK.YEAR_ANSWERS, ...TOK.SUBJECTS];

export function plantedNeedleTrials(): NeedleTrial[] {
  return needleTokenTrials({ contextLengths: [24, 40, 60], depths: [0, 50, 100], haystackPool: TOK.CONTENT, needlePool: NEEDLE_POOL, needleLength: 5, bos: TOK.BOS, seed: 7 }).trials;
}

/**
 * [BOS, o1, L1, o2, L2, o3, L3, o4, L4, SEP, q]: q names the correct option's content. Labels: in order (false or
 * 'ordered'), a permutation of A–D (true or 'shuffled'), or four distinct other tokens ('random': drawn from the
 * labels, the year answers and the subjects, none of which the options use).
 */
export function plantedLetterPrompts(n: number, labelling: boolean | 'ordered' | 'shuffled' | 'random'): LetterPrompt[] {
  const rng = new Random(11);
  const mode = labelling === true ? 'shuffled' : labelling === false ? 'ordered' : labelling;
  const pool = [...TOK.LABELS, ...TOK.YEAR_ANSWERS, ...TOK.SUBJECTS];
  return Array.from({ length: n }, (_, i) => {
    const opts = rng.shuffle(TOK.CONTENT).slice(0, 4);
    const labels = mode === 'shuffled' ? rng.shuffle(TOK.LABELS) : mode === 'random' ? rng.shuffle(pool).slice(0, 4) : TOK.LABELS;
    const correct = i % 4;
    const tokens = [TOK.BOS, ...opts.flatMap((o, j) => [o, labels[j]]), TOK.SEP, opts[correct]];
    return { tokens, labelTokens: labels, labelPositions: [2, 4, 6, 8], correct };
  });
}

export function plantedTemporalPairs(): TemporalPair[] {
  const pairs: TemporalPair[] = [];
  const Y = TOK.YEARS.length;
  for (let i = 0; i < Y; i++) {
    const j = (i + 1) % Y;
    for (const subj of TOK.SUBJECTS) {
      pairs.push({ kind: 'temporal', clean: [TOK.BOS, TOK.YEARS[i], subj, TOK.R_T], corrupted: [TOK.BOS, TOK.YEARS[j], subj, TOK.R_T], answer: TOK.YEAR_ANSWERS[i] });
      pairs.push({ kind: 'alias', clean: [TOK.BOS, TOK.ALIASES[i], subj, TOK.R_T], corrupted: [TOK.BOS, TOK.ALIASES[j], subj, TOK.R_T], answer: TOK.YEAR_ANSWERS[i] });
      pairs.push({ kind: 'control', clean: [TOK.BOS, TOK.YEARS[i], subj, TOK.R_C], corrupted: [TOK.BOS, TOK.YEARS[j], subj, TOK.R_C], answer: TOK.R_C });
    }
  }
  return pairs;
}

/**
 * BABA prompts [BOS, S, IO, x, y, S2]: the planted induction head, at S2, attends to the token after S1 (= IO)
 * and copies it, so it alone is the name mover. The corrupted prompts are Wang et al.'s ABC ones (default):
 * [BOS, Y, X, x, y, Z], IO, S1 and S2 replaced by three other names; `corruption: 's2'` puts a third name C at S2 only.
 */
export function plantedIoiPrompts(n: number, opts: { corruption?: IoiCorruption } = {}): IoiTokens[] {
  const rng = new Random(21);
  return Array.from({ length: n }, () => {
    // one shuffle for both corruptions, so the clean prompts are the same
    const [s, io, c, x, y, X, Y, Z] = rng.shuffle(TOK.CONTENT).slice(0, 8);
    const corrupted = (opts.corruption ?? 'abc') === 'abc' ? [TOK.BOS, Y, X, x, y, Z] : [TOK.BOS, s, io, x, y, c];
    return { clean: [TOK.BOS, s, io, x, y, s], corrupted, io, s, ioPos: 2, s1Pos: 1, s2Pos: 5 };
  });
}
