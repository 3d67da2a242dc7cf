/**
 * Temporal heads ("Temporal Heads", 2025): heads that recall facts which depend on a year. The causal check
 * zero-ablates them and compares log p(answer) on time-dependent facts with time-invariant controls.
 */
import { temporalItems, temporalTokenPairs } from '../../../datasets/temporal.js';
import { HeadlensError } from '../../../errors.js';
import type { FwdHook } from '../../../hooks/hooked_transformer.js';
import { lastLogProbs } from '../task_metrics.js';
import { temporalScorer, type TemporalPair } from '../temporal.js';
import { needTokenizer, type TaskDefinition } from './task.js';

export const temporalTask: TaskDefinition = (model, { samples, seed, prefix }) => {
  const { cfg } = model;
  const tok = needTokenizer(model, 'temporal');
  const { pairs } = temporalTokenPairs(temporalItems({ seed }), tok, prefix);
  const fits = pairs.filter((p) => p.clean.length <= cfg.n_ctx);
  const pick = (k: TemporalPair['kind']) => fits.filter((p) => p.kind === k).slice(0, samples);
  const chosen = [...pick('temporal'), ...pick('alias'), ...pick('control')];
  if (!chosen.some((p) => p.kind === 'temporal')) throw new HeadlensError(`temporal: no time-dependent fact pair both tokenizes to equal lengths and fits the context (${cfg.n_ctx} tokens) of this model`);
  const meanLogp = (ps: TemporalPair[], h: FwdHook[]) => (ps.length ? ps.reduce((a, p) => a + lastLogProbs(model, p.clean, h)[p.answer], 0) / ps.length : undefined);
  return {
    scorer: temporalScorer(chosen),
    causal: {
      metric: (h) => ({ main: meanLogp(pick('temporal'), h)!, control: meanLogp(pick('control'), h) }),
      names: { metric: 'mean log p(answer), time-dependent facts', control: 'mean log p(answer), time-invariant controls' },
      ablation: { kind: 'zero' },
    },
  };
};
