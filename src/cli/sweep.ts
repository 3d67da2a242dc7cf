/**
 * How `headlens scan` and `headlens collect` run an item scan: in this process (one worker), in N local
 * worker processes (`--workers N`), or on a BullMQ queue (`--queue redis://…`). All three meet in the same
 * checkpoint (ScanCheckpoint, src/interp/scores/scan.ts): results are merged by item, each once, and the
 * answer is computed from all items in item order, so it is the same whichever way the jobs ran.
 */
import { availableParallelism } from 'node:os';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { scoreItemReads, type HeadScorer, type HeadScores } from '../interp/scores/head_scores.js';
import { scanAsync, scanJobs, ScanCheckpoint } from '../interp/scores/scan.js';
import { readAsync } from '../util/reads.js';
import { runLocalJobs, type JobFailure } from './local_workers.js';
import { progressBar } from './progress.js';
import type { ScanJobData, SweepSpec } from './scan_job_runner.js';
import { checkQueueReachable, submitAndCollect } from './scan_queue.js';

export interface SweepOptions {
  checkpoint?: string;
  resume?: boolean;
  /** Local worker processes (default: the cores available); 1 runs in this process. Ignored with `queue`. */
  workers?: number;
  /** Items per job (default: 1 locally; about 1/64 of the items on a queue). */
  jobSize?: number;
  /** redis://HOST:PORT: put the jobs on this BullMQ queue and collect them. */
  queue?: string;
  queueName?: string;
  backend?: string;
  onProgress?: (done: number, total: number) => void;
  /** Told of the queue's counts after each poll (queue runs only). */
  onQueue?: (state: { done: number; failed: number; total: number; counts: Record<string, number> }) => void;
}

/** What a checkpoint keeps so that `headlens collect` can rebuild the sweep. */
export interface SweepMeta {
  sweep: SweepSpec;
  jobSize: number;
  queueName?: string;
}

/** A queue run's progress as the CLI draws it: jobs completed or failed, of the sweep's jobs, as the queue reports them. */
export function queueProgress(task: string): NonNullable<SweepOptions['onQueue']> {
  const bar = progressBar(`${task} jobs on the queue`, 'jobs');
  return ({ done, failed, total }) => bar(done + failed, total);
}

export function defaultWorkers(): number {
  return availableParallelism();
}

/**
 * Runs the scan of `scorer` (built from `spec`) as `opts` says; the result equals `scan(model, scorer)`. Items scored
 * in this process are read asynchronously (scanAsync), so a scan runs on WebGPU in Node.
 */
export async function runSweep(model: HookedTransformer, scorer: HeadScorer<any>, spec: SweepSpec, opts: SweepOptions): Promise<HeadScores> {
  const workers = opts.workers ?? defaultWorkers();
  if (!opts.queue && workers <= 1) return scanAsync(model, scorer, { checkpoint: opts.checkpoint, resume: opts.resume, onProgress: opts.onProgress });
  // an unreachable queue is one error before anything starts
  if (opts.queue) await checkQueueReachable(opts.queue);
  const cp = ScanCheckpoint.open(model, scorer, { file: opts.checkpoint, resume: opts.resume });
  const total = cp.identity.total;
  const saved = cp.meta as Partial<SweepMeta> | undefined;
  const jobSize = opts.jobSize ?? saved?.jobSize ?? (opts.queue ? Math.max(1, Math.ceil(total / 64)) : 1);
  cp.meta = { sweep: spec, jobSize, ...(opts.queueName ? { queueName: opts.queueName } : {}) } satisfies SweepMeta;
  // written before any job runs, so `headlens collect` can take over a queued sweep whose submitter stopped
  cp.save();
  opts.onProgress?.(cp.count, total);
  const jobs: ScanJobData[] = scanJobs(cp, { jobSize }).map((job) => ({ spec, job }));
  const merge = (d: ScanJobData, results: Parameters<ScanCheckpoint['addJob']>[1]) => {
    cp.addJob(d.job, results);
    cp.save();
    opts.onProgress?.(cp.count, total);
  };
  let failures: JobFailure[] = [];
  if (jobs.length > 0 && !opts.queue && jobs.length === 1) {
    // one job: not worth starting a process for
    for (const i of jobs[0].job.items) cp.add({ index: i, ...(await readAsync(scoreItemReads(scorer, model, i))) });
    cp.save();
    opts.onProgress?.(cp.count, total);
  } else if (jobs.length > 0 && opts.queue) {
    failures = await submitAndCollect(jobs, { url: opts.queue, name: opts.queueName, onResult: merge, onPoll: opts.onQueue });
  } else if (jobs.length > 0) {
    failures = await runLocalJobs(jobs, { workers, backend: opts.backend, onResult: merge });
  }
  cp.save();
  if (failures.length) throw jobsFailed(failures, jobs.length, opts.checkpoint);
  return cp.finish();
}

function jobsFailed(failures: JobFailure[], of: number, checkpoint: string | undefined): HeadlensError {
  const span = (items: number[]) => (items.length === 1 ? `item ${items[0]}` : `items ${items[0]}–${items[items.length - 1]}`);
  const reasons = [...new Set(failures.map((f) => f.reason))];
  const first = failures.find((f) => f.reason === reasons[0])!;
  const more = reasons.length > 1 ? ` (and ${reasons.length - 1} other reason${reasons.length > 2 ? 's' : ''}: ${reasons.slice(1, 3).join('; ')})` : '';
  return new HeadlensError(
    `${failures.length} of ${of} scan jobs failed; job ${first.id.slice(0, 12)} (${span(first.items)}): ${reasons[0]}${more}`,
    checkpoint ? `fix the cause and run the same command with --resume: the jobs that finished are kept in ${checkpoint}` : 'fix the cause and run again (pass --out or --checkpoint to keep the jobs that finish)',
  );
}
