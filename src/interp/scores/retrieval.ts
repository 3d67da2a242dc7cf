/**
 * Retrieval heads (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality").
 * While the model decodes the answer to a needle-in-a-haystack question, a head "retrieves" at a step when its
 * top-1 attended key (from the current query) lies inside the answer's span in the needle and the token just
 * generated equals the token at that key: it is copying the answer out of the needle. Each such step adds
 * 1/|answer span|; a trial's table is kept only if the answer passes the recall gate (ROUGE-1 recall > 50 % in
 * their code), and the head's score is the mean over kept trials. The span is the answer inside the needle
 * sentence, their `real_needle` ("take a walk in Chaoyang Park and have a cup of Espresso in the evening" in "The
 * best thing to do in Beijing is to …"; retrieval_head_detection.py locates it with find_needle_idx and divides
 * by its length), not the whole sentence: a head that copies the 5 answer tokens of a 16-token needle scores 1,
 * not 5/16. Heads above 0.1 are retrieval heads: under 5 % of heads in the Llama, Yi, Qwen and
 * Mistral models they studied, and masking the top 20 of them took needle-in-a-haystack accuracy from
 * 94.7 % to 63.6 % (Llama-2-7B-80K) while 20 random heads barely moved it.
 *
 * What follows their released detection script step for step: the prompt minus its last token is run, then
 * decoding starts by feeding the last prompt token, so every generated token is scored, up to 50 steps, stopping
 * at a stop token (their script: the newline, '<0x0A>' or Qwen's id 144; the step that writes it is still
 * scored); top-1 is the first maximum. `retrievalStopTokens(model)` gives the model's newline and EOS; the scan
 * task stops at them (their script has no EOS check, but a model that ends its answer with EOS has stopped
 * answering).
 * Decisions made here, documented:
 * - Capping: a trial can score above 1 (the model repeats needle tokens for more steps than the span is
 *   long), and their released scores do. Default `cap: false` reproduces that; `cap: true` clips each trial's
 *   table at 1 before averaging, which keeps the score a fraction of the needle copied.
 * - The gate: with a tokenizer and `answerText`, ROUGE-1 recall on lower-cased alphanumeric words, as
 *   rouge_score computes it but without Porter stemming (their scorer stems); without one, the same recall on
 *   token ids (clipped counts).
 * - Decoding goes through model.generate's KV cache and reads only each step's last query row of every head's
 *   pattern; the logits equal a re-run of the growing sequence to float rounding (tests/generate.test.ts). Each
 *   step's top-1 keys stay on the backend ([layer, head] ids) and are read once when decoding ends, so a step reads
 *   back only its token. Every function that reads has an `…Async` twin running the same computation
 *   (util/reads.ts): the form for WebGPU in Node.
 * - `span: 'needle'` counts copies from the whole needle and divides by its length (headlens before it
 *   followed their real_needle), for comparing with old results.
 * `retrievalScoresTeacherForced` needs no decoding: the reference answer is appended and one forward pass is
 * scored at the answer positions; the gate is the fraction of answer tokens the model's argmax gets right.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import { generateReads } from '../../hooks/generate.js';
import { KVCache } from '../../model/kv_cache.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { readAsync, readNested, readSync, type Reads, readNestedPair } from '../../util/reads.js';
import { runScorer, runScorerAsync, zeros, type HeadScorer, type HeadScores } from './head_scores.js';

/** One needle trial in tokens: the prompt, where the needle sits in it, and the answer expected. */
export interface NeedleTrial {
  /** The whole prompt: haystack with the needle inside, then the question. */
  tokens: number[];
  /** Needle span in `tokens`, [needleStart, needleEnd). */
  needleStart: number;
  needleEnd: number;
  /** The answer's span inside the needle (their real_needle), [answerStart, answerEnd): what a retrieval head copies. */
  answerStart: number;
  answerEnd: number;
  /** The answer's tokens (for the gate and the teacher-forced variant). */
  answer: number[];
  /** The answer as text (the gate then compares words, if the model has a tokenizer). */
  answerText?: string;
}

export interface RetrievalOptions {
  /** Most tokens to decode (default 50, as their script). */
  maxNewTokens?: number;
  /** Token ids that end decoding (their script stops at a newline). */
  stopTokens?: number[];
  /** A trial counts if answer recall is above this (default 0.5: their `score > 50`). */
  gate?: number;
  /** Clip each trial's table at 1 (default false, as their code). */
  cap?: boolean;
  /** Where a copy counts: 'answer' (default, their real_needle) or 'needle' (the whole needle sentence, the old score). */
  span?: 'answer' | 'needle';
  top?: number;
}

function checkTrials(trials: NeedleTrial[]): void {
  if (!Array.isArray(trials) || trials.length === 0) throw new HeadlensError('retrieval: no needle trials given', 'pass at least one NeedleTrial');
  trials.forEach((t, i) => {
    if (!(Number.isInteger(t.needleStart) && Number.isInteger(t.needleEnd) && 0 <= t.needleStart && t.needleStart < t.needleEnd && t.needleEnd <= t.tokens.length)) {
      throw new HeadlensError(`retrieval: trial ${i} has needle span [${t.needleStart}, ${t.needleEnd}) outside its ${t.tokens.length} tokens`, 'needleStart < needleEnd ≤ tokens.length');
    }
    if (!(Number.isInteger(t.answerStart) && Number.isInteger(t.answerEnd) && t.needleStart <= t.answerStart && t.answerStart < t.answerEnd && t.answerEnd <= t.needleEnd)) {
      throw new HeadlensError(`retrieval: trial ${i} has answer span [${t.answerStart}, ${t.answerEnd}) outside its needle [${t.needleStart}, ${t.needleEnd})`, "give answerStart/answerEnd, the answer's tokens inside the needle (needleTextTrials and needleTokenTrials do)");
    }
    if (!t.answer?.length) throw new HeadlensError(`retrieval: trial ${i} has no answer tokens`, 'give the expected answer as token ids');
  });
}

/**
 * Whether greedy decoding from `prompt` writes exactly `answer`, in one forward pass: decoding gives the answer
 * exactly when every answer token is the argmax given the answer before it, which teacher forcing reads off at
 * once (greedyDecode needs a pass per token). `decodeHooks` apply as in model.generate: from the last prompt
 * token on, the prompt before it computed intact (a KV cache holds it, the rest is one more pass).
 */
export function decodesExactly(model: HookedTransformer, prompt: number[], answer: number[], fwdHooks: FwdHook[] = [], decodeHooks: FwdHook[] = []): boolean {
  return readSync(decodesExactlyReads(model, prompt, answer, fwdHooks, decodeHooks));
}

export function decodesExactlyAsync(model: HookedTransformer, prompt: number[], answer: number[], fwdHooks: FwdHook[] = [], decodeHooks: FwdHook[] = []): Promise<boolean> {
  return readAsync(decodesExactlyReads(model, prompt, answer, fwdHooks, decodeHooks));
}

export function* decodesExactlyReads(model: HookedTransformer, prompt: number[], answer: number[], fwdHooks: FwdHook[] = [], decodeHooks: FwdHook[] = []): Reads<boolean> {
  if (answer.length === 0) return true;
  const seq = [...prompt, ...answer.slice(0, -1)];
  if (seq.length > model.cfg.n_ctx) throw new HeadlensError(`decodesExactly: prompt and answer take ${seq.length} positions, more than n_ctx ${model.cfg.n_ctx}`, 'use a shorter prompt');
  const split = decodeHooks.length > 0 ? prompt.length - 1 : 0; // positions run before the decode hooks apply
  const kvCache = split > 0 ? new KVCache(model.cfg.n_layers, { capacity: seq.length }) : undefined;
  let logits: tf.Tensor3D | undefined;
  let argmax: tf.Tensor;
  try {
    if (kvCache) model.runWithHooks([seq.slice(0, split)], { fwdHooks, kvCache }).dispose();
    logits = model.runWithHooks([seq.slice(split)], { fwdHooks: [...fwdHooks, ...decodeHooks], kvCache });
    argmax = tf.tidy(() => logits!.slice([0, prompt.length - 1 - split, 0], [1, answer.length, -1]).squeeze([0]).argMax(1));
  } finally {
    logits?.dispose();
    kvCache?.dispose();
  }
  const pred = yield argmax;
  return answer.every((a, j) => pred[j] === a);
}

/** What greedyDecode takes. */
export interface GreedyDecodeOptions {
  maxNewTokens?: number;
  stopTokens?: number[];
  fwdHooks?: FwdHook[];
  decodeHooks?: FwdHook[];
  /** Called once per step, after decoding ends, with the sequence before the step, each head's top-1 key [layer][head], and the step's token. */
  onStep?: (step: { seq: number[]; topKey: number[][]; next: number }) => void;
}

/**
 * Greedy (argmax) decoding through model.generate's KV cache. Returns the generated tokens. With `onStep`, each
 * step also reads every head's top-1 key at the query that predicts the step's token: the only attention the
 * scorer needs, so each step caches one query row per head ([batch, head, 1, key_pos], patternRows 'last')
 * and the prompt's [head, pos, pos] patterns are never kept.
 */
export function greedyDecode(model: HookedTransformer, prompt: number[], opts: GreedyDecodeOptions = {}): number[] {
  return readSync(greedyDecodeReads(model, prompt, opts));
}

export function greedyDecodeAsync(model: HookedTransformer, prompt: number[], opts: GreedyDecodeOptions = {}): Promise<number[]> {
  return readAsync(greedyDecodeReads(model, prompt, opts));
}

export function* greedyDecodeReads(model: HookedTransformer, prompt: number[], opts: GreedyDecodeOptions = {}): Reads<number[]> {
  const { n_layers, n_heads } = model.cfg;
  const names = Array.from({ length: n_layers }, (_, l) => actName('pattern', l));
  const onStep = opts.onStep;
  const topKeys: tf.Tensor[] = []; // one [layer, head] of key positions per step, read once at the end
  try {
    const { tokens } = yield* generateReads(model, [prompt], {
      maxNewTokens: opts.maxNewTokens ?? 50,
      stopTokens: opts.stopTokens,
      fwdHooks: opts.fwdHooks, // hooks (e.g. masked heads) apply at every step, the prefill included
      decodeHooks: opts.decodeHooks, // these from the last prompt token on (Wu et al.'s masking)
      ...(onStep && {
        names,
        patternRows: 'last',
        onStep: ({ cache }) => {
          // the first maximum, as their script's topk(1); cache patterns are [1, head, 1, key_pos]
          topKeys.push(tf.tidy(() => tf.stack(names.map((n) => cache!.get(n).reshape([n_heads, -1]))).argMax(2))); // [layer, head]
        },
      }),
    });
    const out = tokens[0];
    if (onStep && topKeys.length) {
      const all = yield* readNested<number[][][]>(tf.stack(topKeys)); // [step, layer, head]
      all.forEach((topKey, s) => onStep({ seq: [...prompt, ...out.slice(0, s)], topKey, next: out[s] }));
    }
    return out;
  } finally {
    tf.dispose(topKeys);
  }
}

/** ROUGE-1-style recall: the share of reference units found in the output (counts clipped). */
export function unigramRecall<T>(reference: T[], output: T[]): number {
  if (reference.length === 0) return 0;
  const have = new Map<T, number>();
  for (const o of output) have.set(o, (have.get(o) ?? 0) + 1);
  let hit = 0;
  for (const r of reference) {
    const n = have.get(r) ?? 0;
    if (n > 0) (hit++, have.set(r, n - 1));
  }
  return hit / reference.length;
}

/** rouge_score's tokenisation without stemming: lower case, runs of [a-z0-9]. */
export function rougeWords(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim().split(' ').filter(Boolean);
}

export function answerRecall(model: HookedTransformer, trial: NeedleTrial, output: number[]): number {
  if (trial.answerText !== undefined && model.tokenizer) return unigramRecall(rougeWords(trial.answerText), rougeWords(model.toText(output)));
  return unigramRecall(trial.answer, output);
}

/**
 * Where their script stops decoding, for this model: the newline (if the tokenizer writes it as one token) and
 * the EOS token (if the model has one in its vocabulary).
 */
export function retrievalStopTokens(model: HookedTransformer): number[] {
  const out = new Set<number>();
  const eos = model.cfg.eos_token_id;
  if (typeof eos === 'number' && eos >= 0 && eos < model.cfg.d_vocab) out.add(eos);
  const tok = model.tokenizer;
  if (tok) {
    const nl = tok.encode('\n');
    if (nl.length === 1 && nl[0] < model.cfg.d_vocab && tok.decode(nl).includes('\n')) out.add(nl[0]);
  }
  return [...out].sort((a, b) => a - b);
}

/** The span a copy counts in: the answer inside the needle (their real_needle), or the whole needle. */
function copySpan(trial: NeedleTrial, span: 'answer' | 'needle'): [number, number] {
  return span === 'answer' ? [trial.answerStart, trial.answerEnd] : [trial.needleStart, trial.needleEnd];
}

/** A trial longer than the model's context cannot be run (decoding would have no room): it is dropped, and named. */
function unfitTrial(model: HookedTransformer, trial: NeedleTrial, i: number): { problem: string; fix: string } | undefined {
  const n = model.cfg.n_ctx;
  if (trial.tokens.length <= n) return undefined;
  return { problem: `trial ${i} has ${trial.tokens.length} tokens, more than n_ctx ${n}`, fix: `make the trials at most ${n} tokens long (needleTextTrials' contextLengths ≤ ${n})` };
}

const COUNTS = "its answer passes the recall gate: a model that cannot find the needle has no retrieval heads to score";

function settingsOf(opts: RetrievalOptions, trials: NeedleTrial[], variant: string) {
  return { variant, span: opts.span ?? 'answer', maxNewTokens: opts.maxNewTokens ?? 50, stopTokens: opts.stopTokens ?? [], gate: opts.gate ?? 0.5, cap: opts.cap ?? false, trials: trials.length, threshold: 0.1 };
}

/** The exact (decoding) retrieval scorer, one trial per item. Tables: score, and the trial's recall. */
export function retrievalScorer(trials: NeedleTrial[], opts: RetrievalOptions = {}): HeadScorer<NeedleTrial> {
  checkTrials(trials);
  const settings = settingsOf(opts, trials, 'decode');
  return {
    task: 'retrieval',
    settings,
    primary: 'score',
    items: trials,
    unfit: unfitTrial,
    counts: COUNTS,
    scoreItem: function* (model, trial) {
      const table = zeros(model.cfg.n_layers, model.cfg.n_heads);
      const [from, to] = copySpan(trial, settings.span);
      // their script runs the prompt minus its last token, then feeds the last one: every generated token is scored
      const output = yield* greedyDecodeReads(model, trial.tokens, {
        maxNewTokens: settings.maxNewTokens,
        stopTokens: settings.stopTokens,
        onStep: ({ seq, topKey, next }) => {
          topKey.forEach((row, l) =>
            row.forEach((k, h) => {
              if (k >= from && k < to && seq[k] === next) table[l][h] += 1 / (to - from);
            }),
          );
        },
      });
      const recall = answerRecall(model, trial, output);
      if (settings.cap) table.forEach((row) => row.forEach((v, h) => (row[h] = Math.min(1, v))));
      return { tables: { score: table }, weight: recall > settings.gate ? 1 : 0, info: { output, recall } };
    },
  };
}

/** Retrieval score of every head, [n_layers][n_heads], by greedy decoding (Wu et al. 2024). */
export function retrievalScores(model: HookedTransformer, trials: NeedleTrial[], opts: RetrievalOptions = {}): HeadScores {
  return runScorer(model, retrievalScorer(trials, opts), { top: opts.top });
}

/** retrievalScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function retrievalScoresAsync(model: HookedTransformer, trials: NeedleTrial[], opts: RetrievalOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, retrievalScorer(trials, opts), { top: opts.top });
}

/** The teacher-forced scorer: the reference answer appended, one forward pass per trial. */
export function retrievalTeacherForcedScorer(trials: NeedleTrial[], opts: RetrievalOptions = {}): HeadScorer<NeedleTrial> {
  checkTrials(trials);
  const settings = settingsOf(opts, trials, 'teacher-forced');
  return {
    task: 'retrieval',
    settings,
    primary: 'score',
    items: trials,
    unfit: unfitTrial,
    counts: COUNTS,
    scoreItem: function* (model, trial) {
      const { n_layers, n_heads } = model.cfg;
      const answer = trial.answer.slice(0, Math.min(settings.maxNewTokens, model.cfg.n_ctx - trial.tokens.length + 1)); // as far as decoding could go
      const seq = [...trial.tokens, ...answer.slice(0, -1)];
      const first = trial.tokens.length - 1; // the query that predicts answer[0]
      const names = Array.from({ length: n_layers }, (_, l) => actName('pattern', l));
      const { logits, cache } = model.runWithCache([seq], { names });
      let tkT: tf.Tensor;
      let predT: tf.Tensor;
      try {
        [tkT, predT] = tf.tidy(() => {
          const rows = names.map((n) => cache.get(n).slice([0, 0, first, 0], [1, -1, answer.length, -1]).squeeze([0])); // [head, step, key_pos]
          return [tf.stack(rows).argMax(3), logits.slice([0, first, 0], [1, answer.length, -1]).squeeze([0]).argMax(1)]; // [layer, head, step], [step]
        });
      } finally {
        cache.dispose();
        logits.dispose();
      }
      const [topKey, predicted] = yield* readNestedPair<number[][][], number[]>(tkT, predT); // predT is [step]
      const [from, to] = copySpan(trial, settings.span);
      const table = zeros(n_layers, n_heads);
      for (let l = 0; l < n_layers; l++) {
        for (let h = 0; h < n_heads; h++) {
          answer.forEach((tok, s) => {
            const k = topKey[l][h][s];
            if (k >= from && k < to && seq[k] === tok) table[l][h] += 1 / (to - from);
          });
        }
      }
      if (settings.cap) table.forEach((row) => row.forEach((v, h) => (row[h] = Math.min(1, v))));
      const accuracy = predicted.filter((p, s) => p === answer[s]).length / answer.length;
      return { tables: { score: table }, weight: accuracy > settings.gate ? 1 : 0, info: { accuracy } };
    },
  };
}

/** Teacher-forced retrieval score: the same counting on the reference answer, no decoding. */
export function retrievalScoresTeacherForced(model: HookedTransformer, trials: NeedleTrial[], opts: RetrievalOptions = {}): HeadScores {
  return runScorer(model, retrievalTeacherForcedScorer(trials, opts), { top: opts.top });
}

/** retrievalScoresTeacherForced, read asynchronously (WebGPU in Node). */
export function retrievalScoresTeacherForcedAsync(model: HookedTransformer, trials: NeedleTrial[], opts: RetrievalOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, retrievalTeacherForcedScorer(trials, opts), { top: opts.top });
}

/** The heads a retrieval table calls retrieval heads (score > threshold, 0.1 in Wu et al.), best first. */
export function retrievalHeads(scores: number[][], threshold = 0.1): { layer: number; head: number; score: number }[] {
  const out: { layer: number; head: number; score: number }[] = [];
  scores.forEach((row, layer) => row.forEach((score, head) => score > threshold && out.push({ layer, head, score })));
  return out.sort((a, b) => b.score - a.score);
}
