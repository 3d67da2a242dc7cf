/**
 * The logit lens: read the residual stream of every layer through the unembedding, as if the model
 * stopped there.
 *
 * nostalgebraist (2020, "interpreting GPT: the logit lens") decoded GPT-2's intermediate residual
 * streams with the model's own final norm and unembedding and found that the prediction forms gradually:
 * the final answer often ranks near the top many layers before the end. Default here: with the final
 * norm, applied with each residual's own statistics. That is what the unembedding was trained to read:
 * the residual norm grows with depth (often several-fold over a model), so decoding raw residuals mixes
 * "how sure" with "how deep", and on LayerNorm models the mean component would add a constant offset.
 * `applyFinalNorm: false` decodes x·W_U + b_U unchanged, which is linear and so sums over components
 * (what DLA builds on). The lens is known to be unreliable for early layers of some families (Belrose et
 * al. 2023 train per-layer "tuned lens" translators for that); it is a first look, not a measurement.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import type { Answer } from '../metrics.js';
import { readAsync, readNested, readSync, type Reads } from '../../util/reads.js';

export interface LogitLensOptions {
  /** Decode through the final norm (default true). */
  applyFinalNorm?: boolean;
  /** The position read (default -1: the last). */
  pos?: number;
}

/**
 * Logits from the residual stream before each layer and after the last, at one position:
 * [n_layers + 1, batch, d_vocab] (caller owns). Entry l decodes blocks.{l}.hook_resid_pre; entry
 * n_layers decodes the final residual (with the final norm: exactly the model's logits).
 */
export function logitLens(model: HookedTransformer, tokens: TokenInput, opts: LogitLensOptions = {}): tf.Tensor3D {
  const { cfg } = model;
  const names = [...Array.from({ length: cfg.n_layers }, (_, l) => actName('resid_pre', l)), actName('resid_post', cfg.n_layers - 1)];
  const { logits, cache } = model.runWithCache(tokens, { names });
  try {
    const [batch, nPos] = logits.shape;
    const p = (opts.pos ?? -1) < 0 ? nPos + (opts.pos ?? -1) : opts.pos!;
    if (!Number.isInteger(p) || p < 0 || p >= nPos) throw new HeadlensError(`position ${opts.pos} is outside the sequence (${nPos} tokens)`);
    return tf.tidy(() => {
      // [layer + 1, batch, d_model]: resid_pre of every layer and the final resid_post, each through ln_final with its own statistics
      const { stack } = cache.accumulatedResid(undefined, { posSlice: p, applyLn: opts.applyFinalNorm !== false });
      return model.unembed(stack) as tf.Tensor3D; // [layer + 1, batch, d_vocab]
    });
  } finally {
    cache.dispose();
    logits.dispose();
  }
}

export interface LensRow {
  /** 'resid_pre L' or 'final'. */
  layer: string;
  /** The top tokens of the first prompt, best first. */
  top: { id: number; logit: number; prob: number }[];
  /** The answer's log-probability and rank (0 = best), averaged over prompts, if an answer was given. */
  answerLogProb?: number;
  answerRank?: number;
}

/** A JSON summary of the lens: per layer, top-k tokens of the first prompt and the answer's log-prob and rank. */
export function logitLensSummary(model: HookedTransformer, tokens: TokenInput, opts: LogitLensOptions & { answer?: Answer; topK?: number } = {}): LensRow[] {
  return readSync(logitLensSummaryReads(model, tokens, opts));
}

/** logitLensSummary, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function logitLensSummaryAsync(model: HookedTransformer, tokens: TokenInput, opts: LogitLensOptions & { answer?: Answer; topK?: number } = {}): Promise<LensRow[]> {
  return readAsync(logitLensSummaryReads(model, tokens, opts));
}

function* logitLensSummaryReads(model: HookedTransformer, tokens: TokenInput, opts: LogitLensOptions & { answer?: Answer; topK?: number }): Reads<LensRow[]> {
  const lens = logitLens(model, tokens, opts);
  try {
    const lp = yield* readNested<number[][][]>(tf.tidy(() => tf.logSoftmax(lens, -1))); // [layer, batch, d_vocab]
    const raw = yield* readNested<number[][][]>(lens.clone());
    const k = opts.topK ?? 5;
    return lp.map((layer, l) => {
      const order = Array.from(layer[0].keys()).sort((a, b) => layer[0][b] - layer[0][a]).slice(0, k);
      const row: LensRow = {
        layer: l < model.cfg.n_layers ? `resid_pre ${l}` : 'final',
        top: order.map((id) => ({ id, logit: raw[l][0][id], prob: Math.exp(layer[0][id]) })),
      };
      if (opts.answer !== undefined) {
        const ans = (b: number) => (typeof opts.answer === 'number' ? opts.answer : opts.answer![b]);
        let s = 0;
        let r = 0;
        layer.forEach((v, b) => {
          const a = ans(b);
          if (!Number.isInteger(a) || a < 0 || a >= v.length) throw new HeadlensError(`answer token ${a} is not in the vocabulary`);
          s += v[a];
          r += v.filter((x) => x > v[a]).length;
        });
        row.answerLogProb = s / layer.length;
        row.answerRank = r / layer.length;
      }
      return row;
    });
  } finally {
    lens.dispose();
  }
}
