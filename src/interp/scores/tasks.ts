/**
 * The scan tasks: for a model and a task name, the data (generated with a seed), the scorer, and the
 * metric its causal check (mask_heads.ts) measures. `headlens scan` and notebooks use these; the data
 * generators are in src/datasets, the scorers in this folder.
 */
import * as tf from '@tensorflow/tfjs';
import { inductionSequences } from '../../datasets/induction.js';
import { mcqItems, mcqTokens, type LetterPrompt } from '../../datasets/mcq.js';
import { DEFAULT_NEEDLE, needleGrid, needleTextTrials, needleTokenTrials } from '../../datasets/needle.js';
import { temporalItems, temporalTokenPairs } from '../../datasets/temporal.js';
import { HeadlensError } from '../../errors.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { AblationOptions } from '../interventions/ablation.js';
import { attentionSinkScorer } from './attention_sink.js';
import { correctLetterScorer } from './correct_letter.js';
import { duplicateTokenScorer } from './duplicate_token.js';
import type { HeadScorer } from './head_scores.js';
import { inductionScorer } from './induction.js';
import type { MaskMetric } from './mask_heads.js';
import { previousTokenScorer } from './previous_token.js';
import { argmax, lastLogProbs } from './task_metrics.js';
import { answerRecall, decodesExactly, greedyDecode, retrievalScorer, type NeedleTrial } from './retrieval.js';
import { streamingScorer } from './streaming.js';
import { temporalScorer, type TemporalPair } from './temporal.js';
import { ioiPrompts, ioiTokens, type IoiTokens } from '../../datasets/ioi.js';

export const SCAN_TASKS = ['induction', 'prev-token', 'duplicate', 'sink', 'retrieval', 'streaming', 'temporal', 'correct-letter', 'ioi'] as const;
export type ScanTask = (typeof SCAN_TASKS)[number];

export interface TaskSetup {
  scorer: HeadScorer<any>;
  /** The causal check's metric, its names and how it masks (absent: the task has none). */
  causal?: { metric: (fwdHooks: FwdHook[]) => MaskMetric; names: { metric: string; control?: string }; ablation: AblationOptions };
}

export interface TaskOptions {
  /** Items to score (default 8). */
  samples?: number;
  seed?: number;
}

/** Top-1 accuracy on the predictable half of repeated sequences (in-context copying). */
function repeatAccuracy(model: HookedTransformer, seqs: number[][], half: number, fwdHooks: FwdHook[]): number {
  let hit = 0;
  let n = 0;
  for (const s of seqs) {
    const logits = model.runWithHooks([s], { fwdHooks });
    const pred = tf.tidy(() => Array.from(logits.squeeze([0]).argMax(1).dataSync()));
    logits.dispose();
    for (let p = s.length - half; p < s.length - 1; p++) (hit += pred[p] === s[p + 1] ? 1 : 0), n++;
  }
  return hit / n;
}

/** The model's BOS id if it is in its vocabulary (tiny test checkpoints keep GPT-2's 50256 with 257 tokens). */
function usableBos(model: HookedTransformer): number | null {
  const b = model.cfg.bos_token_id;
  return b !== null && b < model.cfg.d_vocab ? b : null;
}

/** Builds the data, scorer and causal metric of a scan task for this model. */
export function scanTask(model: HookedTransformer, task: ScanTask, opts: TaskOptions = {}): TaskSetup {
  const { cfg } = model;
  const samples = opts.samples ?? 8;
  const seed = opts.seed ?? 0;
  if (!(Number.isInteger(samples) && samples > 0)) throw new HeadlensError(`--samples ${samples} must be a positive integer`);
  const needTokenizer = () => {
    if (!model.tokenizer) throw new HeadlensError(`task ${task} needs a model with a tokenizer (tokenizer.json)`, 'use a model folder with tokenizer.json');
    return model.tokenizer;
  };
  const bos = usableBos(model);
  const prefix = bos === null ? [] : [bos];
  const uniform: AblationOptions = { kind: 'uniform' };
  switch (task) {
    case 'induction':
    case 'prev-token':
    case 'duplicate':
    case 'sink':
    case 'streaming': {
      const half = Math.min(50, Math.floor((cfg.n_ctx - prefix.length) / 2));
      const seqs = inductionSequences({ n: samples, halfLength: half, low: Math.min(1, cfg.d_vocab - 2), high: cfg.d_vocab, bos, seed }).sequences;
      if (task === 'sink') return { scorer: attentionSinkScorer(seqs) };
      if (task === 'streaming') {
        const sinkTokens = Math.min(4, half);
        const recent = Math.max(1, Math.min(16, Math.floor(half / 2)));
        // DuoAttention's claim, inverted from the other checks: restricting the top streaming heads to sink +
        // window should cost nothing, while as many random heads (some of which read far back) may cost accuracy
        return {
          scorer: streamingScorer(seqs, { sinkTokens, recent }),
          causal: { metric: (h) => ({ main: repeatAccuracy(model, seqs, half, h) }), names: { metric: 'top-1 accuracy on the repeated half (should not move when streaming heads are windowed)' }, ablation: { kind: 'window', sinkTokens, recent } },
        };
      }
      const scorer = task === 'induction' ? inductionScorer(seqs) : task === 'prev-token' ? previousTokenScorer(seqs) : duplicateTokenScorer(seqs);
      return { scorer, causal: { metric: (h) => ({ main: repeatAccuracy(model, seqs, half, h) }), names: { metric: 'top-1 accuracy on the repeated half' }, ablation: uniform } };
    }
    case 'retrieval': {
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
          ablation: uniform,
        },
      };
    }
    case 'correct-letter': {
      const tok = needTokenizer();
      const prompts: LetterPrompt[] = mcqItems({ n: samples, seed, labels: 'ordered' }).items.map((it) => mcqTokens(it, tok, prefix)).filter((p): p is LetterPrompt => p !== undefined && p.tokens.length <= cfg.n_ctx);
      if (prompts.length === 0) throw new HeadlensError('correct-letter: no prompt has single-token labels (" A" … " D") and fits the model\'s context', 'use a model whose tokenizer has " A" … " D" as tokens');
      return {
        scorer: correctLetterScorer(prompts),
        causal: {
          metric: (h) => {
            let hit = 0;
            let mass = 0;
            for (const p of prompts) {
              const lp = lastLogProbs(model, p.tokens, h);
              const onLabels = p.labelTokens.map((t) => lp[t]);
              hit += argmax(onLabels) === p.correct ? 1 : 0;
              mass += onLabels.reduce((a, b) => a + Math.exp(b), 0);
            }
            return { main: hit / prompts.length, control: mass / prompts.length };
          },
          names: { metric: 'letter accuracy (argmax over the labels)', control: 'probability on the label tokens (format)' },
          ablation: uniform,
        },
      };
    }
    case 'temporal': {
      const tok = needTokenizer();
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
    }
    case 'ioi':
      throw new HeadlensError('the ioi task is not an item scan', 'use ioiTask(model) and ioiHeadClasses (ioi_classes.ts); headlens scan --task ioi does this');
    default:
      throw new HeadlensError(`unknown task '${task as string}'`, `use one of ${SCAN_TASKS.join(', ')}`);
  }
}

/**
 * IOI prompts in tokens for this model's tokenizer (single-token names only), all of one length in tokens:
 * path patching batches prompts, so the most common length is kept.
 */
export function ioiTask(model: HookedTransformer, opts: TaskOptions = {}): { prompts: IoiTokens[]; droppedNames: Record<string, number> } {
  const tok = model.tokenizer;
  if (!tok) throw new HeadlensError('task ioi needs a model with a tokenizer (tokenizer.json)', 'use a model folder with tokenizer.json');
  const samples = opts.samples ?? 8;
  const bos = usableBos(model);
  const prefix = bos === null ? [] : [bos];
  const set = ioiPrompts({ n: samples * 4, seed: opts.seed ?? 0, tokenizer: tok });
  const all = set.prompts.map((p) => ioiTokens(p, tok, prefix)).filter((p): p is IoiTokens => p !== undefined && p.clean.length <= model.cfg.n_ctx);
  const byLen = new Map<number, IoiTokens[]>();
  for (const p of all) byLen.set(p.clean.length, [...(byLen.get(p.clean.length) ?? []), p]);
  const best = [...byLen.values()].sort((a, b) => b.length - a.length)[0];
  if (!best) throw new HeadlensError('ioi: no prompt survives tokenization with single-token names');
  return { prompts: best.slice(0, samples), droppedNames: set.droppedNames };
}
