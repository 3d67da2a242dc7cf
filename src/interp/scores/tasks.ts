/**
 * The scan tasks: for a model and a task name, the data (generated with a seed), the scorer, and the
 * metric its causal check (mask_heads.ts) measures. `headlens scan` and notebooks use these. Each task is
 * one module in tasks/; this file only looks them up by name. The data generators are in src/datasets,
 * the scorers in this folder.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { correctLetterTask } from './tasks/correct_letter.js';
import { duplicateTask } from './tasks/duplicate.js';
import { inductionTask } from './tasks/induction.js';
import { ioiScanTask } from './tasks/ioi.js';
import { prevTokenTask } from './tasks/prev_token.js';
import { retrievalTask } from './tasks/retrieval.js';
import { sinkTask } from './tasks/sink.js';
import { streamingTask } from './tasks/streaming.js';
import { isEncoder } from '../../model/config.js';
import { taskInputs, type TaskDefinition, type TaskOptions, type TaskSetup } from './tasks/task.js';
import { temporalTask } from './tasks/temporal.js';
import { specialTokensTask } from './tasks/special_tokens.js';
import { attentionEntropyTask } from './tasks/attention_entropy.js';

export { ioiTask, chooseIoiLists, type IoiTaskOptions } from './tasks/ioi.js';
export { taskCausalCheck, taskCausalCheckAsync } from './tasks/task.js';
export type { TaskCausal, TaskOptions, TaskSetup } from './tasks/task.js';

export const SCAN_TASKS = ['induction', 'prev-token', 'duplicate', 'sink', 'retrieval', 'streaming', 'temporal', 'correct-letter', 'ioi', 'special-tokens', 'bert-special-tokens', 'attention-entropy'] as const;
export type ScanTask = (typeof SCAN_TASKS)[number];

// keyed by ScanTask, so the compiler insists on one definition per name
const TASKS: Record<ScanTask, TaskDefinition> = {
  induction: inductionTask,
  'prev-token': prevTokenTask,
  duplicate: duplicateTask,
  sink: sinkTask,
  retrieval: retrievalTask,
  streaming: streamingTask,
  temporal: temporalTask,
  'correct-letter': correctLetterTask,
  ioi: ioiScanTask,
  'special-tokens': specialTokensTask,
  // the name issue 23 gives it; the same task (it runs on any model, not only BERT)
  'bert-special-tokens': specialTokensTask,
  'attention-entropy': attentionEntropyTask,
};

/**
 * The tasks written for causal decoders: their prompts end where the answer is predicted next, and their causal
 * checks read next-token logits or loss, which a masked-LM encoder does not compute.
 */
const DECODER_TASKS: ReadonlySet<string> = new Set(['induction', 'prev-token', 'duplicate', 'sink', 'retrieval', 'streaming', 'temporal', 'correct-letter', 'ioi']);

/** Builds the data, scorer and causal metric of a scan task for this model. */
export function scanTask(model: HookedTransformer, task: ScanTask, opts: TaskOptions = {}): TaskSetup {
  if (isEncoder(model.cfg) && DECODER_TASKS.has(task)) {
    throw new HeadlensError(`scan task '${task}' is written for causal decoders, and ${model.cfg.model_name} is an encoder (bidirectional, masked-LM logits)`, 'run it on a decoder; on an encoder, run --task special-tokens or attention-entropy (Clark et al.), or read its patterns with runWithCache');
  }
  const inputs = taskInputs(model, opts);
  // own keys only: a name like 'toString' is an unknown task, not Object.prototype's
  if (!Object.hasOwn(TASKS, task)) throw new HeadlensError(`unknown task '${task as string}'`, `use one of ${SCAN_TASKS.join(', ')}`);
  return TASKS[task](model, inputs);
}
