/**
 * A resumable sweep of a head scorer over its items. Long scans (retrieval decoding over a grid of needle
 * trials, patching every head for every temporal pair) take hours on real models; a crash should cost only
 * the work in flight. `scan` writes every finished item's tables to a JSON checkpoint (atomically: a temporary
 * file renamed over the old one) and `resume: true` reads it back and continues with the items not done, so
 * nothing is recomputed and nothing lost. JSON keeps doubles exactly and the mean is taken in item order
 * whatever order the items finished in, so a resumed scan gives bit-identical scores to an uninterrupted one.
 * The checkpoint records the task, settings, model and a hash of the items; resuming with anything different
 * is refused.
 *
 * The same checkpoint is the meeting point of a sweep split into jobs (`scanJobs`: slices of the items, each
 * with an id derived from its content), run by other processes or machines (`headlens scan --workers N`,
 * `--queue`): results are keyed by item, so a job whose results arrive twice counts once (`ScanCheckpoint.add`),
 * and a sweep planned again after a crash plans only the items not done.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { finish, scoreItemReads, selectItems, type HeadScorer, type HeadScores, type ItemScores } from './head_scores.js';

export interface ScanOptions {
  /** JSON file for partial results; without it the scan just runs. */
  checkpoint?: string;
  /** Continue the scan in `checkpoint` (default false: a fresh scan, refused if the file exists). */
  resume?: boolean;
  /** Called after each item with (items done, total). */
  onProgress?: (done: number, total: number) => void;
  top?: number;
}

/** One item's tables with the item's index in the scorer's items. */
export interface IndexedItemScores extends ItemScores {
  index: number;
}

/** What identifies a sweep: a checkpoint resumes, and a job merges, only into the same one. */
export interface ScanIdentity {
  task: string;
  settings: Record<string, unknown>;
  model: { name: string; n_layers: number; n_heads: number; d_model: number; d_vocab: number };
  itemsHash: string;
  /** Items the model can run (the others are dropped before scoring). */
  total: number;
}

interface CheckpointFile extends ScanIdentity {
  /** 1: `results` in item order without indices (still read); 2: each result carries its item's index. */
  version: 1 | 2;
  results: IndexedItemScores[];
  /** Ids of the jobs merged so far (each merged once). */
  jobs?: string[];
  /** What the caller needs to rebuild the sweep elsewhere (the CLI keeps its model, task, samples and seed). */
  meta?: Record<string, unknown>;
}

function modelKey(model: HookedTransformer): ScanIdentity['model'] {
  const c = model.cfg;
  return { name: c.model_name, n_layers: c.n_layers, n_heads: c.n_heads, d_model: c.d_model, d_vocab: c.d_vocab };
}

/** A stable hash of the items, so a checkpoint is only resumed on the same data. */
export function itemsHash(items: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(items)).digest('hex');
}

function readCheckpoint(file: string): CheckpointFile {
  let cp: CheckpointFile;
  try {
    cp = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HeadlensError(`checkpoint ${file} could not be read: ${(e as Error).message}`, 'remove it to start the scan afresh');
  }
  if ((cp?.version !== 1 && cp?.version !== 2) || !Array.isArray(cp.results)) throw new HeadlensError(`${file} is not a headlens scan checkpoint`, 'remove it or pass another file');
  return cp;
}

/** Why a checkpoint (or a job) of `got` cannot join the sweep `want`; empty when it can. */
function identityDiffs(got: ScanIdentity, want: ScanIdentity): string[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return [
    got.task !== want.task && `task ${got.task} ≠ ${want.task}`,
    !same(got.settings, want.settings) && 'settings differ',
    !same(got.model, want.model) && `model ${got.model?.name} ≠ ${want.model.name}`,
    got.itemsHash !== want.itemsHash && 'the items differ (other samples or seed)',
  ].filter((d): d is string => !!d);
}

/**
 * The results of one sweep so far, keyed by item, and the file that keeps them. Open it with
 * `ScanCheckpoint.open`; `add` merges results (an item already there is ignored: counted once), `save` writes
 * the file, `finish` gives the scorer's answer once every item is in.
 */
export class ScanCheckpoint {
  readonly identity: ScanIdentity;
  /** The indices of the items that run on this model, in item order. */
  readonly indices: number[];
  readonly dropped?: HeadScores['dropped'];
  meta?: Record<string, unknown>;
  private readonly done = new Map<number, IndexedItemScores>();
  private readonly jobs = new Set<string>();
  private readonly allowed: Set<number>;

  private constructor(
    readonly scorer: HeadScorer<any>,
    private readonly model: HookedTransformer,
    readonly file: string | undefined,
  ) {
    // items that cannot run on this model (longer than n_ctx) are left out here, the same ones on every resume
    const { indices, dropped } = selectItems(model, scorer);
    this.indices = indices;
    this.allowed = new Set(indices);
    if (dropped) this.dropped = dropped;
    this.identity = { task: scorer.task, settings: scorer.settings, model: modelKey(model), itemsHash: itemsHash(scorer.items), total: indices.length };
  }

  /**
   * The checkpoint of `scorer` on `model`: a fresh one (refused if `file` exists, unless resuming), or the
   * one in `file` when `resume` (refused if it belongs to another task, settings, model or items).
   */
  static open(model: HookedTransformer, scorer: HeadScorer<any>, opts: { file?: string; resume?: boolean } = {}): ScanCheckpoint {
    const cp = new ScanCheckpoint(scorer, model, opts.file);
    const file = opts.file;
    if (opts.resume) {
      if (!file) throw new HeadlensError('resume needs a checkpoint file', 'pass the checkpoint of the scan to continue');
      if (existsSync(file)) {
        const saved = readCheckpoint(file);
        const diffs = identityDiffs(saved, cp.identity);
        if (diffs.length) throw new HeadlensError(`cannot resume ${file}: ${diffs.join('; ')}`, 'resume with the same model, task, samples and seed, or start a new scan');
        // version 1 kept results in item order, one per selected item from the first
        saved.results.forEach((r, i) => cp.add({ ...r, index: saved.version === 1 ? cp.indices[i] : r.index }));
        for (const id of saved.jobs ?? []) cp.jobs.add(id);
        cp.meta = saved.meta;
      }
    } else if (file && existsSync(file)) {
      throw new HeadlensError(`checkpoint ${file} already exists`, 'pass --resume to continue it, or remove it to start again');
    }
    return cp;
  }

  /** How many items are done. */
  get count(): number {
    return this.done.size;
  }

  /** The indices of the items not done yet, in item order. */
  missing(): number[] {
    return this.indices.filter((i) => !this.done.has(i));
  }

  /** Whether job `id` was merged already. */
  hasJob(id: string): boolean {
    return this.jobs.has(id);
  }

  /**
   * Merges one item's result; false (and nothing changes) if that item is done already, so results that
   * arrive twice (a job retried after its worker died, a job run by two workers) count once.
   */
  add(r: IndexedItemScores): boolean {
    if (!this.allowed.has(r.index)) throw new HeadlensError(`a result for item ${r.index}, which this sweep does not score`, 'merge only jobs planned from this checkpoint');
    if (this.done.has(r.index)) return false;
    this.done.set(r.index, r);
    return true;
  }

  /**
   * Merges a finished job: its identity must be this sweep's, and each of its items counts once. Returns how
   * many items were new.
   */
  addJob(job: ScanJob, results: IndexedItemScores[]): number {
    const diffs = identityDiffs(job.sweep, this.identity);
    if (diffs.length) throw new HeadlensError(`job ${job.id} belongs to another sweep: ${diffs.join('; ')}`, 'merge only jobs planned from this checkpoint');
    const expected = new Set(job.items);
    if (results.length !== job.items.length || !results.every((r) => expected.has(r.index))) {
      throw new HeadlensError(`job ${job.id} returned results for items [${results.map((r) => r.index).join(', ')}], not its items [${job.items.join(', ')}]`);
    }
    let added = 0;
    for (const r of results) if (this.add(r)) added++;
    this.jobs.add(job.id);
    return added;
  }

  /** Writes the checkpoint (atomically) if it has a file. */
  save(): void {
    if (!this.file) return;
    const data: CheckpointFile = { version: 2, ...this.identity, results: [...this.done.values()], jobs: [...this.jobs], ...(this.meta ? { meta: this.meta } : {}) };
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, this.file);
  }

  /** The scorer's answer from every item, in item order; refused while items are missing. */
  finish(top?: number): HeadScores {
    const missing = this.missing();
    if (missing.length) throw new HeadlensError(`${this.identity.task}: ${missing.length} of ${this.identity.total} items are not scored yet (first: item ${missing[0]})`, 'run the missing jobs (resume the sweep) before finishing it');
    const results = this.indices.map((i) => {
      const { index: _, ...r } = this.done.get(i)!;
      return r as ItemScores;
    });
    return finish(this.scorer, this.model, results, top, this.dropped);
  }
}

/** A slice of a sweep's items; its id is a hash of the sweep's identity and the items. */
export interface ScanJob {
  id: string;
  sweep: ScanIdentity;
  /** Item indices, ascending. */
  items: number[];
}

/** The content-derived id of a job: the same sweep and items give the same id, on any machine. */
export function scanJobId(sweep: ScanIdentity, items: number[]): string {
  const { task, settings, model, itemsHash: h, total } = sweep;
  return createHash('sha256').update(JSON.stringify({ task, settings, model, itemsHash: h, total, items })).digest('hex').slice(0, 40);
}

/**
 * Splits a sweep's items into jobs of at most `jobSize` consecutive items and keeps, of each, the items the
 * checkpoint still misses (a job with none is left out). The slices are cut from all the sweep's items, not
 * from the missing ones, so planning the same sweep again gives the same job ids (a queue then hands back
 * the results it already has); a resumed sweep plans only what is missing, so it recomputes nothing done.
 */
export function scanJobs(cp: ScanCheckpoint, opts: { jobSize?: number } = {}): ScanJob[] {
  const size = opts.jobSize ?? 1;
  if (!(Number.isInteger(size) && size > 0)) throw new HeadlensError(`job size ${size} must be a positive integer`, 'e.g. --job-size 4');
  const missing = new Set(cp.missing());
  const jobs: ScanJob[] = [];
  for (let i = 0; i < cp.indices.length; i += size) {
    const items = cp.indices.slice(i, i + size).filter((x) => missing.has(x));
    if (items.length) jobs.push({ id: scanJobId(cp.identity, items), sweep: cp.identity, items });
  }
  return jobs;
}

/**
 * Checks that `job` belongs to the sweep `scorer` makes on `model` (same model, task, settings and items: the
 * process that runs a job builds the scorer again from the same settings) and asks only for items this model
 * runs; throws a HeadlensError naming the difference otherwise.
 */
export function checkScanJob(model: HookedTransformer, scorer: HeadScorer<any>, job: ScanJob): void {
  const here = ScanCheckpoint.open(model, scorer);
  const diffs = identityDiffs(job.sweep, here.identity);
  if (diffs.length) throw new HeadlensError(`job ${job.id} was planned for another sweep than this worker builds: ${diffs.join('; ')}`, 'give the worker the same model, task, samples and seed (and the same headlens version)');
  const allowed = new Set(here.indices);
  const bad = job.items.find((i) => !allowed.has(i));
  if (bad !== undefined) throw new HeadlensError(`job ${job.id} asks for item ${bad}, which this sweep does not score`, 'plan jobs with scanJobs from the sweep\'s checkpoint');
}

/** Scores a job's items on `model`, after `checkScanJob`. */
export function runScanJob(model: HookedTransformer, scorer: HeadScorer<any>, job: ScanJob): IndexedItemScores[] {
  return readSync(runScanJobReads(model, scorer, job));
}

/** runScanJob, reading asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function runScanJobAsync(model: HookedTransformer, scorer: HeadScorer<any>, job: ScanJob): Promise<IndexedItemScores[]> {
  return readAsync(runScanJobReads(model, scorer, job));
}

function* runScanJobReads(model: HookedTransformer, scorer: HeadScorer<any>, job: ScanJob): Reads<IndexedItemScores[]> {
  checkScanJob(model, scorer, job);
  const out: IndexedItemScores[] = [];
  for (const index of job.items) out.push({ index, ...(yield* scoreItemReads(scorer, model, index)) });
  return out;
}

/** Runs `scorer` over its items, checkpointing after each; resumes a checkpoint when asked. */
export function scan(model: HookedTransformer, scorer: HeadScorer<any>, opts: ScanOptions = {}): HeadScores {
  return readSync(scanReads(model, scorer, opts));
}

/** scan, reading asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function scanAsync(model: HookedTransformer, scorer: HeadScorer<any>, opts: ScanOptions = {}): Promise<HeadScores> {
  return readAsync(scanReads(model, scorer, opts));
}

function* scanReads(model: HookedTransformer, scorer: HeadScorer<any>, opts: ScanOptions): Reads<HeadScores> {
  const cp = ScanCheckpoint.open(model, scorer, { file: opts.checkpoint, resume: opts.resume });
  const total = cp.identity.total;
  opts.onProgress?.(cp.count, total);
  for (const i of cp.missing()) {
    cp.add({ index: i, ...(yield* scoreItemReads(scorer, model, i)) });
    cp.save();
    opts.onProgress?.(cp.count, total);
  }
  return cp.finish(opts.top);
}
