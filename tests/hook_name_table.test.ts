/**
 * Hook names have one owner, the table in src/model/hook_names.ts. These tests keep it that way: no other
 * source file builds a hook name from a template, and the axes the table gives for each hook point (hence
 * headAxis and positionAxis) are the axes the forward pass's activations actually have.
 */
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { actName, hookAxes, positionAxis } from '../src/hooks/act_name.js';
import { headAxis } from '../src/hooks/activation_cache.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig, type HookedConfig } from '../src/model/config.js';
import { FIXTURES, ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');
const TABLE = 'src/model/hook_names.ts';

// files allowed to build hook names from templates besides the table: none
const ALLOWED = new Set<string>([]);

/**
 * A template that builds a hook name: an interpolation followed by `.hook_…` (directly or under attn, mlp or a
 * norm), `hook_${…}`, or `blocks.${…}.${…}`. Parameter names (`blocks.${l}.attn.W_Q`), bare prefixes
 * (`blocks.${l}`) and prose that happens to start with hook_ (`hook_overhead ${x}`) do not match.
 */
const HOOK_TEMPLATE = [/\$\{[^}]*\}\.(?:(?:attn|mlp|ln1|ln2|ln_final)\.)?hook_/, /hook_\$\{/, /blocks\.\$\{[^}]*\}\.\$\{/];

const buildsHookName = (line: string) => HOOK_TEMPLATE.some((re) => re.test(line));

/** Comment lines may show a template as an example; only code counts. */
const isComment = (line: string) => /^\s*(\/\/|\/\*|\*)/.test(line);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('hook names are spelled only in the hook table', () => {
  it('the template check flags hook-name templates and leaves parameter names alone', () => {
    for (const hook of ['`blocks.${l}.attn.hook_z`', '`${b}.hook_resid_pre`', '`${p}.hook_scale`', '`ln_final.hook_${name}`', '`blocks.${layer}.${kind}`', '`blocks.${l}.ln2.hook_normalized`']) {
      expect(buildsHookName(hook), hook).toBe(true);
    }
    for (const other of ['`blocks.${l}.attn.W_Q`', '`blocks.${l}`', '`${n}.b_O`', '`${p}.w`', '`hook_overhead      ${f(x)}`', "'blocks.0.attn.hook_z'", '`hook at ${name} returned`']) {
      expect(buildsHookName(other), other).toBe(false);
    }
  });

  it('no source file outside src/model/hook_names.ts builds a hook name from a template', () => {
    const offending: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(ROOT, file).split(path.sep).join('/');
      if (rel === TABLE || ALLOWED.has(rel)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (!isComment(line) && buildsHookName(line)) offending.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offending, 'use actName(short, layer) or hookName(kind, layer) from the hook table').toEqual([]);
  });
});

// ---- the table's axes against real activations ----

/** Chosen to differ from every other size in the models below, so the position axis is told apart. */
const POS = 7;
const BATCH = 3;
const TOKENS = Array.from({ length: BATCH }, (_, b) => Array.from({ length: POS }, (_, p) => (3 * b + 5 * p + 1) % 20));

const ATTN_ONLY = makeConfig({ model_name: 'attn-only-2l', d_model: 16, n_layers: 2, n_heads: 2, d_head: 8, d_vocab: 20, n_ctx: 16, attn_only: true });

const models: Record<string, HookedTransformer> = {};

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  // gpt2: LayerNorm, learned positions; llama-gqa: RMSNorm, rotary, gated MLP, grouped-query; pythia-parallel: parallel blocks
  for (const name of ['gpt2', 'llama-gqa', 'pythia-parallel']) models[name] = await loadPretrained(path.join(FIXTURES, name));
  models['attn-only'] = HookedTransformer.random(ATTN_ONLY, { seed: 1 });
});

afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
});

function axisSize(cfg: HookedConfig, axis: string): number {
  const sizes: Record<string, number | null> = {
    batch: BATCH, pos: POS, query_pos: POS, key_pos: POS, head: cfg.n_heads, kv_head: cfg.n_key_value_heads,
    d_head: cfg.d_head, d_model: cfg.d_model, d_mlp: cfg.d_mlp, '1': 1,
  };
  const n = sizes[axis];
  if (n == null) throw new Error(`no size for axis ${axis}`);
  return n;
}

describe.each(['gpt2', 'llama-gqa', 'attn-only', 'pythia-parallel'])('the hook table on %s', (name) => {
  it('every hook point it lists has the axes the table gives, and headAxis / positionAxis index them', () => {
    const model = models[name];
    const { cfg } = model;
    expect([cfg.n_heads, cfg.n_key_value_heads, cfg.d_head, cfg.d_model, cfg.d_mlp, BATCH]).not.toContain(POS);
    const names = model.hookNames({ withResult: true }); // runWithCache('all') keeps all of these but attn.hook_result
    const { logits, cache } = model.runWithCache(TOKENS, { names });
    try {
      expect(cache.keys().sort()).toEqual([...names].sort());
      for (const n of names) {
        const shape = cache.get(n).shape;
        const axes = hookAxes(n);
        expect(axes, n).toBeDefined();
        expect(shape, n).toEqual(axes!.map((a) => axisSize(cfg, a)));
        const h = headAxis(n);
        const heads = axes!.findIndex((a) => a === 'head' || a === 'kv_head');
        expect(h, n).toBe(heads < 0 ? undefined : heads);
        if (h !== undefined) expect([cfg.n_heads, cfg.n_key_value_heads], n).toContain(shape[h]);
        const p = positionAxis(n);
        expect(p, n).toBe(axes!.findIndex((a) => a === 'pos' || a === 'query_pos'));
        expect(shape[p!], n).toBe(POS);
      }
    } finally {
      cache.dispose();
      logits.dispose();
    }
  });
});

describe('the lookups derived from the table', () => {
  it('headAxis gives what it gave before the table: 1 for scores and patterns, 2 for q, k, v, rot_q, rot_k, z, result', () => {
    const before = (n: string) => (/attn\.hook_(attn_scores|pattern)$/.test(n) ? 1 : /attn\.hook_(q|k|v|rot_q|rot_k|z|result)$/.test(n) ? 2 : undefined);
    const names = Object.values(models).flatMap((m) => m.hookNames({ withResult: true }));
    for (const n of [...names, 'attn.hook_z', 'attn.hook_pattern', 'hook_resid_pre', 'blocks.0.attn.W_Q', 'nonsense']) expect(headAxis(n), n).toBe(before(n));
  });

  it('actName reaches every hook point of every model, and positionAxis is undefined for names not in the table', () => {
    const shorts = ['embed', 'pos_embed', 'resid_pre', 'q', 'k', 'v', 'rot_q', 'rot_k', 'attn_scores', 'pattern', 'z', 'result', 'attn_out', 'resid_mid', 'pre', 'pre_linear', 'post', 'mlp_out', 'resid_post'];
    const reachable = new Set<string>(['scale', 'normalized'].flatMap((s) => [actName(s), actName(s, 0, 'ln1'), actName(s, 1, 'ln1'), actName(s, 0, 'ln2'), actName(s, 1, 'ln2')]));
    for (const s of shorts) for (const l of [0, 1]) reachable.add(actName(s, l));
    for (const m of Object.values(models)) for (const n of m.hookNames({ withResult: true })) expect(reachable, n).toContain(n);
    expect(positionAxis('blocks.0.attn.W_Q')).toBeUndefined();
    expect(positionAxis('blocks.0.hook_nothing')).toBeUndefined();
  });
});
