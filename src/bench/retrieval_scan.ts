/**
 * `headlens bench --long --retrieval`: one retrieval-head scan (Wu et al. 2024's score, retrieval.ts) of every head
 * on one needle trial per context length, timed end to end through the asynchronous scorer (`runScorerAsync`, the
 * form that runs on WebGPU in Node). The weights are random, so no head retrieves anything and the scores mean
 * nothing: what is measured is the time the scan takes at that shape and length. So that every step the scorer
 * would run is run, decoding has no stop token and the recall gate is off (gate −1: every trial counts); the trial
 * decodes exactly `steps` tokens (their script's 50 by default).
 * Times: the whole call; the first step (the prefill of the prompt with every head's last attention row kept, and
 * the first token); the mean of the decoding steps after it (the clock at each step's token, which the scorer
 * reads back); the rest (reading every step's top-1 keys, once, and building the table).
 * With tfjs' exact-size buffer pool (webgpuHostTuning.bucketBuffers off) the pooled GPU buffers go back to the
 * device after every step (releaseGpuPool, inside the time): each step's keys and values are one position longer
 * than the last step's and that pool never reuses them, so at 16K tokens of a 7B shape (17 GB of keys and values) it
 * would fill the card within a few steps. With buffer buckets (the default in Node) the next step's keys and values
 * reuse the freed buckets, so nothing is released per step. `pool_released_bytes` says how much was given back.
 */
import { releaseGpuPool, webgpuHostTuning } from '../backend/index.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { runScorerReads, scoreItemReads, type HeadScores, type HeadScorer } from '../interp/scores/head_scores.js';
import { retrievalScorer, type NeedleTrial, type RetrievalOptions } from '../interp/scores/retrieval.js';
import { Random } from '../util/random.js';
import { readAsync } from '../util/reads.js';
import { now } from './timing.js';

export const RANDOM_WEIGHTS_NOTE = 'random weights: these scores are meaningless (no head of a random model retrieves anything); the time is what is measured';

export interface RetrievalScanTiming {
  context: number;
  heads: number;
  /** Tokens decoded (= steps asked for: no stop token). */
  decode_steps: number;
  total_s: number;
  /** Prefill of the prompt (last attention rows kept) and the first token. */
  first_step_s: number;
  /** Mean time of each decoding step after the first (undefined with one step). */
  ms_per_step?: number;
  /** After the last token: reading each step's top-1 keys and building the table. */
  finish_s: number;
  /** Pooled GPU buffers given back to the device after the steps (0 off WebGPU). */
  pool_released_bytes: number;
  /** The scorer's answer, of no meaning here (see note). */
  scores: number[][];
  settings: Record<string, unknown>;
  trial: { needle: [number, number]; answer: [number, number]; seed: number };
  note: string;
}

/**
 * A needle trial of `length` random token ids (1 … d_vocab − 1): a needle of min(16, length / 4) tokens at half
 * depth, its second half the answer. Nothing in it means anything; only its length matters here.
 */
export function retrievalBenchTrial(dVocab: number, length: number, seed: number): NeedleTrial {
  const rng = new Random(seed);
  const tokens = Array.from({ length }, () => rng.int(1, dVocab));
  const n = Math.max(2, Math.min(16, Math.floor(length / 4)));
  const needleStart = Math.floor((length - n) / 2);
  const answerStart = needleStart + Math.floor(n / 2);
  return { tokens, needleStart, needleEnd: needleStart + n, answerStart, answerEnd: needleStart + n, answer: tokens.slice(answerStart, needleStart + n) };
}

/** The scorer options the benchmark runs with: `steps` tokens, no stop token, every trial counted. */
export function retrievalBenchOptions(steps: number): RetrievalOptions {
  return { maxNewTokens: steps, stopTokens: [], gate: -1 };
}

/** Times one retrieval scan of every head of `model` on `trial` (see the module comment). */
export async function timeRetrievalScan(model: HookedTransformer, trial: NeedleTrial, steps: number, seed: number): Promise<RetrievalScanTiming> {
  const scorer = retrievalScorer([trial], retrievalBenchOptions(steps));
  let output: number[] = [];
  // the same scorer, keeping the decoded tokens (its info) that the averaged answer leaves out
  const keeping: HeadScorer<NeedleTrial> = {
    ...scorer,
    scoreItem: function* (m, _item, i) {
      const r = yield* scoreItemReads(scorer, m, i);
      output = (r.info?.output as number[] | undefined) ?? [];
      return r;
    },
  };
  const stamps: number[] = [];
  let released = 0;
  const t0 = now();
  const onRead = () => {
    stamps.push(now());
    if (!webgpuHostTuning.bucketBuffers) released += releaseGpuPool();
  };
  const result: HeadScores = await readAsync(runScorerReads(model, keeping, {}), { onRead });
  const total = now() - t0;
  // one read per decoding step (its token), then one of every step's top-1 keys
  const k = output.length;
  const last = stamps[k - 1] ?? t0;
  return {
    context: trial.tokens.length,
    heads: model.cfg.n_layers * model.cfg.n_heads,
    decode_steps: k,
    total_s: total / 1000,
    first_step_s: ((stamps[0] ?? t0) - t0) / 1000,
    ...(k >= 2 ? { ms_per_step: (last - stamps[0]) / (k - 1) } : {}),
    finish_s: (t0 + total - last) / 1000,
    pool_released_bytes: released,
    scores: result.scores,
    settings: result.settings,
    trial: { needle: [trial.needleStart, trial.needleEnd], answer: [trial.answerStart, trial.answerEnd], seed },
    note: RANDOM_WEIGHTS_NOTE,
  };
}
