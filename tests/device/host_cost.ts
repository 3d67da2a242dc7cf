/**
 * Host time per dispatch of single-token decoding steps, lean dispatch on or off (src/backend/webgpu_dispatch.ts):
 * a 16-layer toy Llama-family model (d_model 64), so the GPU's own work is small and the host's cost per program is
 * what the step's enqueue time shows. Prints programs a step, enqueue ms a step, and µs a program.
 *   LEAN=0|1 (default 1), N steps (default 150; the first 20 are left out as warm-up).
 * Runs wherever initBackend finds WebGPU; without a GPU: HEADLENS_WEBGPU_ADAPTER=swiftshader. Bundle as the other
 * device programs (esbuild, tests/device/README in ../shared/device) or run through vite-node.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, webgpuHostTuning } from '../../src/backend/index.js';
import { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { makeConfig } from '../../src/model/config.js';
import { KVCache } from '../../src/model/kv_cache.js';

async function main() {
  const choice = await initBackend({ backend: 'webgpu' });
  if (process.env.LEAN === '0') webgpuHostTuning.leanDispatch = false;
  const cfg = makeConfig({ n_layers: 16, d_model: 64, n_heads: 4, d_head: 16, d_mlp: 256, d_vocab: 500, n_ctx: 512, act_fn: 'silu', normalization_type: 'RMS', positional_embedding_type: 'rotary', gated_mlp: true, n_key_value_heads: 2 } as never);
  const model = HookedTransformer.random(cfg, { seed: 0 });
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: object, ...r: unknown[]) => unknown };
  const run = be.runWebGPUProgram.bind(be);
  let programs = 0;
  be.runWebGPUProgram = (p: object, ...r: unknown[]) => {
    programs++;
    return run(p, ...r);
  };
  const N = Number(process.env.N ?? 150);
  const cache = new KVCache(cfg.n_layers, { capacity: 64 + N + 1 });
  const first = model.runWithHooks([Array.from({ length: 64 }, (_, i) => i % 500)], { kvCache: cache, logits: 'last' });
  await first.data();
  first.dispose();
  let enqueue = 0;
  let step = 0;
  for (let s = 0; s < N; s++) {
    programs = 0;
    const a = performance.now();
    const logits = model.runWithHooks([[s % 500]], { kvCache: cache, logits: 'last' });
    const b = performance.now();
    await logits.data();
    logits.dispose();
    if (s >= 20) {
      enqueue += b - a;
      step += performance.now() - a;
    }
  }
  const n = N - 20;
  console.log(JSON.stringify({ backend: choice.reason, lean: webgpuHostTuning.leanDispatch, programs_per_step: programs, enqueue_ms: enqueue / n, step_ms: step / n, host_us_per_program: (1000 * enqueue) / n / programs }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
