/**
 * `headlens scan --workers N`: runs scan jobs in N child processes on this machine, each holding the model
 * once (scan_child.ts). Child processes, not worker threads: tfjs keeps its backend and tensors in
 * module-global state, and the wasm backend's own threads do not start in Node (README, "Across cores"), so
 * one process per core is how a CPU scan uses the cores. A job whose process dies (killed, out of memory) goes
 * back in the queue for another process, up to `attempts` times in all; a job that fails with an error is not
 * retried (it would fail again) and comes back with its reason.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HeadlensError } from '../errors.js';
import type { IndexedItemScores } from '../interp/scores/scan.js';
import type { ScanJobData } from './scan_job_runner.js';

export interface JobFailure {
  id: string;
  items: number[];
  reason: string;
}

export interface LocalWorkerOptions {
  workers: number;
  /** Runs per job when its process dies (default 3). */
  attempts?: number;
  /** The children's backend (env HEADLENS_BACKEND); default: this process's environment. */
  backend?: string;
  /** Called in the parent with each finished job's results, in the order jobs finish. */
  onResult(data: ScanJobData, results: IndexedItemScores[]): void;
}

/**
 * The compiled child script (tests run the TypeScript sources; the child always runs from dist/). A bundle
 * (one file, no dist/ beside it) names its own with env HEADLENS_WORKER_SCRIPT.
 */
function childScript(): string {
  const given = process.env.HEADLENS_WORKER_SCRIPT;
  if (given) {
    if (!existsSync(given)) throw new HeadlensError(`HEADLENS_WORKER_SCRIPT=${given} does not exist`, 'point it at the worker script (dist/cli/scan_child.js)');
    return given;
  }
  const here = fileURLToPath(new URL('./scan_child.js', import.meta.url));
  const file = here.replace(/([\\/])src([\\/]cli[\\/])scan_child\.js$/, '$1dist$2scan_child.js');
  if (!existsSync(file)) throw new HeadlensError(`the worker script ${file} is missing`, 'build headlens first (npm run build)');
  return file;
}

/** Runs every job on `workers` child processes; resolves with the jobs that failed (empty: all done). */
export async function runLocalJobs(jobs: ScanJobData[], opts: LocalWorkerOptions): Promise<JobFailure[]> {
  const attempts = opts.attempts ?? 3;
  const script = childScript();
  const queue = jobs.map((data) => ({ data, tries: 0 }));
  const failures: JobFailure[] = [];
  let running = 0;
  return new Promise<JobFailure[]>((resolve, reject) => {
    let settled = false;
    const children = new Set<ChildProcess>();
    const finishIfDone = () => {
      if (settled || queue.length > 0 || running > 0) return;
      settled = true;
      for (const c of children) c.disconnect();
      resolve(failures);
    };
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      for (const c of children) c.kill();
      reject(e);
    };
    // a process that dies before it finishes anything is replaced, but not forever
    let spawnsLeft = opts.workers + attempts * jobs.length;
    const start = () => {
      if (spawnsLeft-- <= 0) return fail(new HeadlensError('the worker processes keep ending before the scan is done', 'see the messages above; try --workers 1'));
      const child = fork(script, ['--scan-child'], { env: { ...process.env, ...(opts.backend ? { HEADLENS_BACKEND: opts.backend } : {}) }, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.add(child);
      let current: (typeof queue)[number] | undefined;
      const next = () => {
        current = queue.shift();
        if (!current) return finishIfDone();
        current.tries++;
        running++;
        child.send({ id: current.data.job.id, data: current.data });
      };
      child.on('message', (msg: { ready?: boolean; id?: string; ok?: boolean; results?: IndexedItemScores[]; reason?: string }) => {
        if (msg.ready) return next();
        if (!current || msg.id !== current.data.job.id) return;
        running--;
        const done = current;
        current = undefined;
        if (msg.ok) {
          try {
            opts.onResult(done.data, msg.results!);
          } catch (e) {
            return fail(e);
          }
        } else failures.push({ id: done.data.job.id, items: done.data.job.items, reason: msg.reason ?? 'unknown' });
        next();
      });
      child.on('error', fail);
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (settled) return;
        if (current) {
          // the process died holding a job: give it to another, unless it has had its tries
          running--;
          const lost = current;
          current = undefined;
          const why = `its worker process ended (${signal ?? `exit code ${code}`})`;
          if (lost.tries < attempts) queue.unshift(lost);
          else failures.push({ id: lost.data.job.id, items: lost.data.job.items, reason: `${why} on each of ${attempts} tries` });
        }
        if (queue.length > 0 && children.size < Math.min(opts.workers, queue.length + running)) start();
        finishIfDone();
      });
    };
    if (queue.length === 0) return resolve(failures);
    for (let i = 0; i < Math.min(opts.workers, queue.length); i++) start();
  });
}
