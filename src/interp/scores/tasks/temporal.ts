/**
 * Temporal heads ("Temporal Heads", 2025): heads that recall facts which depend on a year. The causal check
 * zero-ablates them and compares log p(answer) on time-dependent facts with time-invariant controls.
 */
import { temporalItems, temporalTokenPairs } from '../../../datasets/temporal.js';
import { HeadlensError } from '../../../errors.js';
import type { FwdHook } from '../../../hooks/hooked_transformer.js';
import type { Reads } from '../../../util/reads.js';
import { lastLogProbsReads } from '../task_metrics.js';
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
  const meanLogp = function* (ps: TemporalPair[], h: FwdHook[]): Reads<number | undefined> {
    if (!ps.length) return undefined;
    let sum = 0;
    for (const p of ps) sum += (yield* lastLogProbsReads(model, p.clean, h))[p.answer];
    return sum / ps.length;
  };
  return {
    scorer: temporalScorer(chosen),
    causal: {
      metric: function* (h) {
        return { main: (yield* meanLogp(pick('temporal'), h))!, control: yield* meanLogp(pick('control'), h) };
      },
      names: { metric: 'mean log p(answer), time-dependent facts', control: 'mean log p(answer), time-invariant controls' },
      ablation: { kind: 'zero' },
    },
  };
};
