/**
 * `actName`, TransformerLens' get_act_name: `actName('pattern', 3)` is 'blocks.3.attn.hook_pattern',
 * `actName('scale', 2, 'ln1')` is 'blocks.2.ln1.hook_scale'. The short names, the full names and their types
 * all come from the hook table (src/model/hook_names.ts); this file only reads it.
 */
import { HeadlensError } from '../errors.js';
import { hookName, NORM_SHORT_NAMES, SHORT_NAMES, shortKind, type ActShortName, type BlockHookName, type HookName } from '../model/hook_names.js';

// the names themselves live in the model's table (src/model/hook_names.ts), which the forward pass reads too
export { blockHooks, hookName, hookAxes, hookHeadAxis, positionAxis, type ActShortName, type BlockHookName, type HookName, type HookAxis } from '../model/hook_names.js';

/** The full hook name for a short one, TransformerLens style. */
export function actName(name: ActShortName | string, layer?: number, sub?: 'ln1' | 'ln2' | 'ln_final'): HookName {
  if (NORM_SHORT_NAMES.has(name)) {
    // without a layer or a norm, 'scale' and 'normalized' mean the final norm's, as in TransformerLens
    if (sub === 'ln_final' || (sub === undefined && layer === undefined)) return shortKind(name, 'ln_final')!.name as HookName;
    if (layer === undefined) throw new HeadlensError(`actName('${name}', …, '${sub}') needs a layer`);
    return hookName(shortKind(name, sub ?? 'ln1')!.name as BlockHookName, layer);
  }
  const kind = shortKind(name);
  if (!kind) throw new HeadlensError(`actName: unknown activation '${name}'`, `use one of ${SHORT_NAMES.join(', ')}`);
  if (kind.scope !== 'block') return kind.name as HookName;
  if (layer === undefined || !Number.isInteger(layer) || layer < 0) {
    throw new HeadlensError(`actName('${name}') needs a layer index`, `e.g. actName('${name}', 0)`);
  }
  return hookName(kind.name as BlockHookName, layer);
}

/** The layer a hook name belongs to, or undefined for embeddings and the final norm. */
export function layerOf(name: string): number | undefined {
  const m = /^blocks\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The closest of `known` to `name` (edit distance), for "did you mean" messages. */
export function nearest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}
