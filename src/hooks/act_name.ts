/**
 * Typed hook names and `actName`, TransformerLens' get_act_name: `actName('pattern', 3)` is
 * 'blocks.3.attn.hook_pattern', `actName('scale', 2, 'ln1')` is 'blocks.2.ln1.hook_scale'.
 */
import { HeadlensError } from '../errors.js';

export type BlockHookName =
  | 'hook_resid_pre' | 'hook_resid_mid' | 'hook_resid_post' | 'hook_attn_out' | 'hook_mlp_out'
  | 'ln1.hook_scale' | 'ln1.hook_normalized' | 'ln2.hook_scale' | 'ln2.hook_normalized'
  | 'attn.hook_q' | 'attn.hook_k' | 'attn.hook_v' | 'attn.hook_rot_q' | 'attn.hook_rot_k'
  | 'attn.hook_attn_scores' | 'attn.hook_pattern' | 'attn.hook_z' | 'attn.hook_result'
  | 'mlp.hook_pre' | 'mlp.hook_pre_linear' | 'mlp.hook_post';

export type HookName =
  | 'hook_embed' | 'hook_pos_embed' | 'ln_final.hook_scale' | 'ln_final.hook_normalized'
  | `blocks.${number}.${BlockHookName}`;

const SHORT: Record<string, BlockHookName> = {
  resid_pre: 'hook_resid_pre', resid_mid: 'hook_resid_mid', resid_post: 'hook_resid_post',
  attn_out: 'hook_attn_out', mlp_out: 'hook_mlp_out',
  q: 'attn.hook_q', k: 'attn.hook_k', v: 'attn.hook_v', rot_q: 'attn.hook_rot_q', rot_k: 'attn.hook_rot_k',
  attn_scores: 'attn.hook_attn_scores', scores: 'attn.hook_attn_scores', pattern: 'attn.hook_pattern', attn: 'attn.hook_pattern',
  z: 'attn.hook_z', result: 'attn.hook_result',
  pre: 'mlp.hook_pre', pre_linear: 'mlp.hook_pre_linear', post: 'mlp.hook_post',
};

export type ActShortName = keyof typeof SHORT | 'embed' | 'pos_embed' | 'scale' | 'normalized';

/** The full hook name for a short one, TransformerLens style. */
export function actName(name: ActShortName | string, layer?: number, sub?: 'ln1' | 'ln2' | 'ln_final'): HookName {
  if (name === 'embed' || name === 'pos_embed') return `hook_${name}`;
  if (name === 'scale' || name === 'normalized') {
    if (sub === 'ln_final' || (sub === undefined && layer === undefined)) return `ln_final.hook_${name}`;
    if (layer === undefined) throw new HeadlensError(`actName('${name}', …, '${sub}') needs a layer`);
    return `blocks.${layer}.${sub ?? 'ln1'}.hook_${name}` as HookName;
  }
  const block = SHORT[name];
  if (!block) {
    throw new HeadlensError(`actName: unknown activation '${name}'`, `use one of ${['embed', 'pos_embed', 'scale', 'normalized', ...Object.keys(SHORT)].join(', ')}`);
  }
  if (layer === undefined || !Number.isInteger(layer) || layer < 0) {
    throw new HeadlensError(`actName('${name}') needs a layer index`, `e.g. actName('${name}', 0)`);
  }
  return `blocks.${layer}.${block}`;
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
