/**
 * The fused WebGPU kernels (src/backend/webgpu_kernels) against the plain path at real shapes, on the GPU machine
 * (issue 18 §2: "every kernel is checked on the GPU machine against the unfused path, 1e-5 relative"). For each
 * preset (random weights of rank 64, n_layers cut to --layers to save device time), a prompt of each --contexts
 * length is run into a KV cache and --steps greedy single-token steps follow, once with optimisations.fusedKernels
 * on and once off; every step's last logits are compared (max |fused − plain| / max |plain|), the chosen tokens
 * must be equal, and the programs each decoding step dispatched are counted both ways. A context past
 * attentionSplits.minKeys (2,048) runs the split attention and its merge. With --rows yes each step also keeps every
 * layer's last attention row (hook_attn_scores and hook_pattern, patternRows 'last', as the retrieval scorer
 * decodes): past minKeys the split pass writes them (fusedAttentionSplitRows), and each step's rows are compared
 * both ways too (rows_rel_diff_per_step; masked scores must be −Infinity in both; attn_scores_worst_per_step and
 * pattern_worst_per_step: each kind apart, the hook point of the largest difference and the largest |value| there).
 * With --reference yes as well, each step's last rows are computed again in float64 here, from the plain run's own q
 * (hook_rot_q, or hook_q without rotary) and keys (the KV cache), and both runs are compared with that
 * (reference_per_step: per kind, the largest relative difference over the layers of fused and of plain). The plain
 * side's difference is its own attention's float32 arithmetic, since the reference starts from its inputs. The fused
 * side is also compared with float64 rows from the same q and its own keys (fused_own_keys; its q cannot be kept
 * without changing its path), and keys_rel_diff_per_layer says how far its keys are from the plain run's.
 * --save DIR (with --rows yes) writes each preset's model as transformers reads it to DIR/<preset>/, and beside it
 * rows-<context>.safetensors: the tokens fed and every step's kept rows of both runs; tests/device/rows_reference.py
 * then compares both runs' patterns with transformers' in float64 on the same tokens.
 * --std sets the random weights' spread (default 0.05). --shape key=value,… overrides the preset's numbers (e.g. d_model=256,n_heads=2,d_head=128,n_key_value_heads=2).
 * Also here with tiny shapes on
 * SwiftShader, so a typo never costs device time:
 *   HEADLENS_WEBGPU_ADAPTER=swiftshader npx vite-node tests/device/fused_check.ts --presets gpt2-small --layers 1 \
 *     --tiny yes --contexts 40 --steps 2 --out /tmp/fc
 * GPU: bundle with ../shared/device/pack.sh as the other scripts here, then e.g.
 *   node fused_check.cjs --presets gpt2-small,pythia-1.4b,llama-7b --layers 4 --contexts 1024,4096 --steps 4 --out $OUT
 * Everything goes into OUT/fused_check.json, rewritten after each case.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { LONG_PRESETS, type LongPreset } from '../../src/bench/long_context.js';
import { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { makeConfig, type HookedConfigInput } from '../../src/model/config.js';
import { KVCache } from '../../src/model/kv_cache.js';
import { optimisations } from '../../src/model/transformer.js';
import { saveModel } from '../../src/loading/save.js';
import { encodeSafetensors } from '../../src/util/safetensors.js';
import { attention64, relError } from '../helpers.js';
import { runMain } from './run_main.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const presets = arg('presets', 'gpt2-small,pythia-1.4b,llama-7b').split(',') as LongPreset[];
  const layers = Number(arg('layers', '4'));
  const contexts = arg('contexts', '1024,4096').split(',').map(Number);
  const steps = Number(arg('steps', '4'));
  const tiny = arg('tiny', 'no') === 'yes';
  const withRows = arg('rows', 'no') === 'yes';
  const withReference = arg('reference', 'no') === 'yes';
  if (withReference && !withRows) throw new Error('--reference yes compares the kept rows: give --rows yes too');
  const rowNames = (n: string) => /attn\.hook_(attn_scores|pattern)$/.test(n);
  const saveDir = arg('save', '');
  if (saveDir && !withRows) throw new Error('--save writes the kept rows: give --rows yes too');
  const out = path.join(arg('out', process.env.OUT ?? '.'), 'fused_check.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.reason);
  const be = tf.backend() as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown };
  const original = be.runWebGPUProgram;
  let programs = 0;
  be.runWebGPUProgram = function (this: unknown, ...a: unknown[]) {
    programs++;
    return original.apply(this, a);
  };
  const results: Record<string, unknown>[] = [];
  for (const name of presets) {
    const p: HookedConfigInput = LONG_PRESETS[name];
    // --shape d_model=256,n_heads=2,d_head=128,…: a preset's family at a shape of one's own (numbers only)
    const own = Object.fromEntries(arg('shape', '').split(',').filter(Boolean).map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
    const shape = { ...(tiny ? { d_model: 64, d_head: 16, n_heads: 4, d_mlp: 128, d_vocab: 500, ...(p.rotary_dim != null ? { rotary_dim: p.rotary_dim === p.d_head ? 16 : 8 } : {}) } : {}), ...own };
    const cfg = makeConfig({ ...p, ...shape, n_layers: layers, n_ctx: Math.max(...contexts) + steps + 2 });
    const model = HookedTransformer.random(cfg, { seed: 0, lowRank: 64, std: Number(arg('std', '0.05')) });
    if (withReference && (cfg.sliding_window !== null || cfg.scale_attn_by_inverse_layer_idx)) {
      throw new Error(`--reference: ${name} has a sliding window or a scale by layer, which the float64 rows here do not apply`);
    }
    const qName = cfg.positional_embedding_type === 'rotary' ? 'attn.hook_rot_q' : 'attn.hook_q';
    // the model as transformers reads it (float32, shards under 2 GB), for tests/device/rows_reference.py
    if (saveDir) await saveModel(model, path.join(saveDir, name), { maxShardBytes: 2 ** 30 });
    for (const L of contexts) {
      const prompt = Array.from({ length: L }, (_, i) => (i * 7919 + 13) % cfg.d_vocab);
      const run = async (fused: boolean) => {
        optimisations.fusedKernels = fused;
        const cache = new KVCache(cfg.n_layers);
        const logits: Float32Array[] = [];
        const rows: Float32Array[][] = [];
        /** with --reference: per step, per layer, the plain run's last q row [head, d_head] (rotated) */
        const qLast: Float32Array[][] = [];
        /** with --reference: per layer, the keys held after the last step [kv_head, key_pos, d_head] (both runs) */
        const keys: Float32Array[] = [];
        let rowNamesSeen: string[] = [];
        const tokens: number[] = [];
        const perStep: number[] = [];
        let feed = [prompt];
        try {
          for (let s = 0; s <= steps; s++) {
            const before = programs;
            let out: tf.Tensor;
            if (withRows) {
              // the plain run also keeps q for the reference (listening at q sends a fused run down another path)
              const ref = withReference && !fused;
              const names = ref ? (n: string) => rowNames(n) || n.endsWith(qName) : rowNames;
              const r = model.runWithCache(feed, { kvCache: cache, logits: 'last', names, patternRows: 'last' });
              out = r.logits;
              rowNamesSeen = r.cache.keys().filter(rowNames).sort();
              rows.push(await Promise.all(rowNamesSeen.map(async (k) => (await r.cache.get(k).data()) as Float32Array)));
              if (ref) {
                qLast.push(await Promise.all(Array.from({ length: cfg.n_layers }, async (_, l) => {
                  const q = r.cache.get(`blocks.${l}.${qName}`); // [1, pos, head, d_head]
                  const last = q.slice([0, q.shape[1]! - 1, 0, 0], [1, 1, -1, -1]);
                  try {
                    return (await last.data()) as Float32Array;
                  } finally {
                    last.dispose();
                  }
                })));
              }
              r.cache.dispose();
            } else out = model.runWithHooks(feed, { kvCache: cache, logits: 'last' });
            if (s > 0) perStep.push(programs - before);
            const last = (await out.data()) as Float32Array;
            out.dispose();
            logits.push(last.slice());
            let best = 0;
            for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i;
            tokens.push(best);
            feed = [[best]];
          }
          if (withReference) {
            // the cache only appends, so the last step's keys hold every earlier step's as a prefix
            for (let l = 0; l < cfg.n_layers; l++) {
              const k = cache.past(l)!.k; // [1, kv_head, key_pos, d_head]: the plain run's own, a slab's copy
              keys.push((await k.data()) as Float32Array);
              if (cache.mode === 'slab') k.dispose();
            }
          }
        } finally {
          cache.dispose();
          optimisations.fusedKernels = true;
        }
        return { logits, rows, rowNames: rowNamesSeen, tokens, perStep, qLast, keys };
      };
      const row: Record<string, unknown> = { preset: name, n_layers: layers, context: L, rows: withRows };
      try {
        const fused = await run(true);
        const plain = await run(false);
        row.tokens_equal = fused.tokens.every((t, i) => t === plain.tokens[i]);
        row.rel_diff_per_step = fused.logits.map((a, s) => relError(a, plain.logits[s]));
        if (withRows) {
          row.rows_rel_diff_per_step = fused.rows.map((names, s) => Math.max(...names.map((a, i) => relError(a, plain.rows[s][i]))));
          // the same apart for the scores and the pattern, with the hook point of each step's largest difference and
          // the largest |value| it is relative to
          for (const kind of ['attn_scores', 'pattern']) {
            row[`${kind}_worst_per_step`] = fused.rows.map((names, s) => {
              let worst = { rel: 0, at: '', max_abs_value: 0 };
              names.forEach((a, i) => {
                if (!fused.rowNames[i].endsWith(`hook_${kind}`)) return;
                const e = relError(a, plain.rows[s][i]);
                if (e >= worst.rel) worst = { rel: e, at: fused.rowNames[i], max_abs_value: Math.max(...Array.from(plain.rows[s][i]).filter(Number.isFinite).map(Math.abs)) };
              });
              return worst;
            });
          }
        }
        if (withReference) {
          // per step and kind, the largest relative difference over the layers from the float64 rows: fused and
          // plain against those from the plain run's q and keys; fused also against those from the same q and the
          // fused run's own keys (what remains is the fused attention's arithmetic, and the q it computed itself)
          const layerOf = (n: string) => Number(/^blocks\.(\d+)\./.exec(n)![1]);
          const held = plain.keys[0].length / (cfg.n_key_value_heads * cfg.d_head);
          const worst = (run: typeof fused, s: number, kind: 'attn_scores' | 'pattern', ref: { scores: Float64Array; pattern: Float64Array }[]) =>
            Math.max(...run.rowNames.map((n, i) => (n.endsWith(`hook_${kind}`) ? relError(run.rows[s][i], ref[layerOf(n)][kind === 'pattern' ? 'pattern' : 'scores']) : 0)));
          row.reference_per_step = plain.qLast.map((perLayer, s) => {
            const refPlain = perLayer.map((q, l) => lastRow64(q, plain.keys[l], cfg, L + s, held));
            const refFusedKeys = perLayer.map((q, l) => lastRow64(q, fused.keys[l], cfg, L + s, held));
            return {
              scores: { fused: worst(fused, s, 'attn_scores', refPlain), plain: worst(plain, s, 'attn_scores', refPlain), fused_own_keys: worst(fused, s, 'attn_scores', refFusedKeys) },
              pattern: { fused: worst(fused, s, 'pattern', refPlain), plain: worst(plain, s, 'pattern', refPlain), fused_own_keys: worst(fused, s, 'pattern', refFusedKeys) },
            };
          });
          // how far the fused run's keys are from the plain run's, layer by layer (every position)
          row.keys_rel_diff_per_layer = fused.keys.map((k, l) => relError(k, plain.keys[l]));
        }
        if (saveDir) {
          // the tokens fed (the prompt, then each step's greedy token but the last) and every step's kept rows of
          // both runs, [head, keys] each, beside the saved model
          const tensors: Parameters<typeof encodeSafetensors>[0] = {
            tokens: { dtype: 'I32', shape: [L + steps], data: Int32Array.from([...prompt, ...fused.tokens.slice(0, steps)]) },
          };
          for (const [runName, run] of [['fused', fused], ['plain', plain]] as const)
            run.rows.forEach((names, s) => names.forEach((a, i) => {
              const [, l, kind] = /^blocks\.(\d+)\.attn\.hook_(attn_scores|pattern)$/.exec(run.rowNames[i])!;
              tensors[`${runName}.s${s}.l${l}.${kind}`] = { dtype: 'F32', shape: [cfg.n_heads, L + s], data: a };
            }));
          writeFileSync(path.join(saveDir, name, `rows-${L}.safetensors`), encodeSafetensors(tensors, { context: String(L), steps: String(steps), tokens_equal: String(row.tokens_equal) }));
        }
        row.programs_per_step = { fused: fused.perStep, plain: plain.perStep };
      } catch (e) {
        row.error = (e as Error).message.split('\n')[0];
      }
      console.log(JSON.stringify(row));
      results.push(row);
      writeFileSync(out, JSON.stringify({ backend: choice, results }, null, 1));
    }
    model.dispose();
  }
  console.log('wrote', out);
}

/**
 * The last query row's scores and pattern, [head, key] in float64 (attention64), from q [head, d_head] (one row,
 * rotated) and the first `keys` of keys [kv_head, held, d_head]; the last row sees them all (no window, no padding).
 */
function lastRow64(q: Float32Array, k: Float32Array, cfg: { n_heads: number; n_key_value_heads: number; d_head: number; attn_scale: number }, keys: number, held: number): { scores: Float64Array; pattern: Float64Array } {
  const { n_heads: heads, n_key_value_heads: kvHeads, d_head: E } = cfg;
  const out = { scores: new Float64Array(heads * keys), pattern: new Float64Array(heads * keys) };
  attention64({ batch: 1, rows: 1, keys, heads, kvHeads, dHead: E, window: null }, (_b, _r, h, e) => q[h * E + e], (_b, t, g, e) => k[(g * held + t) * E + e], undefined, cfg.attn_scale, out);
  return out;
}

runMain(main);
