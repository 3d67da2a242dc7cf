/**
 * The one table of hook points. Every hook name in headlens is spelled here and nowhere else: the forward
 * pass, `actName`, `hookNames()`, the head- and position-axis lookups and the type `HookName` all read this
 * table, so a new hook point (or a renamed one) is one new row. Names follow TransformerLens
 * (`blocks.{l}.attn.hook_z`); rows are in the order the forward pass visits them, which `hookNames()` keeps.
 * It lives in src/model because the forward needs it and src/model imports nothing above it; src/hooks
 * re-exports what users see (act_name.ts).
 */
import { HeadlensError } from '../errors.js';
import type { HookedConfig } from './config.js';

/** Axis words, as in every shape comment of the project. '1' is the kept length-1 axis of hook_scale. */
export type HookAxis = 'batch' | 'pos' | 'head' | 'kv_head' | 'd_head' | 'd_model' | 'd_mlp' | 'query_pos' | 'key_pos' | '1';

/** The norms a model can have: per block ln1 and ln2; ln_final (pre-LN decoders); embed.ln and mlm_head.ln (encoders). */
export type NormName = 'ln1' | 'ln2' | 'ln_final' | 'embed.ln' | 'mlm_head.ln';

/** One kind of hook point. */
interface HookPointKind {
  /** Where it sits: before the blocks, inside each block (named under `blocks.{l}.`), or after them. */
  readonly scope: 'embed' | 'block' | 'final';
  /** Its name inside that scope: 'attn.hook_z' in a block, 'hook_embed' or 'ln_final.hook_scale' outside. */
  readonly name: string;
  /** The short names `actName` takes for it; a norm's 'scale' and 'normalized' are told apart by `norm`. */
  readonly short: readonly string[];
  /** The norm it belongs to, for actName('scale', l, 'ln2'); encoders add 'embed.ln' and 'mlm_head.ln'. */
  readonly norm?: NormName;
  /** The activation's axes, in order. */
  readonly axes: readonly HookAxis[];
  /** Whether a model with this config has it; absent: every model does. */
  readonly when?: (cfg: HookedConfig) => boolean;
  /** Computed only when asked for (attn.hook_result), so listed only by hookNames({ withResult: true }). */
  readonly onRequest?: true;
}

const RESID = ['batch', 'pos', 'd_model'] as const;
const SCALE = ['batch', 'pos', '1'] as const;
const PER_HEAD = ['batch', 'pos', 'head', 'd_head'] as const;
const PER_KV_HEAD = ['batch', 'pos', 'kv_head', 'd_head'] as const;
const PER_KEY = ['batch', 'head', 'query_pos', 'key_pos'] as const;
const NEURONS = ['batch', 'pos', 'd_mlp'] as const;

const hasNorms = (cfg: HookedConfig) => Boolean(cfg.normalization_type);
const hasMlp = (cfg: HookedConfig) => !cfg.attn_only;
// post-LN (BERT) blocks visit ln1 after resid_mid and ln2 after resid_post, so their norms have a second pair of
// rows at those places; exactly one of each pair is present for a given config
const preNorms = (cfg: HookedConfig) => hasNorms(cfg) && cfg.norm_placement !== 'post';
const postNorms = (cfg: HookedConfig) => cfg.norm_placement === 'post';

/** Every hook point, in forward order. */
export const HOOK_POINTS = [
  { scope: 'embed', name: 'hook_embed', short: ['embed'], axes: RESID },
  { scope: 'embed', name: 'hook_pos_embed', short: ['pos_embed'], axes: RESID, when: (cfg) => cfg.positional_embedding_type === 'standard' },
  // encoders (TransformerLens' BertEmbed, which names these three embed.hook_embed, embed.hook_pos_embed and
  // embed.hook_token_type_embed; headlens keeps the decoders' top-level names so code runs on both)
  { scope: 'embed', name: 'hook_token_type_embed', short: ['token_type_embed'], axes: RESID, when: (cfg) => cfg.type_vocab_size > 0 },
  { scope: 'embed', name: 'embed.ln.hook_scale', short: ['scale'], norm: 'embed.ln', axes: SCALE, when: postNorms },
  { scope: 'embed', name: 'embed.ln.hook_normalized', short: ['normalized'], norm: 'embed.ln', axes: RESID, when: postNorms },

  { scope: 'block', name: 'hook_resid_pre', short: ['resid_pre'], axes: RESID },
  { scope: 'block', name: 'ln1.hook_scale', short: ['scale'], norm: 'ln1', axes: SCALE, when: preNorms },
  { scope: 'block', name: 'ln1.hook_normalized', short: ['normalized'], norm: 'ln1', axes: RESID, when: preNorms },
  { scope: 'block', name: 'attn.hook_q', short: ['q'], axes: PER_HEAD },
  { scope: 'block', name: 'attn.hook_k', short: ['k'], axes: PER_KV_HEAD },
  { scope: 'block', name: 'attn.hook_v', short: ['v'], axes: PER_KV_HEAD },
  { scope: 'block', name: 'attn.hook_rot_q', short: ['rot_q'], axes: PER_HEAD, when: (cfg) => cfg.positional_embedding_type === 'rotary' },
  { scope: 'block', name: 'attn.hook_rot_k', short: ['rot_k'], axes: PER_KV_HEAD, when: (cfg) => cfg.positional_embedding_type === 'rotary' },
  { scope: 'block', name: 'attn.hook_attn_scores', short: ['attn_scores', 'scores'], axes: PER_KEY },
  { scope: 'block', name: 'attn.hook_pattern', short: ['pattern', 'attn'], axes: PER_KEY },
  { scope: 'block', name: 'attn.hook_z', short: ['z'], axes: PER_HEAD },
  { scope: 'block', name: 'attn.hook_result', short: ['result'], axes: ['batch', 'pos', 'head', 'd_model'], onRequest: true },
  { scope: 'block', name: 'hook_attn_out', short: ['attn_out'], axes: RESID },
  // parallel blocks (GPT-J, Pythia) feed resid_pre to both attention and MLP: no residual between them
  { scope: 'block', name: 'hook_resid_mid', short: ['resid_mid'], axes: RESID, when: (cfg) => hasMlp(cfg) && !cfg.parallel_attn_mlp },
  { scope: 'block', name: 'ln1.hook_scale', short: ['scale'], norm: 'ln1', axes: SCALE, when: postNorms },
  { scope: 'block', name: 'ln1.hook_normalized', short: ['normalized'], norm: 'ln1', axes: RESID, when: postNorms },
  { scope: 'block', name: 'ln2.hook_scale', short: ['scale'], norm: 'ln2', axes: SCALE, when: (cfg) => hasMlp(cfg) && preNorms(cfg) },
  { scope: 'block', name: 'ln2.hook_normalized', short: ['normalized'], norm: 'ln2', axes: RESID, when: (cfg) => hasMlp(cfg) && preNorms(cfg) },
  // gated MLPs hook the gate's input at hook_pre (the activation function's input) and the up projection at hook_pre_linear
  { scope: 'block', name: 'mlp.hook_pre', short: ['pre'], axes: NEURONS, when: hasMlp },
  { scope: 'block', name: 'mlp.hook_pre_linear', short: ['pre_linear'], axes: NEURONS, when: (cfg) => hasMlp(cfg) && cfg.gated_mlp },
  { scope: 'block', name: 'mlp.hook_post', short: ['post'], axes: NEURONS, when: hasMlp },
  { scope: 'block', name: 'hook_mlp_out', short: ['mlp_out'], axes: RESID, when: hasMlp },
  { scope: 'block', name: 'hook_resid_post', short: ['resid_post'], axes: RESID },
  // post-LN: ln2 normalises resid_post, and that is the block's output (the next block's resid_pre)
  { scope: 'block', name: 'ln2.hook_scale', short: ['scale'], norm: 'ln2', axes: SCALE, when: postNorms },
  { scope: 'block', name: 'ln2.hook_normalized', short: ['normalized'], norm: 'ln2', axes: RESID, when: postNorms },
  { scope: 'block', name: 'hook_normalized_resid_post', short: ['normalized_resid_post'], axes: RESID, when: postNorms },

  { scope: 'final', name: 'ln_final.hook_scale', short: ['scale'], norm: 'ln_final', axes: SCALE, when: preNorms },
  { scope: 'final', name: 'ln_final.hook_normalized', short: ['normalized'], norm: 'ln_final', axes: RESID, when: preNorms },
  // the masked-LM head's norm (TransformerLens' BertMLMHead), after its dense layer and activation
  { scope: 'final', name: 'mlm_head.ln.hook_scale', short: ['scale'], norm: 'mlm_head.ln', axes: SCALE, when: (cfg) => cfg.mlm_head },
  { scope: 'final', name: 'mlm_head.ln.hook_normalized', short: ['normalized'], norm: 'mlm_head.ln', axes: RESID, when: (cfg) => cfg.mlm_head },
] as const satisfies readonly HookPointKind[];

type Row = (typeof HOOK_POINTS)[number];

/** A hook point's name inside a block: 'attn.hook_z', 'ln1.hook_scale', 'hook_resid_pre', … */
export type BlockHookName = Extract<Row, { scope: 'block' }>['name'];

/** A full hook name: 'hook_embed', 'blocks.3.attn.hook_pattern', 'ln_final.hook_normalized', … */
export type HookName = Exclude<Row, { scope: 'block' }>['name'] | `blocks.${number}.${BlockHookName}`;

/** Every short name `actName` takes. */
export type ActShortName = Row['short'][number];

const BLOCK_ROWS: readonly Row[] = HOOK_POINTS.filter((r) => r.scope === 'block');
const BY_BLOCK_NAME = new Map<string, Row>(BLOCK_ROWS.map((r) => [r.name, r]));
const BY_MODEL_NAME = new Map<string, Row>(HOOK_POINTS.filter((r) => r.scope !== 'block').map((r) => [r.name, r]));

const BLOCK_PREFIX = 'blocks.';

/** Per layer, every block hook point's full name, made once: the forward looks names up here at every hook point. */
const perLayer: Readonly<Record<BlockHookName, HookName>>[] = [];

/** Block `layer`'s hook names by kind: `blockHooks(3)['attn.hook_z']` is 'blocks.3.attn.hook_z'. Cached per layer. */
export function blockHooks(layer: number): Readonly<Record<BlockHookName, HookName>> {
  const cached = perLayer[layer];
  if (cached) return cached;
  if (!Number.isInteger(layer) || layer < 0) throw new HeadlensError(`hook names need a layer index, got ${layer}`, 'use 0, 1, …');
  const names = Object.fromEntries(BLOCK_ROWS.map((r) => [r.name, `${BLOCK_PREFIX}${layer}.${r.name}`])) as Record<BlockHookName, HookName>;
  return (perLayer[layer] = Object.freeze(names));
}

/** The full name of a block hook point: `hookName('attn.hook_z', 3)` is 'blocks.3.attn.hook_z'. */
export function hookName(kind: BlockHookName, layer: number): HookName {
  const name = blockHooks(layer)[kind];
  if (name === undefined) throw new HeadlensError(`'${kind}' is not a hook point of a block`, `use one of ${BLOCK_ROWS.map((r) => r.name).join(', ')}`);
  return name;
}

/** Per norm prefix ('ln_final', 'blocks.2.ln1'), its hook_scale and hook_normalized names, made once. */
const normCache = new Map<string, { scale: string; normalized: string }>();

/** The hook names of the norm at `prefix` ('ln_final', 'blocks.{l}.ln1', 'blocks.{l}.ln2', 'embed.ln', 'mlm_head.ln'). */
export function normHooks(prefix: string): { scale: string; normalized: string } {
  const cached = normCache.get(prefix);
  if (cached) return cached;
  if (prefix === 'embed.ln' || prefix === 'mlm_head.ln') {
    const names = { scale: `${prefix}.hook_scale`, normalized: `${prefix}.hook_normalized` };
    normCache.set(prefix, names);
    return names;
  }
  const norm = prefix.slice(prefix.lastIndexOf('.') + 1);
  const at = prefix.slice(0, prefix.length - norm.length); // 'blocks.2.' or ''
  const row = (short: 'scale' | 'normalized') => HOOK_POINTS.find((r) => 'norm' in r && r.norm === norm && r.short[0] === short);
  const scale = row('scale');
  const normalized = row('normalized');
  if (!scale || !normalized || (at === '') !== (scale.scope !== 'block')) throw new HeadlensError(`'${prefix}' is not a norm`, "use 'ln_final', 'blocks.{l}.ln1' or 'blocks.{l}.ln2'");
  const names = { scale: at + scale.name, normalized: at + normalized.name };
  normCache.set(prefix, names);
  return names;
}

/** The table row of a full hook name ('blocks.3.attn.hook_z') or of a block hook name on its own ('attn.hook_z'). */
function kindOf(name: string): Row | undefined {
  const model = BY_MODEL_NAME.get(name);
  if (model) return model;
  if (!name.startsWith(BLOCK_PREFIX)) return BY_BLOCK_NAME.get(name);
  const dot = name.indexOf('.', BLOCK_PREFIX.length); // the dot after the layer number
  return dot < 0 ? undefined : BY_BLOCK_NAME.get(name.slice(dot + 1));
}

/** The axes of a hook point's activation, e.g. ['batch', 'head', 'query_pos', 'key_pos'] for attn.hook_pattern. */
export function hookAxes(name: string): readonly HookAxis[] | undefined {
  return kindOf(name)?.axes;
}

const indexOf = (axes: readonly HookAxis[], ...words: HookAxis[]) => {
  const i = axes.findIndex((a) => words.includes(a));
  return i < 0 ? undefined : i;
};
const HEAD_AXIS = new Map(HOOK_POINTS.map((r) => [r.name as string, indexOf(r.axes, 'head', 'kv_head')]));
const POS_AXIS = new Map(HOOK_POINTS.map((r) => [r.name as string, indexOf(r.axes, 'pos', 'query_pos')]));

/** The axis that indexes heads (query or key/value heads), for hook points that have one. */
export function hookHeadAxis(name: string): number | undefined {
  const row = kindOf(name);
  return row && HEAD_AXIS.get(row.name);
}

/** The axis that indexes positions (the query position for scores and patterns); undefined for unknown names. */
export function positionAxis(name: string): number | undefined {
  const row = kindOf(name);
  return row && POS_AXIS.get(row.name);
}

/** The names of the hook points of one block, in the order the forward pass visits them. */
export function blockHookNames(cfg: HookedConfig, l: number, opts: { withResult?: boolean } = {}): string[] {
  const names = blockHooks(l);
  return BLOCK_ROWS.filter((r) => present(r, cfg, opts)).map((r) => names[r.name as BlockHookName]);
}

/** Every hook point of a model, in forward order. `attn.hook_result` only with withResult. */
export function hookNames(cfg: HookedConfig, opts: { withResult?: boolean } = {}): string[] {
  const at = (scope: Row['scope']) => HOOK_POINTS.filter((r) => r.scope === scope && present(r, cfg, opts)).map((r) => r.name as string);
  const blocks = Array.from({ length: cfg.n_layers }, (_, l) => blockHookNames(cfg, l, opts));
  return [...at('embed'), ...blocks.flat(), ...at('final')];
}

function present(r: HookPointKind, cfg: HookedConfig, opts: { withResult?: boolean }): boolean {
  return (!r.onRequest || Boolean(opts.withResult)) && (r.when?.(cfg) ?? true);
}

/** Norm hook points share their short names ('scale', 'normalized'); `norm` picks which norm. */
const BY_SHORT = new Map<string, Row>(HOOK_POINTS.flatMap((r) => r.short.map((s) => [`${'norm' in r ? r.norm : ''}:${s}`, r] as const)));

/** The hook point a short name stands for: ('z') → attn.hook_z, ('scale', 'ln2') → ln2.hook_scale; undefined if none. */
export function shortKind(short: string, norm?: NormName): { scope: Row['scope']; name: string } | undefined {
  return BY_SHORT.get(`${norm ?? ''}:${short}`);
}

/** The short names that belong to norms and take a norm ('ln1', 'ln2', 'ln_final') to pick one. */
export const NORM_SHORT_NAMES: ReadonlySet<string> = new Set(HOOK_POINTS.flatMap((r) => ('norm' in r ? r.short : [])));

/**
 * Every short name `actName` takes, in forward order ('scale' and 'normalized' where a decoder's first norm has
 * them, after resid_pre: an encoder's embed.ln rows come earlier in the table but do not move them).
 */
export const SHORT_NAMES: readonly string[] = [...new Set(HOOK_POINTS.filter((r) => !('norm' in r && r.norm === 'embed.ln')).flatMap((r) => r.short as readonly string[]))];

/** One kind of hook point as a model has it: its name (`blocks.{l}.…` for block hooks), short names, axes, layers. */
export interface HookPointInfo {
  name: string;
  short: readonly string[];
  axes: readonly HookAxis[];
  /** Layers it exists in (all for block hooks; none for embed/final hooks). */
  layers: number;
  /** Made only when asked for (attn.hook_result: names it, or `withResult`). */
  onRequest: boolean;
}

/** The hook points of a model, by kind, in forward order: what `headlens hooks` lists. */
export function hookPointTable(cfg: HookedConfig): HookPointInfo[] {
  return HOOK_POINTS.filter((r) => present(r, cfg, { withResult: true })).map((r) => ({
    name: r.scope === 'block' ? `${BLOCK_PREFIX}{l}.${r.name}` : r.name,
    short: r.short,
    axes: r.axes,
    layers: r.scope === 'block' ? cfg.n_layers : 0,
    onRequest: 'onRequest' in r && Boolean(r.onRequest),
  }));
}

/**
 * The model's full hook names a short name stands for, every layer's (TransformerLens' `names_filter` on a name's
 * ending): 'pattern' → blocks.{0…L−1}.attn.hook_pattern; 'normalized' → every norm's. [] if none.
 */
export function namesForShort(cfg: HookedConfig, short: string): string[] {
  const rows = new Set<string>(HOOK_POINTS.filter((r) => (r.short as readonly string[]).includes(short)).map((r) => r.name));
  return hookNames(cfg, { withResult: true }).filter((n) => {
    const row = kindOf(n);
    return row !== undefined && rows.has(row.name);
  });
}
