/**
 * Induction data: random token sequences repeated, [BOS] r_1 … r_n r_1 … r_n (Olsson et al. 2022; Elhage et
 * al. 2021). On the second half an induction head can predict every token, nothing else can; this is the data
 * the induction, previous-token and duplicate-token detectors and the in-context-loss check run on.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { Random } from '../util/random.js';

const int = z.number().int().nonnegative();

export const InductionSetSchema = z
  .object({
    kind: z.literal('induction'),
    seed: z.number().int(),
    /** Tokens per half (the repeated block). */
    halfLength: z.number().int().positive(),
    bos: int.nullable(),
    /** [sequence][pos]: bos?, then the block twice. */
    sequences: z.array(z.array(int).min(2)).min(1),
  })
  .strict();
export type InductionSet = z.infer<typeof InductionSetSchema>;

export interface InductionOptions {
  n: number;
  halfLength: number;
  /** Token ids drawn from [low, high) (default [1, d_vocab)); or an explicit pool. */
  low?: number;
  high?: number;
  pool?: number[];
  /** Prepended to every sequence (e.g. the model's bos_token_id); null for none. */
  bos?: number | null;
  seed?: number;
}

/** Seeded repeated random sequences. */
export function inductionSequences(opts: InductionOptions): InductionSet {
  const seed = opts.seed ?? 0;
  const pool = opts.pool ?? (opts.low !== undefined && opts.high !== undefined ? Array.from({ length: opts.high - opts.low }, (_, i) => opts.low! + i) : undefined);
  if (!pool || pool.length < 2) throw new HeadlensError('induction: need a token pool of at least 2 ids', 'pass pool, or low and high (e.g. low 1, high d_vocab)');
  if (!(Number.isInteger(opts.n) && opts.n > 0 && Number.isInteger(opts.halfLength) && opts.halfLength > 0)) {
    throw new HeadlensError(`induction: n (${opts.n}) and halfLength (${opts.halfLength}) must be positive integers`);
  }
  const rng = new Random(seed);
  const bos = opts.bos ?? null;
  const sequences = Array.from({ length: opts.n }, () => {
    const half = Array.from({ length: opts.halfLength }, () => rng.pick(pool));
    return [...(bos === null ? [] : [bos]), ...half, ...half];
  });
  return InductionSetSchema.parse({ kind: 'induction', seed, halfLength: opts.halfLength, bos, sequences });
}

export interface RepeatedBlocksOptions {
  n: number;
  /** Tokens per block (the period). */
  blockLength: number;
  /** How many times the block is repeated (default 4, as RazorAttention's head search). */
  repeats?: number;
  /** The ids the block is drawn from. */
  pool: number[];
  /** Drawn without replacement (needs pool.length ≥ blockLength); default false, with replacement as RazorAttention. */
  distinct?: boolean;
  /** Prepended to every sequence; null for none. */
  bos?: number | null;
  seed?: number;
}

/**
 * RazorAttention's probe input (Tang et al. 2024; their head search feeds random tokens repeated 4 times, 2,500 per
 * block in mindspore-ai/golden-stick's implementation, with BOS in front): [BOS] b_1 … b_L repeated `repeats` times.
 * `offset` is where the first block starts, `period` the block length; razor_attention.ts scores echo and induction
 * attention by these positions.
 */
export function repeatedBlocks(opts: RepeatedBlocksOptions): { sequences: number[][]; period: number; offset: number; repeats: number } {
  const repeats = opts.repeats ?? 4;
  const L = opts.blockLength;
  if (!(Number.isInteger(opts.n) && opts.n > 0 && Number.isInteger(L) && L > 0 && Number.isInteger(repeats) && repeats >= 2)) {
    throw new HeadlensError(`repeatedBlocks: n (${opts.n}) and blockLength (${L}) must be positive integers and repeats (${repeats}) at least 2`);
  }
  if (!opts.pool || opts.pool.length < 2) throw new HeadlensError('repeatedBlocks: need a token pool of at least 2 ids');
  if (opts.distinct && opts.pool.length < L) throw new HeadlensError(`repeatedBlocks: ${L} distinct tokens asked of a pool of ${opts.pool.length}`);
  const rng = new Random(opts.seed ?? 0);
  const bos = opts.bos ?? null;
  const sequences = Array.from({ length: opts.n }, () => {
    const block = opts.distinct ? rng.shuffle(opts.pool).slice(0, L) : Array.from({ length: L }, () => rng.pick(opts.pool));
    return [...(bos === null ? [] : [bos]), ...Array.from({ length: repeats }, () => block).flat()];
  });
  return { sequences, period: L, offset: bos === null ? 0 : 1, repeats };
}
