/**
 * Retrieval heads (Wu et al. 2024): heads that copy a needle's answer out of a long haystack. The causal check
 * masks them and asks whether the model still decodes the answer.
 *
 * As their code: the score counts copies from the answer inside the needle (their real_needle); decoding runs up
 * to 50 tokens and stops at the model's newline or EOS (retrieval_head_detection.py decodes 50 and stops at the
 * newline); the causal check masks heads only while decoding, from the last prompt token on, the prompt before it
 * computed intact (needle_in_haystack_with_mask.py passes its block_list to the decoding forwards only); the
 * random heads are drawn from outside the top 100 retrieval heads (clipped: see mask_heads.ts). The options give
 * back each old choice of headlens: `span: 'needle'`, `maxNewTokens: 16` without stop tokens, `maskAt: 'all'`,
 * `avoidTop: undefined` (random heads from every other head).
 */
import { DEFAULT_NEEDLE, needleGrid, needleTextTrials, needleTokenTrials } from '../../../datasets/needle.js';
import type { FwdHook } from '../../../hooks/hooked_transformer.js';
import { answerRecall, decodesExactlyReads, greedyDecodeReads, retrievalScorer, retrievalStopTokens, type NeedleTrial } from '../retrieval.js';
import type { TaskDefinition } from './task.js';

export interface RetrievalTaskOptions {
  /** Where a copy counts (default 'answer', their real_needle; 'needle': the whole sentence). */
  span?: 'answer' | 'needle';
  /** Most tokens decoded, for the score and the recall gate (default 50, as theirs). */
  maxNewTokens?: number;
  /** Token ids that end decoding (default: the model's newline and EOS, retrievalStopTokens). */
  stopTokens?: number[];
  /** Where the causal check masks: 'decode' (default, theirs: from the last prompt token on) or 'all' (every position). */
  maskAt?: 'decode' | 'all';
  /** Random control heads come from outside the top N retrieval heads (default 100, theirs); null: from every other head. */
  avoidTop?: number | null;
}

/** The retrieval scan task with these options; `retrievalTask` is it with the defaults. */
export function retrievalTaskWith(o: RetrievalTaskOptions = {}): TaskDefinition {
  return (model, { samples, seed, bos, prefix }) => {
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
    const decoding = { maxNewTokens: o.maxNewTokens ?? 50, stopTokens: o.stopTokens ?? retrievalStopTokens(model) };
    const scorer = retrievalScorer(trials, { ...decoding, span: o.span ?? 'answer' });
    const maskAt = o.maskAt ?? 'decode';
    const gate = 0.5;
    // the masks go in as decode hooks (from the last prompt token on) or as hooks on every position
    const place = (h: FwdHook[]) => (maskAt === 'decode' ? { fwdHooks: [], decodeHooks: h } : { fwdHooks: h, decodeHooks: [] });
    return {
      scorer,
      causal: {
        // exact: a short answer in a fixed frame ("a spoonful of smoked paprika") passes the recall gate on its
        // frame words alone ("a … of" is 2 of 5), so a model that lost the needle still scored there
        // (an exact answer has recall 1, so only the other trials are decoded for the gate)
        metric: function* (h) {
          const { fwdHooks, decodeHooks } = place(h);
          let exact = 0;
          let gated = 0;
          for (const t of trials) {
            if (yield* decodesExactlyReads(model, t.tokens, t.answer, fwdHooks, decodeHooks)) (exact++, gated++);
            else if (answerRecall(model, t, yield* greedyDecodeReads(model, t.tokens, { ...decoding, fwdHooks, decodeHooks })) > gate) gated++;
          }
          return { main: exact / trials.length, control: gated / trials.length };
        },
        names: { metric: 'needle accuracy (the answer decoded exactly)', control: "answer recall > 0.5 (Wu et al.'s gate)" },
        ablation: { kind: 'uniform' },
        ...(o.avoidTop === null ? {} : { avoidTop: o.avoidTop ?? 100 }),
        settings: { maskAt: maskAt === 'decode' ? 'decoding steps (from the last prompt token; the prompt before it intact)' : 'every position', ...decoding },
      },
    };
  };
}

export const retrievalTask: TaskDefinition = retrievalTaskWith();
