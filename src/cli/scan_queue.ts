/**
 * Scan jobs over several machines through BullMQ (a Redis-backed job queue; bullmq on npm) on a Redis server:
 * `headlens scan … --queue redis://HOST:PORT` adds the sweep's jobs and collects their results into the
 * scan's checkpoint; `headlens worker --queue redis://HOST:PORT` runs them, one job at a time, as many
 * workers as there are GPUs or machines. headlens keeps no scheduler of its own: BullMQ hands each job to one
 * worker, holds a lock on it that the worker renews, and gives a job whose worker died (its lock expired) to
 * another worker; a job that throws is retried with back-off, and a job that cannot run at all (a
 * HeadlensError: unknown model, a task the model cannot do) fails at once with its reason.
 *
 * Job ids are the jobs' content-derived ids (scanJobId), so submitting a sweep again adds nothing that is
 * already queued, and the results of a completed job are read back instead of recomputed.
 */
import { Queue, UnrecoverableError, Worker, type Job, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { HeadlensError } from '../errors.js';
import type { IndexedItemScores } from '../interp/scores/scan.js';
import type { JobFailure } from './local_workers.js';
import { ScanJobRunner, type ScanJobData } from './scan_job_runner.js';

export const DEFAULT_QUEUE_NAME = 'headlens-scan';

/** redis://[user:password@]HOST:PORT[/DB] as ioredis options, and the address without the password for messages. */
export function parseQueueUrl(url: string): { options: RedisOptions; shown: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HeadlensError(`--queue ${url} is not a URL`, 'e.g. --queue redis://127.0.0.1:6379');
  }
  if (u.protocol !== 'redis:') throw new HeadlensError(`--queue ${url}: only redis:// queues are supported`, 'e.g. --queue redis://127.0.0.1:6379');
  const port = u.port ? Number(u.port) : 6379;
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !Number.isInteger(db)) throw new HeadlensError(`--queue ${url}: the database '${u.pathname.slice(1)}' is not a number`, 'e.g. redis://HOST:6379/0');
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined ? { db } : {}),
  };
  return { options, shown: `redis://${u.hostname}:${port}${db !== undefined ? `/${db}` : ''}` };
}

/**
 * Connects once, without retrying, so an unreachable or wrong server is one clear error rather than a
 * client reconnecting forever; then gives the options BullMQ's own connections use.
 */
export async function checkQueueReachable(url: string, timeoutMs = 5000): Promise<RedisOptions> {
  const { options, shown } = parseQueueUrl(url);
  const probe = new Redis({ ...options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let cause: Error | undefined;
  probe.on('error', (e: Error) => (cause ??= e)); // the first error says why (ECONNREFUSED, ENOTFOUND…); reported once, below
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new HeadlensError(`cannot reach the queue at ${shown}: ${(cause ?? (e as Error)).message}`, `start a Redis server there (redis-server --port ${options.port}) or pass the right --queue redis://HOST:PORT`);
  } finally {
    probe.disconnect();
  }
  // BullMQ's workers need maxRetriesPerRequest null (their blocking commands wait indefinitely)
  return { ...options, maxRetriesPerRequest: null };
}

export interface QueueSubmitOptions {
  url: string;
  name?: string;
  /** Tries per job (BullMQ's attempts; default 3). */
  attempts?: number;
  /** How often the queue is read for finished jobs (ms, default 250). */
  pollMs?: number;
  onResult(data: ScanJobData, results: IndexedItemScores[]): void;
  /** After each poll: jobs done, failed and in all, and the queue's own counts. */
  onPoll?(state: { done: number; failed: number; total: number; counts: Record<string, number> }): void;
}

/**
 * Adds the jobs to the queue (those already there, by id, are not added again; a failed one is retried) and
 * waits until each has completed or failed for good. Completed jobs' results go to `onResult` once each.
 */
export async function submitAndCollect(jobs: ScanJobData[], opts: QueueSubmitOptions): Promise<JobFailure[]> {
  const connection = await checkQueueReachable(opts.url);
  const queue = new Queue(opts.name ?? DEFAULT_QUEUE_NAME, { connection });
  const failures: JobFailure[] = [];
  try {
    const pending = new Map(jobs.map((d) => [d.job.id, d]));
    for (const d of jobs) {
      const existing = await queue.getJob(d.job.id);
      if (existing && (await existing.getState()) === 'failed') await existing.retry('failed');
      else if (!existing) {
        await queue.add('scan', d, { jobId: d.job.id, attempts: opts.attempts ?? 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: false, removeOnFail: false });
      }
    }
    let done = 0;
    while (pending.size > 0) {
      for (const [id, d] of [...pending]) {
        const job = await queue.getJob(id);
        if (!job) {
          // removed from the queue by someone else: put it back
          await queue.add('scan', d, { jobId: id, attempts: opts.attempts ?? 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: false, removeOnFail: false });
          continue;
        }
        const state = await job.getState();
        if (state !== 'completed' && state !== 'failed') continue;
        // read the job again: the copy above may predate its end (no return value or reason yet)
        const ended = (await queue.getJob(id))!;
        if (state === 'completed') {
          const results = (ended.returnvalue as { results?: IndexedItemScores[] } | null)?.results;
          if (!Array.isArray(results)) throw new HeadlensError(`job ${id} completed without scan results`, `is something other than headlens workers taking jobs from queue ${queue.name}?`);
          opts.onResult(d, results);
          pending.delete(id);
          done++;
        } else {
          failures.push({ id, items: d.job.items, reason: ended.failedReason ?? 'unknown' });
          pending.delete(id);
        }
      }
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
      opts.onPoll?.({ done, failed: failures.length, total: jobs.length, counts });
      if (pending.size > 0) await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
    }
  } finally {
    await queue.close();
  }
  return failures;
}

export interface QueueWorkerOptions {
  url: string;
  name?: string;
  backend?: string;
  /** How long a job stays locked to this worker without a renewal (ms, default 60 000): after that, if it died, another takes the job. */
  lockMs?: number;
  /** Told of each job as it starts and ends. */
  onJob?(event: { id: string; items: number[]; state: 'started' | 'completed' | 'failed'; reason?: string }): void;
}

/**
 * Runs scan jobs from the queue until `stop()` (or SIGINT / SIGTERM through the CLI). One job at a time: a
 * job is CPU- or GPU-bound, and a machine with several GPUs runs one worker per GPU.
 */
export async function startQueueWorker(opts: QueueWorkerOptions): Promise<{ stop(): Promise<void>; closed: Promise<void> }> {
  const connection = await checkQueueReachable(opts.url);
  const runner = new ScanJobRunner(opts.backend);
  const lockDuration = opts.lockMs ?? 60_000;
  const worker = new Worker(
    opts.name ?? DEFAULT_QUEUE_NAME,
    async (job: Job) => {
      const items = (job.data as ScanJobData)?.job?.items ?? [];
      opts.onJob?.({ id: job.id!, items, state: 'started' });
      try {
        const results = await runner.run(job.data, (done, total) => job.updateProgress(Math.round((100 * done) / total)));
        return { results };
      } catch (e) {
        // a job that cannot run fails at once, with its reason; anything else is retried by BullMQ
        if (e instanceof HeadlensError) throw new UnrecoverableError(e.message);
        throw e;
      }
    },
    { connection, concurrency: 1, lockDuration, stalledInterval: lockDuration, maxStalledCount: 3, autorun: true },
  );
  worker.on('completed', (job) => opts.onJob?.({ id: job.id!, items: (job.data as ScanJobData).job.items, state: 'completed' }));
  worker.on('failed', (job, err) => job && opts.onJob?.({ id: job.id!, items: (job.data as ScanJobData)?.job?.items ?? [], state: 'failed', reason: err.message }));
  worker.on('error', () => {}); // connection hiccups: BullMQ reconnects; a job's failure comes through 'failed'
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  await worker.waitUntilReady();
  return {
    closed,
    async stop() {
      await worker.close();
      runner.dispose();
      resolveClosed();
    },
  };
}
