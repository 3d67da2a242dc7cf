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
 * Also here with tiny shapes on
 * SwiftShader, so a typo never costs device time:
 *   HEADLENS_WEBGPU_ADAPTER=swiftshader npx vite-node tests/device/fused_check.ts --presets gpt2-small --layers 1 \
 *     --tiny yes --contexts 40 --steps 2 --out /tmp/fc
 * GPU: bundle with ../shared/device/pack.sh as the other scripts here, then e.g.
 *   node fused_check.cjs --presets gpt2-small,pythia-1.4b,llama-7b --layers 4 --contexts 1024,4096 --steps 4 --out $OUT
 * Everything goes into OUT/fused_check.json, rewritten after each case.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { LONG_PRESETS, type LongPreset } from '../../src/bench/long_context.js';
import { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { makeConfig, type HookedConfigInput } from '../../src/model/config.js';
import { KVCache } from '../../src/model/kv_cache.js';
import { optimisations } from '../../src/model/transformer.js';
import { relError } from '../helpers.js';
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
  const rowNames = (n: string) => /attn\.hook_(attn_scores|pattern)$/.test(n);
  const out = path.join(arg('out', process.env.OUT ?? '.'), 'fused_check.json');
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
    const shape = tiny ? { d_model: 64, d_head: 16, n_heads: 4, d_mlp: 128, d_vocab: 500, ...(p.rotary_dim != null ? { rotary_dim: 8 } : {}) } : {};
    const cfg = makeConfig({ ...p, ...shape, n_layers: layers, n_ctx: Math.max(...contexts) + steps + 2 });
    const model = HookedTransformer.random(cfg, { seed: 0, lowRank: 64, std: 0.05 });
    for (const L of contexts) {
      const prompt = Array.from({ length: L }, (_, i) => (i * 7919 + 13) % cfg.d_vocab);
      const run = async (fused: boolean) => {
        optimisations.fusedKernels = fused;
        const cache = new KVCache(cfg.n_layers);
        const logits: Float32Array[] = [];
        const rows: Float32Array[][] = [];
        let rowNamesSeen: string[] = [];
        const tokens: number[] = [];
        const perStep: number[] = [];
        let feed = [prompt];
        try {
          for (let s = 0; s <= steps; s++) {
            const before = programs;
            let out: tf.Tensor;
            if (withRows) {
              const r = model.runWithCache(feed, { kvCache: cache, logits: 'last', names: rowNames, patternRows: 'last' });
              out = r.logits;
              rowNamesSeen = r.cache.keys().sort();
              rows.push(await Promise.all(rowNamesSeen.map(async (k) => (await r.cache.get(k).data()) as Float32Array)));
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
        } finally {
          cache.dispose();
          optimisations.fusedKernels = true;
        }
        return { logits, rows, rowNames: rowNamesSeen, tokens, perStep };
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

runMain(main);
