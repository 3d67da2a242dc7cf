/**
 * A resumable sweep of a head scorer over its items. Long scans (retrieval decoding over a grid of needle
 * trials, patching every head for every temporal pair) take hours on real models; a crash should cost only
 * the item in flight. `scan` writes every finished item's tables to a JSON checkpoint (atomically: a temporary
 * file renamed over the old one) and `resume: true` reads it back and continues with the next item, so nothing
 * is recomputed and nothing lost. JSON keeps doubles exactly and the mean is taken in item order, so a resumed
 * scan gives bit-identical scores to an uninterrupted one. The checkpoint records the task, settings, model
 * and a hash of the items; resuming with anything different is refused.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { finish, selectItems, type HeadScorer, type HeadScores, type ItemScores } from './head_scores.js';

export interface ScanOptions {
  /** JSON file for partial results; without it the scan just runs. */
  checkpoint?: string;
  /** Continue the scan in `checkpoint` (default false: a fresh scan, refused if the file exists). */
  resume?: boolean;
  /** Called after each item with (items done, total). */
  onProgress?: (done: number, total: number) => void;
  top?: number;
}

interface Checkpoint {
  version: 1;
  task: string;
  settings: Record<string, unknown>;
  model: { name: string; n_layers: number; n_heads: number; d_model: number; d_vocab: number };
  itemsHash: string;
  total: number;
  results: ItemScores[];
}

function modelKey(model: HookedTransformer): Checkpoint['model'] {
  const c = model.cfg;
  return { name: c.model_name, n_layers: c.n_layers, n_heads: c.n_heads, d_model: c.d_model, d_vocab: c.d_vocab };
}

/** A stable hash of the items, so a checkpoint is only resumed on the same data. */
export function itemsHash(items: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(items)).digest('hex');
}

function readCheckpoint(file: string): Checkpoint {
  let cp: Checkpoint;
  try {
    cp = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HeadlensError(`checkpoint ${file} could not be read: ${(e as Error).message}`, 'remove it to start the scan afresh');
  }
  if (cp?.version !== 1 || !Array.isArray(cp.results)) throw new HeadlensError(`${file} is not a headlens scan checkpoint`, 'remove it or pass another file');
  return cp;
}

function writeCheckpoint(file: string, cp: Checkpoint): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(cp));
  renameSync(tmp, file);
}

/** Runs `scorer` over its items, checkpointing after each; resumes a checkpoint when asked. */
export function scan(model: HookedTransformer, scorer: HeadScorer<any>, opts: ScanOptions = {}): HeadScores {
  // items that cannot run on this model (longer than n_ctx) are left out here, the same ones on every resume
  const { indices, dropped } = selectItems(model, scorer);
  const total = indices.length;
  const fresh: Checkpoint = { version: 1, task: scorer.task, settings: scorer.settings, model: modelKey(model), itemsHash: itemsHash(scorer.items), total, results: [] };
  let cp = fresh;
  const file = opts.checkpoint;
  if (opts.resume) {
    if (!file) throw new HeadlensError('resume needs a checkpoint file', 'pass the checkpoint of the scan to continue');
    if (existsSync(file)) {
      cp = readCheckpoint(file);
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      const diffs = [
        cp.task !== fresh.task && `task ${cp.task} ≠ ${fresh.task}`,
        !same(cp.settings, fresh.settings) && 'settings differ',
        !same(cp.model, fresh.model) && `model ${cp.model?.name} ≠ ${fresh.model.name}`,
        cp.itemsHash !== fresh.itemsHash && 'the items differ (other samples or seed)',
      ].filter(Boolean);
      if (diffs.length) throw new HeadlensError(`cannot resume ${file}: ${diffs.join('; ')}`, 'resume with the same model, task, samples and seed, or start a new scan');
    }
  } else if (file && existsSync(file)) {
    throw new HeadlensError(`checkpoint ${file} already exists`, 'pass --resume to continue it, or remove it to start again');
  }
  const results = [...cp.results];
  opts.onProgress?.(results.length, total);
  for (let i = results.length; i < total; i++) {
    results.push(scorer.scoreItem(model, scorer.items[indices[i]], indices[i]));
    if (file) writeCheckpoint(file, { ...cp, results });
    opts.onProgress?.(i + 1, total);
  }
  return finish(scorer, model, results, opts.top, dropped);
}
