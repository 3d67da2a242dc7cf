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
