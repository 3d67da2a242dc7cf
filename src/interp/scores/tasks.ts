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
import { taskInputs, type TaskDefinition, type TaskOptions, type TaskSetup } from './tasks/task.js';
import { temporalTask } from './tasks/temporal.js';

export { ioiTask, chooseIoiLists, type IoiTaskOptions } from './tasks/ioi.js';
export { taskCausalCheck, taskCausalCheckAsync } from './tasks/task.js';
export type { TaskCausal, TaskOptions, TaskSetup } from './tasks/task.js';

export const SCAN_TASKS = ['induction', 'prev-token', 'duplicate', 'sink', 'retrieval', 'streaming', 'temporal', 'correct-letter', 'ioi'] as const;
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
};

/** Builds the data, scorer and causal metric of a scan task for this model. */
export function scanTask(model: HookedTransformer, task: ScanTask, opts: TaskOptions = {}): TaskSetup {
  const inputs = taskInputs(model, opts);
  // own keys only: a name like 'toString' is an unknown task, not Object.prototype's
  if (!Object.hasOwn(TASKS, task)) throw new HeadlensError(`unknown task '${task as string}'`, `use one of ${SCAN_TASKS.join(', ')}`);
  return TASKS[task](model, inputs);
}
