/**
 * The IOI task (Wang et al. 2022): not an item scan but prompts for path patching (ioi_classes.ts sorts the
 * heads into the circuit's classes), so `scanTask(model, 'ioi')` points there.
 */
import { IOI_LISTS, ioiPrompts, ioiTokens, singleTokenWords, unspelledWords, type IoiCorruption, type IoiListsName, type IoiTokens } from '../../../datasets/ioi.js';
import { HeadlensError } from '../../../errors.js';
import type { HookedTransformer } from '../../../hooks/hooked_transformer.js';
import type { TextTokenizer } from '../../../model/tokenizer.js';
import type { TaskDefinition, TaskOptions } from './task.js';

export const ioiScanTask: TaskDefinition = () => {
  throw new HeadlensError('the ioi task is not an item scan', 'use ioiTask(model) and ioiHeadClasses (ioi_classes.ts); headlens scan --task ioi does this');
};

export interface IoiTaskOptions extends TaskOptions {
  /**
   * Word lists: 'wang2022' (the paper's templates and names), 'headlens' (headlens' own, which toy-lm was trained
   * on) or 'auto' (default): the paper's where the tokenizer spells every word of their templates, places and
   * objects and keeps at least 10 of their names as single tokens, else headlens'. The choice and its reason are
   * in the result.
   */
  lists?: IoiListsName | 'auto';
  /** 'abc' (default, Wang et al.) or 's2' (S2 alone replaced; headlens before issue 19). */
  corruption?: IoiCorruption;
  /** Names to draw from instead of the lists' own (e.g. names held out of a model's training). */
  names?: readonly string[];
}

/** Which word lists 'auto' picks for this tokenizer, and why. */
export function chooseIoiLists(tokenizer: TextTokenizer): { lists: IoiListsName; reason: string } {
  const unspelled = unspelledWords(IOI_LISTS.wang2022, tokenizer);
  const whole = singleTokenWords(IOI_LISTS.wang2022.names, tokenizer).ok.length;
  if (!unspelled.length && whole >= 10) return { lists: 'wang2022', reason: `the tokenizer spells every word of Wang et al.'s templates and keeps ${whole} of their ${IOI_LISTS.wang2022.names.length} names whole` };
  const why = [unspelled.length ? `it cannot spell ${unspelled.length} words of Wang et al.'s templates (${unspelled.slice(0, 4).join(', ')}${unspelled.length > 4 ? ', …' : ''})` : '', whole < 10 ? `only ${whole} of their names are single tokens` : ''].filter(Boolean);
  return { lists: 'headlens', reason: `headlens' lists: ${why.join(' and ')}` };
}

/**
 * IOI prompts in tokens for this model's tokenizer (single-token names only), all of one length in tokens:
 * path patching batches prompts, so the most common length is kept (Wang et al. batch every template, padded
 * and aligned by word positions; here prompts of other lengths are left out and counted in `settings`).
 */
export function ioiTask(model: HookedTransformer, opts: IoiTaskOptions = {}): { prompts: IoiTokens[]; droppedNames: Record<string, number>; warnings: string[]; settings: Record<string, unknown> } {
  const tok = model.tokenizer;
  if (!tok) throw new HeadlensError('task ioi needs a model with a tokenizer (tokenizer.json)', 'use a model folder with tokenizer.json');
  const samples = opts.samples ?? 8;
  const bos = model.bosToken();
  const prefix = bos === null ? [] : [bos];
  const requested = opts.lists ?? 'auto';
  if (!['auto', 'wang2022', 'headlens'].includes(requested)) throw new HeadlensError(`ioi: no word lists '${requested}'`, "use lists: 'auto', 'wang2022' or 'headlens'");
  const chosen = requested === 'auto' ? chooseIoiLists(tok) : { lists: requested, reason: 'asked for' };
  const corruption = opts.corruption ?? 'abc';
  const set = ioiPrompts({ n: samples * 4, seed: opts.seed ?? 0, tokenizer: tok, lists: chosen.lists, corruption, ...(opts.names ? { names: opts.names } : {}) });
  const encoded = set.prompts.map((p) => ioiTokens(p, tok, prefix));
  const all = encoded.filter((p): p is IoiTokens => p !== undefined && p.clean.length <= model.cfg.n_ctx);
  const byLen = new Map<number, IoiTokens[]>();
  for (const p of all) byLen.set(p.clean.length, [...(byLen.get(p.clean.length) ?? []), p]);
  const best = [...byLen.values()].sort((a, b) => b.length - a.length)[0];
  if (!best) throw new HeadlensError('ioi: no prompt survives tokenization with single-token names');
  const prompts = best.slice(0, samples);
  const warnings = [...set.warnings];
  const unusable = encoded.length - all.length;
  if (unusable) warnings.push(`${unusable} of ${encoded.length} drawn prompts could not be used (a name split, or clean and corrupted of different lengths)`);
  return {
    prompts,
    droppedNames: set.droppedNames,
    warnings,
    settings: {
      lists: chosen.lists,
      listsReason: chosen.reason,
      namesFrom: set.namesFrom,
      corruption,
      drawn: encoded.length,
      promptLength: prompts[0].clean.length,
      keptOfThatLength: prompts.length,
      otherLengths: all.length - best.length,
      droppedNames: Object.keys(set.droppedNames).length,
    },
  };
}
