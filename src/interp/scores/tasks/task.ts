/**
 * What every scan task module provides (one module per task in this folder; ../tasks.ts looks them up by
 * name): from a model and the scan's inputs, the task's data, its scorer and the metric of its causal check.
 */
import { HeadlensError } from '../../../errors.js';
import type { HookedTransformer } from '../../../hooks/hooked_transformer.js';
import type { TextTokenizer } from '../../../model/tokenizer.js';
import type { AblationOptions, HeadRef } from '../../interventions/ablation.js';
import type { HeadScorer } from '../head_scores.js';
import { readAsync, readSync, type Reads } from '../../../util/reads.js';
import { maskHeadsCheckReads, type MaskCheck, type MaskMetricFn } from '../mask_heads.js';

export interface TaskSetup {
  scorer: HeadScorer<any>;
  /** The causal check's metric, its names and how it masks (absent: the task has none). */
  causal?: TaskCausal;
}

/** A task's causal check: see mask_heads.ts. */
export interface TaskCausal {
  /** The task's measure with `fwdHooks` masking heads: a value, or a computation that reads it (util/reads.ts). */
  metric: MaskMetricFn;
  names: { metric: string; control?: string };
  ablation: AblationOptions;
  /** Draw the random heads from outside the top N heads of the scan's scores (absent: from every other head). */
  avoidTop?: number;
  /** How the metric applies the masks and decodes, for the result's settings. */
  settings?: Record<string, unknown>;
}

/** Runs a task's causal check on `heads`, the random heads drawn as the task asks (outside its top N of `scores`). */
export function taskCausalCheck(model: HookedTransformer, causal: TaskCausal, heads: HeadRef[], scores: number[][], opts: { draws?: number; seed?: number } = {}): MaskCheck {
  return readSync(taskCausalCheckReads(model, causal, heads, scores, opts));
}

/** taskCausalCheck, reading asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function taskCausalCheckAsync(model: HookedTransformer, causal: TaskCausal, heads: HeadRef[], scores: number[][], opts: { draws?: number; seed?: number } = {}): Promise<MaskCheck> {
  return readAsync(taskCausalCheckReads(model, causal, heads, scores, opts));
}

function taskCausalCheckReads(model: HookedTransformer, causal: TaskCausal, heads: HeadRef[], scores: number[][], opts: { draws?: number; seed?: number }): Reads<MaskCheck> {
  return maskHeadsCheckReads(model, heads, causal.metric, causal.names, {
    draws: opts.draws,
    seed: opts.seed,
    ablation: causal.ablation,
    ...(causal.avoidTop !== undefined ? { ranking: scores, avoidTop: causal.avoidTop } : {}),
    settings: causal.settings,
  });
}

export interface TaskOptions {
  /** Items to score (default 8). */
  samples?: number;
  seed?: number;
  /** Text items, one per line, for the tasks that read text (special-tokens, attention-entropy); default: their shipped data. */
  lines?: string[];
}

/** TaskOptions with their defaults filled in, and the prefix every task puts before its prompts. */
export interface TaskInputs {
  samples: number;
  seed: number;
  /** The model's BOS id, or null where it has none in its vocabulary (model.bosToken()). */
  bos: number | null;
  /** [bos], or [] without one. */
  prefix: number[];
  /** The caller's text items, if any (TaskOptions.lines). */
  lines?: string[];
}

/** Builds one task's data, scorer and causal metric for this model. */
export type TaskDefinition = (model: HookedTransformer, inputs: TaskInputs) => TaskSetup;

/** The model's BOS id if it is in its vocabulary (tiny test checkpoints keep GPT-2's 50256 with 257 tokens). */
/** The inputs of a scan: samples (checked), seed, and the BOS prefix. */
export function taskInputs(model: HookedTransformer, opts: TaskOptions): TaskInputs {
  const samples = opts.samples ?? 8;
  const seed = opts.seed ?? 0;
  if (!(Number.isInteger(samples) && samples > 0)) throw new HeadlensError(`--samples ${samples} must be a positive integer`);
  const bos = model.bosToken();
  return { samples, seed, bos, prefix: bos === null ? [] : [bos], ...(opts.lines ? { lines: opts.lines } : {}) };
}

/** The model's tokenizer, for the tasks whose prompts are text. */
export function needTokenizer(model: HookedTransformer, task: string): TextTokenizer {
  if (!model.tokenizer) throw new HeadlensError(`task ${task} needs a model with a tokenizer (tokenizer.json)`, 'use a model folder with tokenizer.json');
  return model.tokenizer;
}
