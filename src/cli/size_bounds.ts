/**
 * Bounds on the CLI's size flags (--samples, --batch-size, --pos, --draws …), checked before anything is
 * allocated: `scan --samples 1e9` used to build a billion items and die of V8's heap limit a minute later with
 * exit 134. A flag over its bound is a HeadlensError (exit 2, one line) naming the largest value that fits.
 *
 * Two kinds of bound. Where the flag sizes tensors, the bound comes from what one sequence takes through the
 * model (`activationBytes`) against `memoryBudget()`. Where it only sizes a loop or a list (steps, draws, timed
 * repetitions), it is a documented cap, far above any run that finishes in a day on this library's backends.
 */
import { HeadlensError } from '../errors.js';

/**
 * What one command may put into tensors and the lists it keeps: 4 GiB by default, the most the wasm backend's
 * heap can grow to (wasm32); env HEADLENS_MEMORY_GIB raises it on a machine with more (a GPU, tfjs-node).
 */
export function memoryBudget(): number {
  const v = process.env.HEADLENS_MEMORY_GIB;
  if (v === undefined || v === '') return 4 * 2 ** 30;
  const gib = Number(v);
  if (!(Number.isFinite(gib) && gib > 0)) throw new HeadlensError(`HEADLENS_MEMORY_GIB='${v}' is not a positive number of GiB`, 'e.g. HEADLENS_MEMORY_GIB=16, or leave it unset for 4');
  return gib * 2 ** 30;
}

/** Documented caps of the flags that size loops and lists, not tensors. */
export const CAPS = {
  /** Scan items (each keeps its tokens and its tables for the checkpoint). */
  samples: 100_000,
  /** Random head sets of a causal check (each a full run of the task's metric). */
  draws: 1_000,
  /** Training steps. */
  steps: 10_000_000,
  /** Calls per timed block, and timed blocks, of `headlens bench`. */
  reps: 10_000,
  trials: 1_000,
  /** Prompt length of `headlens bench --long` (the longest context the issue asks for is 128K). */
  longContext: 131_072,
} as const;

/** The model sizes the bounds need. */
export interface SizedConfig {
  n_layers: number;
  n_heads: number;
  d_head: number;
  d_model: number;
  d_mlp: number | null;
  d_vocab: number;
  n_ctx: number;
}

/**
 * Bytes of float32 activations one sequence of `pos` tokens keeps through a forward pass that holds every layer's
 * activations (a cache, or the tape of a training step): per layer the attention scores and pattern
 * [head, query_pos, key_pos], q, k, v and z [pos, head, d_head], six [pos, d_model] residual writes and norms, the
 * MLP's pre and post [pos, d_mlp]; then the embeddings and the logits and their softmax [pos, d_vocab].
 */
export function activationBytes(cfg: SizedConfig, pos: number): number {
  const dMlp = cfg.d_mlp ?? 4 * cfg.d_model;
  const perLayer = 2 * cfg.n_heads * pos * pos + 4 * cfg.n_heads * cfg.d_head * pos + 6 * cfg.d_model * pos + 2 * dMlp * pos;
  return 4 * (cfg.n_layers * perLayer + 2 * cfg.d_model * pos + 2 * cfg.d_vocab * pos);
}

/** The largest count of `bytesEach` that fits the budget (at least 0). */
export function fitting(bytesEach: number, budget = memoryBudget()): number {
  return Math.max(0, Math.floor(budget / Math.max(1, bytesEach)));
}

/**
 * Refuses `--flag value` over `max`: one line with the largest value that fits and why.
 * `why` finishes "the most that fits …" (e.g. "in 2 GiB for toy-lm: each prompt holds 1.2 MB of activations").
 */
export function checkAtMost(flag: string, value: number | undefined, max: number, why: string, memory = true): void {
  if (value === undefined || value <= max) return;
  const more = memory ? ', or raise HEADLENS_MEMORY_GIB on a machine with more memory' : '';
  if (max < 1) throw new HeadlensError(`--${flag} ${value} is too large: not even 1 fits ${why}`, `use a smaller model or sequence${more}`);
  throw new HeadlensError(`--${flag} ${value} is more than ${max}, the most that fits ${why}`, `e.g. --${flag} ${max}${more}`);
}

/** "1.2 MB", "640 KB", "12 B": a size for a message. */
export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (b >= 2 ** 10) return `${(b / 2 ** 10).toFixed(1)} KiB`;
  return `${b} B`;
}
