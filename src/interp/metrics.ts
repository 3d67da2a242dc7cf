/**
 * Metrics for patching: functions of logits that say how much of a behaviour is there.
 *
 * Patching experiments compare runs through one number. The logit difference between the right and a
 * wrong answer (Wang et al. 2022 use logit(IO) − logit(S) and report 3.56 for GPT-2 small on IOI) is the
 * usual choice: it is linear in the final residual stream before the final norm, it ignores what the
 * two answers share, and unlike a probability it does not saturate. Probability and KL divergence to the
 * clean run are there for when the answer is not a contrast. Zhang & Nanda 2023 ("Towards best practices
 * of activation patching") advise reporting the metric normalised so that 0 is the corrupted run and 1
 * the clean one; `normalized` does that.
 *
 * A Metric maps logits [rows, pos, d_vocab] to one value per row [rows]. Batched patching stacks many
 * variants of one prompt batch, so row i belongs to prompt i % batch; per-prompt answers and reference
 * logits are repeated to match. Metrics are made of tf ops, so tf.grad can differentiate them
 * (attribution patching).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

/**
 * Logits [rows, pos, d_vocab] → one value per row [rows]. A metric that reads one position says so in `at`:
 * `at.fn` maps that position's logits [rows, d_vocab] to the same values. The patching engine then unembeds that
 * position alone (for GPT-2 small the unembedding costs as much as five blocks per position). Every metric made
 * here has `at`; a hand-written function without it gets the full logits.
 */
export type Metric = ((logits: tf.Tensor3D) => tf.Tensor1D) & { at?: { pos: number; fn: (logits: tf.Tensor2D) => tf.Tensor1D } };

/** A metric of one position's logits [rows, d_vocab], read at `pos` (negative: from the end). */
export function atPosition(pos: number, fn: (logits: tf.Tensor2D) => tf.Tensor1D): Metric {
  const metric = ((logits: tf.Tensor3D) => tf.tidy(() => fn(at(logits, pos)))) as Metric;
  metric.at = { pos, fn: (x) => tf.tidy(() => fn(x)) };
  return metric;
}

/** The position a metric reads, as an index into a sequence of `n` tokens, or undefined if it reads them all. */
export function metricPosition(metric: Metric, n: number): number | undefined {
  if (!metric.at) return undefined;
  const p = metric.at.pos < 0 ? n + metric.at.pos : metric.at.pos;
  if (!Number.isInteger(p) || p < 0 || p >= n) throw new HeadlensError(`metric position ${metric.at.pos} is outside the sequence (${n} tokens)`);
  return p;
}

/** One token id for every prompt, or one per prompt. */
export type Answer = number | number[];

export interface MetricOptions {
  /** The position read (default -1: the last). */
  pos?: number;
}

/** logits[pos] as [rows, d_vocab]. */
function at(logits: tf.Tensor3D, pos = -1): tf.Tensor2D {
  const n = logits.shape[1];
  const p = pos < 0 ? n + pos : pos;
  if (!Number.isInteger(p) || p < 0 || p >= n) throw new HeadlensError(`metric position ${pos} is outside the sequence (${n} tokens)`);
  return logits.slice([0, p, 0], [-1, 1, -1]).reshape([logits.shape[0], logits.shape[2]]) as tf.Tensor2D;
}

/** The answer id of every row (prompt answers repeated over stacked variants), checked against the vocabulary. */
function ids(answer: Answer, rows: number, dVocab: number, what: string): tf.Tensor1D {
  const list = typeof answer === 'number' ? [answer] : answer;
  if (list.length === 0) throw new HeadlensError(`no ${what} token given`);
  for (const a of list) if (!Number.isInteger(a) || a < 0 || a >= dVocab) throw new HeadlensError(`${what} token ${a} is not in the vocabulary [0, ${dVocab})`);
  if (rows % list.length !== 0) throw new HeadlensError(`${list.length} ${what} tokens do not divide ${rows} rows`, 'give one answer, or one per prompt');
  return tf.tensor1d(Array.from({ length: rows }, (_, i) => list[i % list.length]), 'int32');
}

/** Picks logits2d[i, id[i]] → [rows]. */
function pick(x: tf.Tensor2D, id: tf.Tensor1D): tf.Tensor1D {
  return x.mul(tf.oneHot(id, x.shape[1])).sum(1) as tf.Tensor1D;
}

/** logit(answer) − logit(wrong) at `pos`. */
export function logitDiff(answer: Answer, wrong: Answer, opts: MetricOptions = {}): Metric {
  return atPosition(opts.pos ?? -1, (x) => {
    const [rows, v] = x.shape;
    return pick(x, ids(answer, rows, v, 'answer')).sub(pick(x, ids(wrong, rows, v, 'wrong'))) as tf.Tensor1D;
  });
}

/** The logit of `answer` at `pos`. */
export function logitOf(answer: Answer, opts: MetricOptions = {}): Metric {
  return atPosition(opts.pos ?? -1, (x) => pick(x, ids(answer, x.shape[0], x.shape[1], 'answer')));
}

/** The probability of `answer` at `pos`. */
export function probability(answer: Answer, opts: MetricOptions = {}): Metric {
  return atPosition(opts.pos ?? -1, (x) => pick(tf.softmax(x, -1) as tf.Tensor2D, ids(answer, x.shape[0], x.shape[1], 'answer')));
}

/** log p(answer) at `pos`, in nats (the temporal-head scorer's measure). */
export function logProb(answer: Answer, opts: MetricOptions = {}): Metric {
  return atPosition(opts.pos ?? -1, (x) => pick(tf.logSoftmax(x, -1) as tf.Tensor2D, ids(answer, x.shape[0], x.shape[1], 'answer')));
}

/** 1 where `answer` is the top token at `pos` (the first on ties), else 0: top-1 accuracy once averaged. */
export function accuracy(answer: Answer, opts: MetricOptions = {}): Metric {
  return atPosition(opts.pos ?? -1, (x) => x.argMax(1).equal(ids(answer, x.shape[0], x.shape[1], 'answer')).toFloat() as tf.Tensor1D);
}

/**
 * KL(reference ‖ run) at `pos`, in nats: Σ p_ref (log p_ref − log p_run). `reference` is [batch, pos,
 * d_vocab] (e.g. the clean logits); the metric copies what it needs and holds no tensor.
 */
export function klDivergence(reference: tf.Tensor3D, opts: MetricOptions = {}): Metric {
  const ref = tf.tidy(() => tf.logSoftmax(at(reference, opts.pos), -1).arraySync() as number[][]); // [batch, d_vocab]
  return atPosition(opts.pos ?? -1, (x) => {
    const rows = x.shape[0];
    if (rows % ref.length !== 0 || x.shape[1] !== ref[0].length) {
      throw new HeadlensError(`KL reference is [${ref.length}, ${ref[0].length}] but the run is [${x.shape}]`, 'use reference logits of the same prompts and model');
    }
    const lr = tf.tensor2d(Array.from({ length: rows }, (_, i) => ref[i % ref.length]));
    return tf.exp(lr).mul(lr.sub(tf.logSoftmax(x, -1))).sum(1) as tf.Tensor1D;
  });
}

/** (metric − corrupted) / (clean − corrupted): 0 is the corrupted run, 1 the clean one. */
export function normalized(metric: Metric, clean: number, corrupted: number): Metric {
  const span = clean - corrupted;
  if (!Number.isFinite(span) || span === 0) {
    throw new HeadlensError(`the metric is ${clean} on the clean run and ${corrupted} on the corrupted one`, 'normalising needs two different values: choose prompts or answers that differ');
  }
  const scale = (v: tf.Tensor1D) => v.sub(corrupted).div(span) as tf.Tensor1D;
  if (metric.at) {
    const inner = metric.at.fn;
    return atPosition(metric.at.pos, (x) => scale(inner(x)));
  }
  return (logits) => tf.tidy(() => scale(metric(logits)));
}

/** The metric averaged over rows, as a number. */
export function metricValue(metric: Metric, logits: tf.Tensor3D): number {
  const t = metricMean(metric, logits);
  try {
    return t.dataSync()[0];
  } finally {
    t.dispose();
  }
}

/** metricValue as a scalar tensor the caller owns and reads. */
export function metricMean(metric: Metric, logits: tf.Tensor3D): tf.Scalar {
  return tf.tidy(() => metric(logits).mean() as tf.Scalar);
}
