/**
 * Temporal heads ("Temporal Heads: Where Language Models Recall Time-specific Information", Park et al. 2025).
 * A few heads carry the year into time-dependent facts ("In 2004, the president of the United States was") —
 * knocking them out degrades time-conditioned recall while time-invariant facts and general QA are unaffected,
 * and they respond to textual years ("in the year two thousand four") as to numeric ones. The paper finds them
 * with circuit discovery (EAP-IG circuits and node frequency: temporal_circuits.ts follows their method). This file
 * is a fast first look, not their method: each head's effect is measured by activation patching:
 *   effect(head) = log p(answer | clean) − log p(answer | clean with the head's hook_z from the year-patched run)
 * in nats, averaged per kind of prompt: `temporal` (the answer depends on the year), `control` (time-invariant
 * facts with the same year change; a temporal head should not matter there), `alias` (temporal facts with
 * spelled-out years). Unlike the paper, the controls here are invariant facts with a year put in front, and the
 * aliases are spelled-out numbers only; temporal_circuits.ts uses separate invariant tasks and event aliases. `scores` = selectivity = temporal − control; all four tables are returned.
 * Each pair is one sweep of activation patching (src/interp/interventions/patching.ts) with log p(answer) as the metric.
 * The causal check: mask the top heads and compare accuracy on temporal facts with time-invariant controls.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { activationPatchingReads } from '../interventions/patching.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { logProb } from '../metrics.js';
import { runScorer, runScorerAsync, zeros, type HeadScorer, type HeadScores } from './head_scores.js';

/** A prompt and its year-patched twin (same length in tokens), with the clean answer's first token. */
export interface TemporalPair {
  clean: number[];
  corrupted: number[];
  answer: number;
  kind: 'temporal' | 'control' | 'alias';
}

export interface TemporalOptions {
  top?: number;
}

/**
 * Drop in log p(answer) when one head's hook_z comes from the corrupted run: [layer][head] (nats). One
 * activation-patching sweep (noising: corrupted into clean) on the patching engine.
 */
export function headPatchEffects(model: HookedTransformer, pair: { clean: number[]; corrupted: number[]; answer: number }): number[][] {
  return readSync(headPatchEffectsReads(model, pair));
}

/** headPatchEffects, read asynchronously (WebGPU in Node). */
export function headPatchEffectsAsync(model: HookedTransformer, pair: { clean: number[]; corrupted: number[]; answer: number }): Promise<number[][]> {
  return readAsync(headPatchEffectsReads(model, pair));
}

function* headPatchEffectsReads(model: HookedTransformer, pair: { clean: number[]; corrupted: number[]; answer: number }): Reads<number[][]> {
  const { n_layers, n_heads } = model.cfg;
  const metric = logProb(pair.answer);
  const r = yield* activationPatchingReads(model, 'head-out', { clean: [pair.clean], corrupted: [pair.corrupted], metric, direction: 'noising', byPos: false });
  const base = r.meta.clean as number;
  return Array.from({ length: n_layers }, (_, l) => Array.from({ length: n_heads }, (_, h) => base - r.get(l, h)));
}

export function temporalScorer(pairs: TemporalPair[], _opts: TemporalOptions = {}): HeadScorer<TemporalPair> {
  if (!Array.isArray(pairs) || pairs.length === 0) throw new HeadlensError('temporal: no prompt pairs given', 'pass TemporalPair items');
  pairs.forEach((p, i) => {
    if (p.clean.length !== p.corrupted.length) {
      throw new HeadlensError(`temporal: pair ${i} has clean and corrupted prompts of different lengths (${p.clean.length}, ${p.corrupted.length})`, 'patch a year by a year of the same token length');
    }
    if (!['temporal', 'control', 'alias'].includes(p.kind)) throw new HeadlensError(`temporal: pair ${i} has kind '${p.kind}'`, 'use temporal, control or alias');
  });
  if (!pairs.some((p) => p.kind === 'temporal')) throw new HeadlensError('temporal: no time-dependent (kind temporal) pairs', 'the score needs some');
  const count = (k: string) => pairs.filter((p) => p.kind === k).length;
  return {
    task: 'temporal',
    settings: { method: 'per-head patching (fast first look; Park et al.\'s method is temporalCircuits)', metric: 'drop in log p(answer), nats', patched: 'attn.hook_z per head', temporal: count('temporal'), control: count('control'), alias: count('alias') },
    primary: 'selectivity',
    items: pairs,
    scoreItem: function* (model, p) {
      return { tables: { [p.kind]: yield* headPatchEffectsReads(model, p) }, weight: 1 };
    },
    derive: (t) => {
      const ctl = t.control;
      return { selectivity: t.temporal.map((row, l) => row.map((v, h) => v - (ctl ? ctl[l][h] : 0))) };
    },
  };
}

/** Temporal-head scores: selectivity (temporal − control patching effect), with temporal, control, alias tables. */
export function temporalScores(model: HookedTransformer, pairs: TemporalPair[], opts: TemporalOptions = {}): HeadScores {
  return runScorer(model, temporalScorer(pairs, opts), { top: opts.top });
}

/** temporalScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function temporalScoresAsync(model: HookedTransformer, pairs: TemporalPair[], opts: TemporalOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, temporalScorer(pairs, opts), { top: opts.top });
}
