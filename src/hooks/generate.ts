/**
 * Decoding with a KV cache (TransformerLens' HookedTransformer.generate). The prompt is run once (prefill), its
 * keys and values kept (src/model/kv_cache.ts); each later step feeds only the token just chosen, so a step costs
 * one position's forward instead of the whole sequence's. The logits at every step equal the full re-run's at
 * the last position up to float rounding (tests/generate.test.ts checks 1e-4 on every fixture family).
 *
 * Choices, documented:
 * - Greedy by default (temperature 0 or absent: the argmax, the first maximum). TransformerLens samples by
 *   default; headlens decodes greedily because retrieval scoring and needle accuracy are defined on the greedy
 *   answer. With temperature > 0 tokens are sampled from softmax(logits / temperature), restricted to the topK
 *   largest logits if given, with the seeded generator of src/util/random.ts (seed 0 unless given): the same
 *   seed gives the same tokens; pass another seed for another sample.
 * - Hooks (fwdHooks and addHook's) apply at the prefill and at every decoding step, to the positions fed at that
 *   step: a head zero-ablated at hook_z stays ablated for every generated token. At a decoding step the
 *   activations cover only the new position, [batch, 1, …]; hook_attn_scores and hook_pattern are
 *   [batch, head, 1, key_pos] (the new query row against every key so far), and hook_k / hook_v / hook_rot_k
 *   the new position's keys only (what a hook changed there is what the cache keeps).
 * - decodeHooks apply only to the forwards that choose a token, as Wu et al.'s masking script
 *   (needle_in_haystack_with_mask.py) masks heads: the prefill then runs the prompt minus its last token, intact
 *   (fwdHooks only), and the last prompt token is fed at step 0 with fwdHooks and decodeHooks, so the prompt's
 *   keys and values before it are what the unhooked model computes and every query that predicts a token is
 *   hooked. Step 0's activations (and its cache for onStep) then cover that one position.
 * - The context: generation stops (stop: 'n_ctx') once the sequence fills n_ctx; the token predicted at the
 *   last position is still returned, so at most n_ctx − prompt length + 1 tokens come back. A prompt longer
 *   than n_ctx is an error.
 * - Batches: every row has the prompt length of the others. A row that wrote a stop token is finished (the
 *   stop token is its last output); the loop ends when every row is, or at maxNewTokens.
 * - Prompts of unequal length: left-padded, with `attentionMask` (toTokens(texts, { padding: 'left' })). The
 *   cache keeps the mask, so every step masks the padding and counts positions from each row's first real
 *   token (src/model/padding.ts): each row generates what its prompt generates alone. Right padding is
 *   refused: the new tokens would follow the padding.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { KVCache } from '../model/kv_cache.js';
import { maskRows, type AttentionMaskInput } from '../model/padding.js';
import type { TokenInput } from '../model/transformer.js';
import { Random } from '../util/random.js';
import { readAsync, readSync, type Reads } from '../util/reads.js';
import type { ActivationCache } from './activation_cache.js';
import type { FwdHook, HookedTransformer, NamesFilter, PatternRows } from './hooked_transformer.js';

/** What onStep sees at each step. Tensors (logits, cache) belong to generate and are freed after the callback. */
export interface GenerateStep {
  /** 0 for the token chosen after the prompt, then 1, 2, … */
  step: number;
  /** The absolute position whose logits chose this step's tokens (prompt length − 1 + step). */
  position: number;
  /** Each row's tokens so far (prompt and generated), before this step's token. [batch][prompt + step] */
  sequences: number[][];
  /** The token chosen for each row. [batch] */
  tokens: number[];
  /** Logits at `position`. [batch, d_vocab] */
  logits: tf.Tensor2D;
  /** The activations `names` asked for, of this step's forward (patterns: the rows of `patternRows`; ln_final's hook points: the last position only). */
  cache?: ActivationCache;
}

export interface GenerateOptions<T = never> {
  /** Most tokens to generate per row (default 10, as TransformerLens). */
  maxNewTokens?: number;
  /** Token ids that end a row (EOS, newline); the stop token is included in the output. */
  stopTokens?: number[];
  /** Hooks for every forward of this call (prefill and each step), besides addHook's. */
  fwdHooks?: FwdHook[];
  /** Hooks for the decoding forwards only, from the last prompt token on; the prompt before it stays intact (see above). */
  decodeHooks?: FwdHook[];
  /** 0 or absent: greedy argmax (the default). > 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** With temperature > 0, sample among the topK largest logits only. */
  topK?: number;
  /** Seed of the sampling generator (default 0). */
  seed?: number;
  /** Activations to cache at each step and hand to onStep (default none). */
  names?: NamesFilter;
  /** Query rows of hook_attn_scores / hook_pattern the step cache keeps (default 'last', the row that predicts). */
  patternRows?: PatternRows;
  /** Called after each step's token is chosen; what it returns (if not undefined) is collected in `records`. */
  onStep?: (step: GenerateStep) => T | void;
  /** [batch, pos] for left-padded prompts: 1 = real token, 0 = padding (only at the start of a row). */
  attentionMask?: AttentionMaskInput;
}

export interface GenerateResult<T = never> {
  /** The generated ids of each row, stop tokens included. [batch][new tokens] */
  tokens: number[][];
  /** What onStep returned at each step, in order. */
  records: T[];
  /** Why decoding ended: every row wrote a stop token, maxNewTokens was reached, or the sequence filled n_ctx. */
  stop: 'stop' | 'max' | 'n_ctx';
}

export function generate<T = never>(model: HookedTransformer, tokens: TokenInput, opts: GenerateOptions<T> = {}): GenerateResult<T> {
  return readSync(generateReads(model, tokens, opts));
}

/**
 * generate, reading each step's next tokens asynchronously: the form that runs on WebGPU in Node, where tfjs
 * cannot read synchronously (util/reads.ts). onStep is still called synchronously at each step.
 */
export function generateAsync<T = never>(model: HookedTransformer, tokens: TokenInput, opts: GenerateOptions<T> = {}): Promise<GenerateResult<T>> {
  return readAsync(generateReads(model, tokens, opts));
}

/** generate as a computation (util/reads.ts), for callers that read more between or after the steps. */
export function* generateReads<T>(model: HookedTransformer, tokens: TokenInput, opts: GenerateOptions<T>): Reads<GenerateResult<T>> {
  const { n_ctx, d_vocab, n_layers } = model.cfg;
  const maxNew = opts.maxNewTokens ?? 10;
  const temperature = opts.temperature ?? 0;
  if (!(Number.isInteger(maxNew) && maxNew >= 0)) throw new HeadlensError(`generate: maxNewTokens must be an integer ≥ 0, got ${maxNew}`);
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw new HeadlensError(`generate: temperature must be a finite number ≥ 0, got ${temperature}`, 'use 0 for greedy decoding');
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 1)) throw new HeadlensError(`generate: topK must be an integer ≥ 1, got ${opts.topK}`);
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) throw new HeadlensError(`generate: seed must be an integer, got ${opts.seed}`);
  const stopTokens = new Set(opts.stopTokens ?? []);
  for (const s of stopTokens) {
    if (!(Number.isInteger(s) && s >= 0 && s < d_vocab)) throw new HeadlensError(`generate: stop token ${s} is not in the vocabulary [0, ${d_vocab})`, 'pass token ids, e.g. the tokenizer\'s EOS id');
  }
  const sequences = model.tokenRows(tokens).map((r) => [...r]); // checks the ids and n_ctx; a copy, since rows grow
  const promptLen = sequences[0].length;
  const mask = opts.attentionMask === undefined ? undefined : maskRows(opts.attentionMask, sequences.length, promptLen);
  mask?.forEach((r, i) => {
    if (r.indexOf(0, r.indexOf(1)) >= 0) {
      throw new HeadlensError(`generate: attentionMask row ${i} has padding after a real token`, "pad prompts on the left for generate: toTokens(texts, { padding: 'left' })");
    }
  });
  const topK = opts.topK === undefined ? undefined : Math.min(opts.topK, d_vocab);
  const rng = new Random(opts.seed ?? 0);
  // step s feeds positions up to promptLen − 1 + s, which must be < n_ctx
  const steps = Math.min(maxNew, n_ctx - promptLen + 1);

  const out: number[][] = sequences.map(() => []);
  const done = sequences.map(() => false);
  const records: T[] = [];
  // room for every position fed (the prompt, then one a step but the last): a slab cache never grows
  const kvCache = new KVCache(n_layers, { capacity: promptLen + Math.max(0, steps - 1) });
  let feed: number[][] = sequences.map((r) => [...r]);
  let stop: GenerateResult['stop'] = steps < maxNew ? 'n_ctx' : 'max';
  const decodeHooks = opts.decodeHooks ?? [];
  const stepHooks = decodeHooks.length ? [...(opts.fwdHooks ?? []), ...decodeHooks] : opts.fwdHooks;
  try {
    if (decodeHooks.length && steps > 0) {
      // the intact prefill: every prompt token but the last, which step 0 feeds with the decode hooks
      if (promptLen > 1) model.runWithHooks(sequences.map((r) => r.slice(0, -1)), { fwdHooks: opts.fwdHooks, kvCache, attentionMask: mask?.map((r) => r.slice(0, -1)), logits: 'last' }).dispose();
      feed = sequences.map((r) => [r[r.length - 1]]);
    }
    for (let step = 0; step < steps; step++) {
      // the prefill carries the mask (with decodeHooks, its last column: the rest went in above); later steps feed
      // real tokens, and the cache remembers the padding
      const first = decodeHooks.length ? mask?.map((r) => r.slice(-1)) : mask;
      // only the last position's logits are read: a long prompt's [batch, pos, d_vocab] is never made
      const run = { fwdHooks: stepHooks, kvCache, attentionMask: step === 0 ? first : undefined, logits: 'last' as const };
      const { logits, cache } = opts.names !== undefined
        ? model.runWithCache(feed, { ...run, names: opts.names, patternRows: opts.patternRows ?? 'last' })
        : { logits: model.runWithHooks(feed, run), cache: undefined };
      let last: tf.Tensor2D | undefined;
      try {
        const [batch, fed] = logits.shape;
        last = tf.tidy(() => logits.slice([0, fed - 1, 0], [batch, 1, d_vocab]).reshape([batch, d_vocab]) as tf.Tensor2D); // [batch, d_vocab]
        const next = temperature === 0 ? yield* greedy(last) : yield* sample(last, temperature, topK, rng);
        const record = opts.onStep?.({ step, position: promptLen - 1 + step, sequences: sequences.map((r) => [...r]), tokens: next, logits: last, cache });
        if (record !== undefined) records.push(record as T);
        next.forEach((t, i) => {
          if (done[i]) return;
          out[i].push(t);
          sequences[i].push(t);
          if (stopTokens.has(t)) done[i] = true;
        });
        // a finished row is fed its last token again, to keep the batch rectangular: its outputs are no longer read
        feed = sequences.map((r) => [r[r.length - 1]]);
      } finally {
        last?.dispose();
        logits.dispose();
        cache?.dispose();
      }
      if (done.every(Boolean)) {
        stop = 'stop';
        break;
      }
    }
  } finally {
    kvCache.dispose();
  }
  return { tokens: out, records, stop };
}

/** The argmax of each row (the first maximum), read back as [batch] ids. */
function* greedy(logits: tf.Tensor2D): Reads<number[]> {
  return Array.from(yield logits.argMax(1));
}

/**
 * One token per row from softmax(logits / temperature), among the topK largest if given. The probabilities are
 * computed in float64 on the host from the logits read back, so the same seed gives the same tokens on any
 * backend whose logits agree.
 */
function* sample(logits: tf.Tensor2D, temperature: number, topK: number | undefined, rng: Random): Reads<number[]> {
  const [batch, vocab] = logits.shape;
  let values: Float32Array;
  let indices: Int32Array | undefined;
  let k = vocab;
  if (topK !== undefined && topK < vocab) {
    k = topK;
    const top = tf.topk(logits, topK, true); // values sorted, ties by lower index first
    values = (yield top.values) as Float32Array; // the driver disposes what it reads
    indices = (yield top.indices) as Int32Array;
  } else {
    values = (yield logits.clone()) as Float32Array;
  }
  const chosen: number[] = [];
  for (let b = 0; b < batch; b++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, values[b * k + j]);
    const weights = new Float64Array(k);
    let total = 0;
    for (let j = 0; j < k; j++) total += weights[j] = Math.exp((values[b * k + j] - max) / temperature);
    let r = rng.next() * total;
    let j = 0;
    while (j < k - 1 && (r -= weights[j]) >= 0) j++;
    chosen.push(indices ? indices[b * k + j] : j);
  }
  return chosen;
}
