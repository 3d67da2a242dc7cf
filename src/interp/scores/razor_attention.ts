/**
 * RazorAttention's retrieval/non-retrieval split (Tang et al. 2024, "RazorAttention: Efficient KV Cache Compression
 * Through Retrieval Heads"). RazorAttention keeps the full KV cache only for "retrieval heads" and cuts every other
 * head to the attention sink plus a recent window (with a compensation token for what was dropped), about 70 % less
 * cache with little loss on LongBench and needle tests. For RoPE models it chooses the retrieval heads without any
 * task data: it feeds random tokens repeated 4 times and scores each head two ways,
 * - **echo**: the attention from a token to its earlier copies (the same token, one or more blocks back);
 * - **induction**: the attention from a token to the tokens right after its earlier copies (what came next last time);
 * and keeps the top 14 % of heads by induction score and the top 1 % by echo score (the defaults of the authors'
 * implementation, mindspore-ai/golden-stick, mindspore_gs/sequence_compress/razor_attention: induction_head_ratio
 * 0.14, echo_head_ratio 0.01; the union is kept, about 15 % of heads). (For ALiBi models the paper instead bounds
 * each head's attention span from its slope; headlens' models are standard or RoPE, so that branch is not here.)
 *
 * Scores here: on sequences [prefix] block × repeats (datasets/induction.ts `repeatedBlocks`), for every query q in a
 * repeat after the first, the attention mass on keys k < q with k ≡ q (mod period) (echo), and on keys j + 1 for
 * those j (induction), averaged over those queries. The reference implementation sums the same masked attention
 * and divides by the square of the sequence length; for one sequence length that is a constant factor, so the
 * ranking, and so the heads chosen, are the same; our mean over queries reads as a fraction of attention (1 = all of
 * it). Positions, not token identity, define the copies, as in the reference (a token drawn twice within a block does
 * not count as its own copy). Under GQA the reference takes the max over the query heads of a KV group, since the
 * cache is per KV head; these scores are per query head (take the max per group to choose caches).
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { HeadRef } from '../interventions/ablation.js';
import { attentionMassReads, range } from './attention_mass.js';
import { checkSequences, runScorer, runScorerAsync, topHeads, type HeadScorer, type HeadScores, type TopHead } from './head_scores.js';

export interface RazorScoreOptions {
  /** The block length: a token's copies sit `period` positions apart. */
  period: number;
  /** Where the first block starts (1 with a BOS in front, the default; 0 without). */
  offset?: number;
  top?: number;
}

export function razorScorer(sequences: number[][], opts: RazorScoreOptions): HeadScorer<number[]> {
  checkSequences('razor-attention', sequences);
  const P = opts.period;
  const off = opts.offset ?? 1;
  if (!(Number.isInteger(P) && P >= 2 && Number.isInteger(off) && off >= 0)) throw new HeadlensError(`razor-attention: period ${P} must be an integer ≥ 2 and offset ${off} an integer ≥ 0`);
  const short = sequences.findIndex((s) => s.length < off + 2 * P);
  if (short >= 0) throw new HeadlensError(`razor-attention: sequence ${short} has ${sequences[short].length} tokens, fewer than offset + 2 blocks (${off + 2 * P})`, 'repeat the block at least twice');
  // an earlier copy j of query q: same place in an earlier block
  const copy = (q: number, j: number) => j >= off && j < q && (q - j) % P === 0;
  return {
    task: 'razor-attention',
    settings: { period: P, offset: off, sequences: sequences.length, length: sequences[0].length, echo: 'attention to earlier copies of the token', induction: 'attention to the token after each earlier copy' },
    primary: 'induction',
    items: sequences,
    scoreItem: function* (model, tokens) {
      const queries = range(off + P, tokens.length);
      const echo = yield* attentionMassReads(model, tokens, (q, k) => copy(q, k), queries);
      const induction = yield* attentionMassReads(model, tokens, (q, k) => k >= 1 && copy(q, k - 1), queries);
      return { tables: { induction, echo }, weight: 1 };
    },
  };
}

/** Echo and induction scores of every head (`scores` is induction, `tables.echo` echo), [n_layers][n_heads]. */
export function razorScores(model: HookedTransformer, sequences: number[][], opts: RazorScoreOptions): HeadScores {
  return runScorer(model, razorScorer(sequences, opts), { top: opts.top });
}

/** razorScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function razorScoresAsync(model: HookedTransformer, sequences: number[][], opts: RazorScoreOptions): Promise<HeadScores> {
  return runScorerAsync(model, razorScorer(sequences, opts), { top: opts.top });
}

export interface RazorSelectionOptions {
  /** Share of all heads kept for their induction score (default 0.14, the reference implementation's). */
  inductionRatio?: number;
  /** Share of all heads kept for their echo score (default 0.01). */
  echoRatio?: number;
}

export interface RazorSelection {
  /** The heads that keep a full cache: the union of the two lists below, in layer, head order. */
  retrieval: HeadRef[];
  /** The rest, cut to sink + recent window by RazorAttention. */
  streaming: HeadRef[];
  induction: TopHead[];
  echo: TopHead[];
  settings: { inductionRatio: number; echoRatio: number; inductionHeads: number; echoHeads: number };
}

/**
 * RazorAttention's choice: the round(n · inductionRatio) heads with the highest induction score and the
 * round(n · echoRatio) with the highest echo score (n = all heads, as the reference rounds), kept together as
 * retrieval heads; every other head is a streaming head. On a small model the 1 % of echo heads rounds to none.
 */
export function razorAttentionHeads(scores: { induction: number[][]; echo: number[][] }, opts: RazorSelectionOptions = {}): RazorSelection {
  const inductionRatio = opts.inductionRatio ?? 0.14;
  const echoRatio = opts.echoRatio ?? 0.01;
  for (const [name, r] of [['inductionRatio', inductionRatio], ['echoRatio', echoRatio]] as const) {
    if (!(r >= 0 && r <= 1)) throw new HeadlensError(`razorAttentionHeads: ${name} ${r} must be in [0, 1]`);
  }
  const n = scores.induction.reduce((a, row) => a + row.length, 0);
  const nInd = Math.round(n * inductionRatio);
  const nEcho = Math.round(n * echoRatio);
  const induction = topHeads(scores.induction, nInd);
  const echo = topHeads(scores.echo, nEcho);
  const keep = new Set([...induction, ...echo].map((h) => `${h.layer},${h.head}`));
  const all = scores.induction.flatMap((row, layer) => row.map((_, head) => ({ layer, head })));
  return {
    retrieval: all.filter((h) => keep.has(`${h.layer},${h.head}`)),
    streaming: all.filter((h) => !keep.has(`${h.layer},${h.head}`)),
    induction,
    echo,
    settings: { inductionRatio, echoRatio, inductionHeads: nInd, echoHeads: nEcho },
  };
}
