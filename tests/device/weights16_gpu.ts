/**
 * 16-bit weights on the GPU machine (issue 18 §4): the packed matmul (src/backend/webgpu_kernels/matmul16.ts) at
 * llama-7b's decode shapes, against tf.matMul of the same weights unpacked to float32 (max relative error), and
 * the time of each (best of --trials blocks of --reps calls, each block ended by one readback), so the README can
 * say what 16-bit weights cost or save per decode product. Not a test: timings are measurements.
 * Here, on SwiftShader with small shapes, so a typo never costs device time:
 *   HEADLENS_WEBGPU_ADAPTER=swiftshader npx vite-node tests/device/weights16_gpu.ts -- --shapes 64x96,300x1000 --rows 1,4 --reps 2 --trials 1 --out /tmp
 * GPU: pack it as the other tests/device programs (../shared/device/pack.sh tests/device/weights16_gpu.ts …) and run
 * `bash .device/boot.sh --out $OUT` with its defaults (K×N of 4096×12288 (fused QKV), 4096×4096 (W_O), 4096×11008
 * (gate/up), 11008×4096 (down), 4096×32000 (unembedding); rows 1, 4, 8). Writes OUT/weights16_gpu.json.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { matMul16, pack16, unpack16, type Format16 } from '../../src/backend/webgpu_kernels/matmul16.js';
import { runMain } from './run_main.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const outDir = arg('out', process.env.OUT ?? '.');
  const shapes = arg('shapes', '4096x12288,4096x4096,4096x11008,11008x4096,4096x32000').split(',').map((s) => s.split('x').map(Number) as [number, number]);
  const rowsList = arg('rows', '1,4,8').split(',').map(Number);
  const reps = Number(arg('reps', '20'));
  const trials = Number(arg('trials', '5'));
  const format = arg('format', 'bf16') as Format16;
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.reason);
  const results: Record<string, unknown>[] = [];
  const save = () => writeFileSync(path.join(outDir, 'weights16_gpu.json'), JSON.stringify({ backend: choice.reason, format, reps, trials, results }, null, 1));

  /** Best ms per call over `trials` blocks of `reps` calls, each block ended by one readback. */
  const time = async (f: () => tf.Tensor): Promise<number> => {
    (await f().data()) && undefined; // compile the shaders first
    let best = Infinity;
    for (let t = 0; t < trials; t++) {
      const t0 = performance.now();
      let last: tf.Tensor | undefined;
      for (let r = 0; r < reps; r++) {
        last?.dispose();
        last = f();
      }
      await last!.data();
      last!.dispose();
      best = Math.min(best, (performance.now() - t0) / reps);
    }
    return best;
  };

  for (const [K, N] of shapes) {
    // random weights drawn on the GPU as a rank-64 product (tfjs draws normals in JavaScript, too slow for 131M values)
    const W = tf.tidy(() => tf.matMul(tf.randomNormal([K, 64], 0, 1, 'float32', 1), tf.randomNormal([64, N], 0, 0.02 / 8, 'float32', 2))) as tf.Tensor2D;
    const P = pack16(W, format);
    W.dispose();
    const Wf = unpack16(P, N, format); // the same values in float32: the reference and the float32 path
    const bias = tf.randomNormal([N], 0, 0.1, 'float32', 3);
    for (const M of rowsList) {
      const x = tf.randomNormal([M, K], 0, 1, 'float32', M) as tf.Tensor2D;
      const got = matMul16(x, P, bias, N, format);
      const want = tf.tidy(() => tf.add(tf.matMul(x, Wf), bias));
      const [g, w] = [(await got.data()) as Float32Array, (await want.data()) as Float32Array];
      let err = 0;
      let scale = 0;
      for (let i = 0; i < g.length; i++) {
        err = Math.max(err, Math.abs(g[i] - w[i]));
        scale = Math.max(scale, Math.abs(w[i]));
      }
      tf.dispose([got, want]);
      const ms16 = await time(() => matMul16(x, P, bias, N, format));
      const ms32 = await time(() => tf.tidy(() => tf.add(tf.matMul(x, Wf), bias)));
      const ms32fused = await time(() => tf.fused.matMul({ a: x, b: Wf, bias }));
      const row = {
        K, N, M,
        max_rel_err: err / scale,
        ms_16bit: ms16,
        ms_f32_matmul_add: ms32,
        ms_f32_fused: ms32fused,
        // bytes of weights read per call over the time: what a bandwidth-bound product reaches
        gb_per_s_16bit: (K * N * 2) / (ms16 / 1000) / 1e9,
        gb_per_s_f32_fused: (K * N * 4) / (ms32fused / 1000) / 1e9,
      };
      results.push(row);
      console.log(JSON.stringify(row));
      save();
      x.dispose();
    }
    tf.dispose([P, Wf, bias]);
  }
  save();
  console.log('wrote', path.join(outDir, 'weights16_gpu.json'));
}

runMain(main);
