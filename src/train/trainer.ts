/**
 * A small trainer for the toy zoo and for teaching: next-token cross-entropy, AdamW, warm-up + cosine
 * schedule, global-norm gradient clipping, a seeded data order, periodic evaluation, and checkpoints in
 * the model's HF layout plus the optimizer state, from which `resume` continues exactly where it stopped
 * (same data, same moments, same schedule).
 *
 * `train` is three pieces a caller can also drive itself: `prepareTraining` (optimizer, trainable
 * variables, the seeded generator, resumed state), `trainStep` (one optimizer step on one batch) and
 * `saveCheckpoint`. It draws nothing: progress reaches the caller through `onProgress` and `log`.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { actName } from '../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../hooks/hooked_transformer.js';
import { inCheckpoint } from '../model/params.js';
import { Random } from '../util/random.js';
import { AdamW, warmupCosine } from './adamw.js';
import { readCheckpoint, writeCheckpoint, type TrainerState } from './checkpoint.js';

/** A batch of token rows and, optionally, which next-token predictions count (1) in the loss. */
export interface Batch {
  tokens: number[][];
  /** [batch, pos - 1]: weight of predicting tokens[b][p + 1] from position p. Default: all 1. */
  lossMask?: number[][];
  /** [batch, pos]: 1 where TrainOptions.headDropout applies, 0 where not. Default: everywhere. */
  headDropRegion?: number[][];
  /**
   * Where TrainOptions.attentionTargets may ask a head to attend: [row, query, key] triples, by what they mark
   * (toy-lm: 'ioi', from the last position of each IOI story to its indirect object; 'mcq', from the colon of a
   * question's "Answer:" to the first token of its correct option). Default: none.
   */
  attentionPairs?: Record<string, [number, number, number][]>;
  /**
   * Encoders (masked LM): [batch, pos], the id each position must predict, −1 where it predicts nothing (BERT's
   * unselected positions). With it the loss is the masked-LM cross-entropy over the selected positions, and
   * lossMask is not used.
   */
  mlmTargets?: number[][];
  /** Encoders: token types [batch, pos] (default 0). */
  tokenTypeIds?: number[][];
  /** [batch, pos], 1 real token, 0 padding (default: no padding). */
  attentionMask?: number[][];
}

export interface DataSource {
  /** A training batch; all randomness must come from `rng` so the data order is seeded and resumable. */
  batch(rng: Random, batchSize: number): Batch;
  /** Fixed evaluation batches (the same on every call). */
  evalBatches(): Batch[];
}

export interface TrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  minLrRatio?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  /** Global gradient-norm clip (0: off). */
  clip?: number;
  /**
   * Head dropout: each attention head's output (hook_z) is dropped with this probability, independently at
   * every position of every row inside the batch's headDropRegion, and the heads kept are scaled by 1/(1 − p)
   * (default 0: off). The draws come from the run's seeded generator, so a resumed run draws the same.
   */
  headDropout?: number;
  /**
   * Attention supervision, a way to plant a mechanism in a toy model: each target adds weight × the mean over
   * the batch's attentionPairs[pairs] of −ln(attention of `head` in `layer` from query to key) to the training
   * loss. Only that attention pattern is a target: what the head reads and writes, and whether the model uses
   * it, are left to the language-model loss. Evaluation losses leave it out. Default: none.
   */
  attentionTargets?: AttentionTarget[];
  seed: number;
  evalEvery?: number;
  /** Write a checkpoint to `outDir` every this many steps and at the end (0: only at the end). */
  checkpointEvery?: number;
  outDir?: string;
  /** Stop (after checkpointing) once this call has trained this many seconds; `resume` continues (and counts its own). */
  maxSeconds?: number;
  /** Called after every step. Reading the step's loss waits for the device; without onProgress train reads it only when it needs it. */
  onProgress?: (p: TrainProgress) => void;
  /** Called with every evaluation's line (also kept in TrainResult.history). */
  log?: (line: TrainLog) => void;
  /**
   * Kept in the checkpoint's trainer_state.json as `meta` (readTrainerMeta reads it back): the CLI keeps the
   * flags a run was started with there, so that `--resume` continues with them.
   */
  meta?: Record<string, string>;
}

export interface AttentionTarget {
  layer: number;
  head: number;
  weight: number;
  /** Which of the batch's attentionPairs: e.g. 'ioi'. */
  pairs: string;
}

/** A target's name in logs: "L3H0@ioi". */
export const targetName = (t: AttentionTarget): string => `L${t.layer}H${t.head}@${t.pairs}`;

export interface TrainLog {
  step: number;
  /** The training loss of the step: with an attention target, its weighted term included. */
  loss: number;
  evalLoss?: number;
  /** With attention targets: each one's term (unweighted, −ln attention) on the evaluation batches, by targetName. */
  evalAttention?: Record<string, number>;
  lr: number;
  tokensPerSecond: number;
}

/** Where a run stands after a step (TrainOptions.onProgress). */
export interface TrainProgress {
  step: number;
  /** TrainOptions.steps. */
  steps: number;
  /** The step's training loss. */
  loss: number;
  /** The latest evaluation loss; NaN before the first evaluation. */
  evalLoss: number;
  tokensPerSecond: number;
}

export interface TrainResult {
  step: number;
  finalLoss: number;
  finalEvalLoss: number;
  tokens: number;
  seconds: number;
  history: TrainLog[];
  /** false when it stopped early at maxSeconds. */
  finished: boolean;
}

/**
 * Mean next-token cross-entropy of `tokens` (weighted by the mask), or with batch.mlmTargets the masked-LM
 * cross-entropy of the selected positions. A scalar the caller owns.
 */
export function lmLoss(model: HookedTransformer, batch: Batch, hooks?: FwdHook[]): tf.Scalar {
  return tf.tidy(() => batchLoss(runBatch(model, batch, hooks ?? []), batch));
}

/** The model's logits on a batch, with its token types and attention mask. */
function runBatch(model: HookedTransformer, batch: Batch, hooks: FwdHook[]): tf.Tensor3D {
  const opts = { tokenTypeIds: batch.tokenTypeIds, attentionMask: batch.attentionMask };
  return hooks.length ? model.runWithHooks(batch.tokens, { fwdHooks: hooks, ...opts }) : model.forward(batch.tokens, opts);
}

function batchLoss(logits: tf.Tensor, batch: Batch): tf.Scalar {
  return batch.mlmTargets ? maskedLmLoss(logits, batch.mlmTargets) : nextTokenLoss(logits, batch);
}

/** Mean cross-entropy at the positions whose target is ≥ 0 (BERT's masked-LM loss). logits [batch, pos, d_vocab]. */
export function maskedLmLoss(logits: tf.Tensor, targets: number[][]): tf.Scalar {
  const [b, p, v] = logits.shape;
  const at: number[] = [];
  const ids: number[] = [];
  targets.forEach((r, i) => r.forEach((t, j) => {
    if (t >= 0) (at.push(i * p + j), ids.push(t));
  }));
  if (!at.length) throw new HeadlensError('masked-LM loss: no position of the batch is selected', 'select at least one position per batch (target ≥ 0)');
  return tf.tidy(() => {
    const rows = tf.gather(logits.reshape([b * p, v]), tf.tensor1d(at, 'int32')); // [selected, d_vocab]
    const logp = tf.logSoftmax(rows);
    return tf.oneHot(tf.tensor1d(ids, 'int32'), v).mul(logp).sum().div(-at.length) as tf.Scalar;
  });
}

function nextTokenLoss(logits: tf.Tensor, batch: Batch): tf.Scalar {
  const [b, p, v] = logits.shape; // [batch, pos, d_vocab]
  const logp = tf.logSoftmax(logits.slice([0, 0, 0], [b, p - 1, v])); // predictions for positions 1..p-1
  const targets = tf.tensor2d(batch.tokens.map((r) => r.slice(1)), [b, p - 1], 'int32');
  const nll = tf.oneHot(targets, v).mul(logp).sum(-1).neg(); // [batch, pos - 1]
  const mask = batch.lossMask ? tf.tensor2d(batch.lossMask, [b, p - 1]) : tf.onesLike(nll);
  return nll.mul(mask).sum().div(mask.sum()) as tf.Scalar;
}

/**
 * The loss a training step minimises: lmLoss, plus each target's weight × its term where the batch marks its
 * pairs (TrainOptions.attentionTargets). A scalar the caller owns.
 */
export function trainingLoss(model: HookedTransformer, batch: Batch, hooks: FwdHook[] = [], targets: AttentionTarget[] = []): tf.Scalar {
  const active = targets.filter((t) => batch.attentionPairs?.[t.pairs]?.length);
  if (!active.length) return lmLoss(model, batch, hooks);
  return tf.tidy(() => {
    // the terms are taken inside the hooks (one per layer): the forward pass disposes its activations, the
    // patterns too, on return
    let terms: tf.Scalar = tf.scalar(0);
    const capture = [...new Set(active.map((t) => t.layer))].map((layer): FwdHook => [
      actName('pattern', layer),
      (a) => {
        for (const t of active.filter((x) => x.layer === layer)) {
          const next = tf.keep(terms.add(attentionTerm(a, batch.attentionPairs![t.pairs], t.head).mul(t.weight)) as tf.Scalar);
          terms.dispose();
          terms = next;
        }
      },
    ]);
    const lm = batchLoss(runBatch(model, batch, [...hooks, ...capture]), batch);
    const total = lm.add(terms) as tf.Scalar;
    terms.dispose();
    return total;
  });
}

/** Mean −ln(attention) of `head` over [row, query, key] pairs, from a [batch, head, query, key] pattern. */
function attentionTerm(pattern: tf.Tensor, pairs: [number, number, number][], head: number): tf.Scalar {
  return tf.tidy(() => {
    const [b, , p] = pattern.shape;
    const flat = pattern.slice([0, head, 0, 0], [b, 1, p, p]).reshape([-1]);
    const at = tf.tensor1d(pairs.map(([r, q, k]) => (r * p + q) * p + k), 'int32');
    return tf.gather(flat, at).add(1e-9).log().mean().neg() as tf.Scalar;
  });
}

/** A target's term (without its weight) averaged over the evaluation batches that mark its pairs; NaN if none do. */
export async function evaluateAttention(model: HookedTransformer, data: DataSource, target: AttentionTarget): Promise<number> {
  return (await evaluateBoth(model, data, [target])).attention[0];
}

/**
 * The hooks of one step's head dropout (see TrainOptions.headDropout): per layer, a keep mask of
 * [batch, pos, n_heads, 1] drawn from `rng`, multiplied into attn.hook_z.
 */
export function headDropoutHooks(model: HookedTransformer, batch: Batch, p: number, rng: Random): FwdHook[] {
  if (!(p >= 0 && p < 1)) throw new HeadlensError(`head dropout ${p} is not in [0, 1)`, 'e.g. 0.1; 0 turns it off');
  if (p === 0) return [];
  const { n_layers: L, n_heads: H } = model.cfg;
  const [b, pos] = [batch.tokens.length, batch.tokens[0].length];
  const region = batch.headDropRegion;
  return Array.from({ length: L }, (_, layer): FwdHook => {
    const keep = new Float32Array(b * pos * H);
    for (let r = 0; r < b; r++) for (let t = 0; t < pos; t++) for (let h = 0; h < H; h++) {
      const inside = !region || region[r][t] === 1;
      keep[(r * pos + t) * H + h] = !inside ? 1 : rng.next() < p ? 0 : 1 / (1 - p);
    }
    return [actName('z', layer), (z) => z.mul(tf.tensor4d(keep, [b, pos, H, 1]))];
  });
}

/** Mean loss over the data source's evaluation batches. */
export async function evaluate(model: HookedTransformer, data: DataSource): Promise<number> {
  return (await evaluateBoth(model, data)).loss;
}

/**
 * evaluate's loss and each target's evaluateAttention term, from one forward pass over each evaluation batch
 * (the patterns are cached only where the batch marks a target's pairs).
 */
async function evaluateBoth(model: HookedTransformer, data: DataSource, targets: AttentionTarget[] = []): Promise<{ loss: number; attention: number[] }> {
  const batches = data.evalBatches();
  let loss = 0;
  const [attention, marked] = [targets.map(() => 0), targets.map(() => 0)];
  for (const b of batches) {
    const here = targets.map((t) => b.attentionPairs?.[t.pairs] ?? []);
    const names = [...new Set(targets.filter((_, i) => here[i].length).map((t) => actName('pattern', t.layer)))];
    const run = { tokenTypeIds: b.tokenTypeIds, attentionMask: b.attentionMask };
    const { logits, cache } = names.length ? model.runWithCache(b.tokens, { names, ...run }) : { logits: model.forward(b.tokens, run), cache: undefined };
    const [l, ...ts] = tf.tidy(() => [batchLoss(logits, b), ...targets.map((t, i) => (here[i].length ? attentionTerm(cache!.get(actName('pattern', t.layer)), here[i], t.head) : tf.scalar(NaN)))]);
    loss += (await l.data())[0];
    for (let i = 0; i < targets.length; i++) {
      if (!here[i].length) continue;
      attention[i] += (await ts[i].data())[0];
      marked[i]++;
    }
    tf.dispose([l, ...ts, logits]);
    cache?.dispose();
  }
  return { loss: loss / batches.length, attention: attention.map((a, i) => (marked[i] ? a / marked[i] : NaN)) };
}

/** A run being trained: what prepareTraining sets up, trainStep advances and saveCheckpoint writes. */
export interface Training {
  readonly model: HookedTransformer;
  readonly data: DataSource;
  readonly opts: TrainOptions;
  /** opts.attentionTargets, checked against the model and the data. */
  readonly targets: AttentionTarget[];
  readonly optimizer: AdamW;
  /** Trainable copies of the parameters the checkpoint stores, by name; the model computes with these. */
  readonly vars: Map<string, tf.Variable>;
  /** The run's one seeded generator: each step draws its batch, then its head dropout, from it. */
  readonly rng: Random;
  /** Step, tokens, seconds and history so far: what a checkpoint stores. */
  readonly state: TrainerState;
  /** Date.now() minus the seconds already trained, so that state.seconds counts resumed parts too. */
  readonly clock: number;
}

/**
 * Sets up training `model` in place: checks it and the attention targets, makes the optimizer and the trainable
 * variables, and seeds the generator; with `resumeFrom` (a folder an earlier run checkpointed into) the state,
 * data order and optimizer moments continue from there, and the model passed in must be the one loaded from
 * that folder. Call endTraining when done.
 */
export function prepareTraining(model: HookedTransformer, data: DataSource, opts: TrainOptions, resumeFrom?: string): Training {
  if (model.processing.length) throw new HeadlensError('cannot train a model whose weights were processed', 'train the checkpoint as it is');
  const targets = opts.attentionTargets ?? [];
  for (const at of targets) {
    if (!(at.layer < model.cfg.n_layers && at.head < model.cfg.n_heads && at.weight > 0)) {
      throw new HeadlensError(`attention target L${at.layer}H${at.head} with weight ${at.weight} does not fit a model of ${model.cfg.n_layers} layers × ${model.cfg.n_heads} heads`, 'name an existing head and a weight above 0');
    }
    if (!data.evalBatches().some((b) => b.attentionPairs?.[at.pairs]?.length)) {
      const kinds = [...new Set(data.evalBatches().flatMap((b) => Object.keys(b.attentionPairs ?? {})))];
      throw new HeadlensError(
        `attention target ${targetName(at)} needs data that marks '${at.pairs}' pairs, and this data marks ${kinds.length ? kinds.map((k) => `'${k}'`).join(', ') : 'none'}`,
        kinds.length ? `target one of those (e.g. @${kinds[0]}), or drop it` : 'use a recipe whose data marks them (toy-lm: IOI stories and questions), or drop the attention target',
      );
    }
  }
  // decay on the weight matrices (W_E, W_Q, …, W_U), not on biases and norms: by name, since b_Q, b_K and b_V are
  // [n_heads, d_head] (by rank they were decayed until a PyTorch reference, tests/train_parity.test.ts, showed it)
  const optimizer = new AdamW({ beta1: opts.beta1, beta2: opts.beta2, weightDecay: opts.weightDecay, decays: (name) => /(^|\.)W_\w+$/.test(name) });
  let state: TrainerState = { step: 0, rng: opts.seed, tokens: 0, seconds: 0, history: [], optimizerStep: 0, ...(opts.meta ? { meta: opts.meta } : {}) };
  if (resumeFrom !== undefined) {
    state = readCheckpoint(resumeFrom, optimizer);
    if (opts.meta) state.meta = opts.meta;
  }
  if (model.cfg.tie_word_embeddings) {
    throw new HeadlensError('training a model with tied embeddings is not supported yet', 'set tie_word_embeddings to false in the config');
  }
  // trainable copies of the parameters the checkpoint stores (a bias the format has no room for stays
  // zero, so a checkpoint always holds the whole trained model); names are made unique because tfjs
  // registers variables globally
  const uid = Math.random().toString(36).slice(2, 8);
  const vars = new Map<string, tf.Variable>();
  const updates: Record<string, tf.Tensor> = {};
  for (const name of model.paramNames().filter((n) => inCheckpoint(model.cfg, n))) {
    const v = tf.variable(model.param(name), true, `${name}#${uid}`);
    vars.set(name, v);
    updates[name] = v;
  }
  model.setParams(updates);
  return { model, data, opts, targets, optimizer, vars, rng: new Random(state.rng), state, clock: Date.now() - state.seconds * 1000 };
}

/**
 * One optimizer step on `batch`, which the caller draws with `run.data.batch(run.rng, opts.batchSize)` just
 * before: the batch and then the step's head dropout come from the same generator, in that order, so the run
 * (and a resumed one) draws exactly what train draws. Returns the step's loss, a scalar the caller owns and
 * reads when it likes (reading waits for the device), and the step's learning rate.
 */
export function trainStep(run: Training, batch: Batch): { loss: tf.Scalar; lr: number } {
  const { model, opts, optimizer, vars, state } = run;
  const lr = warmupCosine(state.step, opts.steps, opts.lr, opts.warmup, opts.minLrRatio);
  const hooks = opts.headDropout ? headDropoutHooks(model, batch, opts.headDropout, run.rng) : undefined;
  const { value, grads } = tf.variableGrads(() => trainingLoss(model, batch, hooks, run.targets), [...vars.values()]);
  const named: Record<string, tf.Tensor> = {};
  for (const [name, v] of vars) named[name] = grads[v.name];
  optimizer.apply(vars, named, lr, opts.clip ?? 1);
  tf.dispose(Object.values(grads));
  state.step++;
  state.tokens += batch.tokens.length * batch.tokens[0].length;
  state.seconds = (Date.now() - run.clock) / 1000;
  return { loss: value, lr };
}

/** Writes the run as it stands (model, optimizer moments, trainer state) to `dir`; resumeFrom: dir continues it. */
export async function saveCheckpoint(run: Training, dir: string): Promise<void> {
  run.state.rng = run.rng.state;
  run.state.optimizerStep = run.optimizer.step;
  await writeCheckpoint(run.model, run.optimizer, run.state, dir);
}

/** Frees the optimizer's moments; the model keeps its trained variables. */
export function endTraining(run: Training): void {
  run.optimizer.dispose();
}

/**
 * Trains `model` in place: prepareTraining, then trainStep until opts.steps, evaluating every evalEvery steps
 * and checkpointing into `outDir` every checkpointEvery steps and at the end. With `resumeFrom` (a folder an
 * earlier run checkpointed into) it continues from that run's step, data order and optimizer state; the model
 * passed in must be the one loaded from that folder.
 */
export async function train(model: HookedTransformer, data: DataSource, opts: TrainOptions, resumeFrom?: string): Promise<TrainResult> {
  const run = prepareTraining(model, data, opts, resumeFrom);
  const { state, rng, targets } = run;
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.floor(opts.steps / 10));
  const callStart = Date.now();
  let lastLoss = NaN;
  let lastEval = state.history.at(-1)?.evalLoss ?? NaN;
  let finished = true;
  let pendingLoss: tf.Tensor | undefined;
  try {
    while (state.step < opts.steps) {
      const { loss, lr } = trainStep(run, data.batch(rng, opts.batchSize));
      // the previous step's loss is read only now, with this step already queued: on a GPU backend the device
      // keeps working while JavaScript builds the next step, instead of idling at every read
      if (pendingLoss) lastLoss = await readLoss(pendingLoss);
      pendingLoss = loss;
      const tps = state.tokens / Math.max(1e-9, state.seconds);
      const timeUp = opts.maxSeconds !== undefined && (Date.now() - callStart) / 1000 >= opts.maxSeconds && state.step < opts.steps;
      const evalNow = state.step % evalEvery === 0 || state.step === opts.steps;
      if (evalNow || opts.onProgress || timeUp) {
        lastLoss = await readLoss(pendingLoss);
        pendingLoss = undefined;
      }
      if (evalNow) {
        const evaluated = await evaluateBoth(model, data, targets);
        lastEval = evaluated.loss;
        const attention = targets.length ? { evalAttention: Object.fromEntries(targets.map((t, i) => [targetName(t), evaluated.attention[i]])) } : {};
        const line = { step: state.step, loss: lastLoss, evalLoss: lastEval, ...attention, lr, tokensPerSecond: Math.round(tps) };
        state.history.push(line);
        opts.log?.(line);
      }
      opts.onProgress?.({ step: state.step, steps: opts.steps, loss: lastLoss, evalLoss: lastEval, tokensPerSecond: Math.round(tps) });
      if (opts.outDir && ((opts.checkpointEvery && state.step % opts.checkpointEvery === 0) || timeUp)) await saveCheckpoint(run, opts.outDir);
      if (timeUp) {
        finished = false;
        break;
      }
    }
    if (opts.outDir && finished) await saveCheckpoint(run, opts.outDir);
  } finally {
    pendingLoss?.dispose();
    endTraining(run);
  }
  return {
    step: state.step,
    finalLoss: lastLoss,
    finalEvalLoss: lastEval,
    tokens: state.tokens,
    seconds: state.seconds,
    history: state.history,
    finished,
  };
}

/** A scalar loss tensor's value; disposes it. */
async function readLoss(t: tf.Tensor | undefined): Promise<number> {
  if (!t) return NaN;
  const v = (await t.data())[0];
  t.dispose();
  return v;
}
