/**
 * Retrieval heads (Wu et al. 2024): heads that copy a needle out of a long haystack. The causal check masks
 * them and asks whether the model still decodes the needle's answer.
 */
import { DEFAULT_NEEDLE, needleGrid, needleTextTrials, needleTokenTrials } from '../../../datasets/needle.js';
import { answerRecall, decodesExactly, greedyDecode, retrievalScorer, type NeedleTrial } from '../retrieval.js';
import type { TaskDefinition } from './task.js';

export const retrievalTask: TaskDefinition = (model, { samples, seed, bos, prefix }) => {
  const { cfg } = model;
  let trials: NeedleTrial[];
  const room = cfg.n_ctx - 32; // their script keeps a buffer for the answer
  const tok = model.tokenizer;
  // text needles where the model's context holds the needle, the question and some haystack; token needles otherwise
  if (tok && room >= prefix.length + tok.encode(DEFAULT_NEEDLE.needle).length + tok.encode(DEFAULT_NEEDLE.question).length + 32) {
    const depths = needleGrid(0, 0, 1, Math.max(2, Math.ceil(samples / 2))).depths;
    const lengths = samples > 1 ? [Math.floor(room / 2), room] : [room];
    trials = needleTextTrials({ tokenizer: tok, contextLengths: lengths, depths, prefix, seed }).trials.slice(0, samples);
  } else {
    const pool = Array.from({ length: cfg.d_vocab - 1 }, (_, i) => i + 1);
    const needlePool = pool.slice(0, Math.max(4, Math.floor(pool.length / 4)));
    const haystackPool = pool.slice(needlePool.length);
    const depths = needleGrid(0, 0, 1, samples).depths;
    trials = needleTokenTrials({ contextLengths: [Math.min(cfg.n_ctx - 16, 256)], depths, haystackPool, needlePool, needleLength: Math.min(8, needlePool.length), bos, seed }).trials;
  }
  const scorer = retrievalScorer(trials, { maxNewTokens: 16 });
  const gate = 0.5;
  return {
    scorer,
    causal: {
      // exact: a short answer in a fixed frame ("a spoonful of smoked paprika") passes the recall gate on its
      // frame words alone ("a … of" is 2 of 5), so a model that lost the needle still scored there
      // (an exact answer has recall 1, so only the other trials are decoded for the gate)
      metric: (h) => {
        let exact = 0;
        let gated = 0;
        for (const t of trials) {
          if (decodesExactly(model, t.tokens, t.answer, h)) (exact++, gated++);
          else if (answerRecall(model, t, greedyDecode(model, t.tokens, { maxNewTokens: t.answer.length, fwdHooks: h })) > gate) gated++;
        }
        return { main: exact / trials.length, control: gated / trials.length };
      },
      names: { metric: 'needle accuracy (the answer decoded exactly)', control: "answer recall > 0.5 (Wu et al.'s gate)" },
      ablation: { kind: 'uniform' },
    },
  };
};
