/**
 * Token arguments of the `headlens` commands: rows of ids ("1,2,3;4,5,6"), a prompt given as ids or text,
 * and one answer token given as an id or as text the tokenizer encodes as one token.
 */
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';

/** "1,2,3;4,5,6" → [[1,2,3],[4,5,6]]. */
export function parseTokenRows(s: string): number[][] {
  return s.split(';').map((row, i) =>
    row.split(',').map((x) => {
      const t = x.trim();
      if (!/^\d+$/.test(t)) throw new HeadlensError(`--tokens row ${i}: '${t}' is not a token id`, 'write rows of non-negative integers: --tokens "1,2,3;4,5,6"');
      return Number(t);
    }),
  );
}

/** What `--prepend-bos` / `--no-prepend-bos` ask: true, false, or undefined for the default (see bosOptions). */
export function prependBosFlag(v: { 'prepend-bos'?: boolean; 'no-prepend-bos'?: boolean }): boolean | undefined {
  if (v['prepend-bos'] && v['no-prepend-bos']) throw new HeadlensError('--prepend-bos and --no-prepend-bos contradict each other', 'give one of them, or neither for the default (BOS first where the vocabulary has it)');
  return v['prepend-bos'] ? true : v['no-prepend-bos'] ? false : undefined;
}

/**
 * "1,2,3" (or "1,2,3;4,5,6") → token rows, as given; anything else is text for the model's tokenizer, with BOS
 * first as `prependBos` says (undefined: model.toTokens' default).
 */
export function promptRows(model: HookedTransformer, arg: string, flag: string, prependBos?: boolean): number[][] {
  if (/^\s*\d+(\s*,\s*\d+)*(\s*;\s*\d+(\s*,\s*\d+)*)*\s*$/.test(arg)) return parseTokenRows(arg);
  try {
    return model.toTokens(arg, { prependBos });
  } catch (e) {
    if (e instanceof HeadlensError) throw new HeadlensError(`--${flag}: ${e.message}`, 'pass token ids as "1,2,3" instead');
    throw e;
  }
}

/** A token id ("42") or a text that the tokenizer encodes as exactly one token. */
export function tokenId(model: HookedTransformer, arg: string, flag: string): number {
  if (/^\d+$/.test(arg)) {
    const id = Number(arg);
    if (id >= model.cfg.d_vocab) throw new HeadlensError(`--${flag} ${id} is not in the vocabulary [0, ${model.cfg.d_vocab})`);
    return id;
  }
  if (!model.tokenizer) throw new HeadlensError(`--${flag} '${arg}' is text but the model has no tokenizer`, 'pass a token id');
  const ids = model.tokenizer.encode(arg);
  if (ids.length !== 1) throw new HeadlensError(`--${flag} '${arg}' is ${ids.length} tokens (${ids.join(', ')})`, 'pass text that is one token, or its id');
  return ids[0];
}

/** The words of `text` that the tokenizer turns into its unknown token (a word-level vocabulary's [UNK]); [] if it has none. */
export function unknownWords(model: HookedTransformer, text: string): string[] {
  const tok = model.tokenizer;
  const unk = tok?.unkId;
  if (!tok || unk == null) return [];
  return [...new Set(text.split(/\s+/).filter((w) => w && tok.encode(w).includes(unk)))];
}
