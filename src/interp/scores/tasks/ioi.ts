/**
 * The IOI task (Wang et al. 2022): not an item scan but prompts for path patching (ioi_classes.ts sorts the
 * heads into the circuit's classes), so `scanTask(model, 'ioi')` points there.
 */
import { ioiPrompts, ioiTokens, type IoiTokens } from '../../../datasets/ioi.js';
import { HeadlensError } from '../../../errors.js';
import type { HookedTransformer } from '../../../hooks/hooked_transformer.js';
import type { TaskDefinition, TaskOptions } from './task.js';

export const ioiScanTask: TaskDefinition = () => {
  throw new HeadlensError('the ioi task is not an item scan', 'use ioiTask(model) and ioiHeadClasses (ioi_classes.ts); headlens scan --task ioi does this');
};

/**
 * IOI prompts in tokens for this model's tokenizer (single-token names only), all of one length in tokens:
 * path patching batches prompts, so the most common length is kept.
 */
export function ioiTask(model: HookedTransformer, opts: TaskOptions = {}): { prompts: IoiTokens[]; droppedNames: Record<string, number> } {
  const tok = model.tokenizer;
  if (!tok) throw new HeadlensError('task ioi needs a model with a tokenizer (tokenizer.json)', 'use a model folder with tokenizer.json');
  const samples = opts.samples ?? 8;
  const bos = model.bosToken();
  const prefix = bos === null ? [] : [bos];
  const set = ioiPrompts({ n: samples * 4, seed: opts.seed ?? 0, tokenizer: tok });
  const all = set.prompts.map((p) => ioiTokens(p, tok, prefix)).filter((p): p is IoiTokens => p !== undefined && p.clean.length <= model.cfg.n_ctx);
  const byLen = new Map<number, IoiTokens[]>();
  for (const p of all) byLen.set(p.clean.length, [...(byLen.get(p.clean.length) ?? []), p]);
  const best = [...byLen.values()].sort((a, b) => b.length - a.length)[0];
  if (!best) throw new HeadlensError('ioi: no prompt survives tokenization with single-token names');
  return { prompts: best.slice(0, samples), droppedNames: set.droppedNames };
}
