/**
 * A hand-built model with a function vector: attention-only, no norms, 3 layers × 2 heads, that maps x_i to y_i
 * only when its prompt shows the mapping in context. Prompts are [BOS, x_a, y_a, x_b, y_b, …, x_q] → y_q.
 * The residual stream is split into one-hot subspaces (token, position) and two flags, m and τ:
 *   L0H0 matcher: at a label y_j it attends to the previous position if that holds x_j (token match + previous
 *        position, 2·LOGIT, against BOS's 1.5·LOGIT) and writes m = 1 there; a shuffled label finds no match,
 *        attends to BOS and writes nothing.
 *   L1H0 task head (the function-vector head): from every position it attends to the labels flagged m (LOGIT·m,
 *        against BOS's 0.5·LOGIT) and writes τ = the flag it read: 1 when some demonstration matched, else 0.
 *   L2H0 mapper: with τ = 1 it attends to its own position (self + x-token, 2·LOGIT, against BOS's 1.5·LOGIT)
 *        and writes COPY to y_q's logit; with τ = 0 it attends to BOS and writes COPY to NULL's logit.
 *   L0H1, L1H1, L2H1 have zero weights: uniform attention, nothing written.
 * The embedding of x_q reaches the logits too (W_U reads the token subspace), so a clean prompt gives logits
 * COPY for y_q, 1 for x_q, 0 elsewhere; a zero-shot or fully shuffled prompt COPY for NULL, 1 for x_q.
 * The function vector of L1H0 is τ itself: added to the residual before layer 2, it makes the zero-shot prompt
 * [BOS, x_q] answer y_q. Attention logits are ±LOGIT·(0.5 steps), so patterns are one-hot to within e^-LOGIT/2.
 */
import * as tf from '@tensorflow/tfjs';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig } from '../model/config.js';

const N = 10; // pairs
const V = 2 + 2 * N;
const C = 32;
const LOGIT = 40;
const COPY = 10;

/** Token ids of the planted in-context model: BOS, NULL (no answer), x_i and y_i. */
export const PLANTED_ICL_TOK = {
  BOS: 0,
  NULL: 1,
  X: Array.from({ length: N }, (_, i) => 2 + i),
  Y: Array.from({ length: N }, (_, i) => 2 + N + i),
};

/** Its logit constants: what L2H0 writes to the answer (or NULL), and what the query's own embedding gives. */
export const PLANTED_ICL = { COPY, QUERY_LOGIT: 1, taskHead: { layer: 1, head: 0 }, mapper: { layer: 2, head: 0 }, matcher: { layer: 0, head: 0 }, vocab: V, nCtx: C };

/** The task: x_i → y_i, as pairs for iclPrompts. */
export function plantedIclPairs(): { input: number[]; output: number }[] {
  return PLANTED_ICL_TOK.X.map((x, i) => ({ input: [x], output: PLANTED_ICL_TOK.Y[i] }));
}

export function plantedIclModel(): HookedTransformer {
  const R = { tok: 0, pos: V, m: V + C, tau: V + C + 1 };
  const d = V + C + 2;
  const e = N + C + 1; // d_head: token pairs, positions, a baseline slot
  const cfg = makeConfig({
    model_name: 'planted-icl',
    d_model: d, n_layers: 3, n_heads: 2, d_head: e, d_vocab: V, n_ctx: C,
    attn_only: true, normalization_type: null, positional_embedding_type: 'standard',
  });
  const model = HookedTransformer.random(cfg, { seed: 1 });
  const s = cfg.attn_scale * LOGIT; // q·k / attn_scale = LOGIT for unit keys
  const mat = (rows: number, cols: number) => Array.from({ length: rows }, () => new Float32Array(cols));
  const layer = () => ({ Q: [mat(d, e), mat(d, e)], K: [mat(d, e), mat(d, e)], V: [mat(d, e), mat(d, e)], O: [mat(e, d), mat(e, d)], bQ: mat(2, e) });
  const L = [layer(), layer(), layer()];
  const { X, Y, BOS, NULL } = PLANTED_ICL_TOK;
  const base = N + C; // the baseline slot of d_head

  // L0H0 matcher: y_j matches x_j (LOGIT) and the previous position (LOGIT); BOS 1.5·LOGIT for every query
  for (let j = 0; j < N; j++) (L[0].Q[0][R.tok + Y[j]][j] = s), (L[0].K[0][R.tok + X[j]][j] = 1);
  for (let p = 0; p < C; p++) {
    L[0].Q[0][R.pos + p][N + p] = s;
    if (p + 1 < C) L[0].K[0][R.pos + p][N + p + 1] = 1;
  }
  L[0].bQ[0][base] = 1.5 * s;
  L[0].K[0][R.pos + 0][base] = 1;
  for (const x of X) L[0].V[0][R.tok + x][0] = 1;
  L[0].O[0][0][R.m] = 1;

  // L1H0 task head: LOGIT·m for every query, BOS 0.5·LOGIT; writes τ = the m it read
  L[1].bQ[0][0] = s;
  L[1].K[0][R.m][0] = 1;
  L[1].bQ[0][base] = 0.5 * s;
  L[1].K[0][R.pos + 0][base] = 1;
  L[1].V[0][R.m][0] = 1;
  L[1].O[0][0][R.tau] = 1;

  // L2H0 mapper: τ·LOGIT for x-token keys, LOGIT for itself, BOS 1.5·LOGIT; copies x_i → y_i, BOS → NULL
  L[2].Q[0][R.tau][0] = s;
  for (const x of X) L[2].K[0][R.tok + x][0] = 1;
  for (let p = 0; p < C; p++) (L[2].Q[0][R.pos + p][1 + p] = s), (L[2].K[0][R.pos + p][1 + p] = 1);
  L[2].bQ[0][base] = 1.5 * s;
  L[2].K[0][R.pos + 0][base] = 1;
  X.forEach((x, i) => (L[2].V[0][R.tok + x][i] = 1, L[2].O[0][i][R.tok + Y[i]] = COPY));
  L[2].V[0][R.tok + BOS][N] = 1;
  L[2].O[0][N][R.tok + NULL] = COPY;

  const WE = mat(V, d);
  for (let t = 0; t < V; t++) WE[t][R.tok + t] = 1;
  const Wpos = mat(C, d);
  for (let p = 0; p < C; p++) Wpos[p][R.pos + p] = 1;
  const WU = mat(d, V);
  for (let t = 0; t < V; t++) WU[R.tok + t][t] = 1;

  const t3 = (m: Float32Array[][]) => tf.tensor3d(m.map((h) => h.map((r) => Array.from(r))));
  const t2 = (m: Float32Array[]) => tf.tensor2d(m.map((r) => Array.from(r)));
  const updates: Record<string, tf.Tensor> = { 'embed.W_E': t2(WE), 'pos_embed.W_pos': t2(Wpos), 'unembed.W_U': t2(WU), 'unembed.b_U': tf.zeros([V]) };
  L.forEach((w, l) => {
    const b = `blocks.${l}.attn`;
    Object.assign(updates, {
      [`${b}.W_Q`]: t3(w.Q), [`${b}.W_K`]: t3(w.K), [`${b}.W_V`]: t3(w.V), [`${b}.W_O`]: t3(w.O),
      [`${b}.b_Q`]: t2(w.bQ), [`${b}.b_K`]: tf.zeros([2, e]), [`${b}.b_V`]: tf.zeros([2, e]), [`${b}.b_O`]: tf.zeros([d]),
    });
  });
  model.setParams(updates);
  return model;
}
