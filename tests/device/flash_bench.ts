/**
 * Prefill attention at llama-7b's shape (32 heads, d_head 128, causal, rows = keys = --lengths) on the GPU machine:
 * the tiled flash-attention kernel (src/backend/webgpu_kernels/flash_attention.ts) against the matmul path that long
 * prefills took before it (src/model/attention.ts `sliced`: per slice of query rows of at most
 * attentionSlicing.maxBytes of scores, q·kᵀ / scale + causal rows, softmax, ·V, GQA by repeating heads). Both read
 * q, k and v as the fused path has them, out of one [pos, 3·32·128] QKV matrix (random, N(0, 1)); their z must agree
 * within 1e-4 relative (max |flash − matmul| / max |matmul|), else the row says so and the time is not reported as
 * a result. Times are wall time per call (after one untimed call that compiles the shaders), over --reps calls
 * ended by a 1-value readback; the matmul path's includes its transposes, mask rows and concat, as in the forward.
 * With --crossover yes it also times flash against the per-row kernel (fusedAttention) for a few query rows after a
 * --crossover-keys cache: the numbers flashAttention.minRows should come from.
 *
 * Checked here with tiny shapes on SwiftShader (speed means nothing there):
 *   HEADLENS_WEBGPU_ADAPTER=swiftshader npx vite-node tests/device/flash_bench.ts --lengths 96 --heads 2 --reps 1 \
 *     --crossover-keys 128 --crossover-rows 16,64 --out /tmp/fb
 * GPU: from the project root, `../shared/device/pack.sh tests/device/flash_bench.ts`, then the device tool with
 * carry [".device"] and the command `bash .device/boot.sh --out $OUT` (defaults: lengths 1024,4096,16384,
 * reps 3, tile auto; --tile 32|64 forces a tile). Writes OUT/flash_bench.json after each row.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { flashAttention, flashAttentionZ, fusedAttention, type DecodeAttentionOptions, type HeadView } from '../../src/backend/webgpu_kernels/index.js';
import { attentionSlicing } from '../../src/model/attention.js';
import { causalMaskRows } from '../../src/model/transformer.js';
import { runMain } from './run_main.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** The fused path's views of q, k, v in one [batch·pos, (head + 2·kv_head)·d_head] QKV matrix. */
function views(qkv: tf.Tensor, pos: number, heads: number, kvHeads: number, e: number): [HeadView, HeadView, HeadView] {
  const width = (heads + 2 * kvHeads) * e;
  const strides: [number, number, number] = [pos * width, width, e];
  return [
    { tensor: qkv, offset: 0, strides },
    { tensor: qkv, offset: heads * e, strides },
    { tensor: qkv, offset: (heads + kvHeads) * e, strides },
  ];
}

/** The matmul path of attention.ts's `sliced` (no padding, no window), from the same QKV matrix: z [1, pos, head, d_head]. */
function matmulPath(qkv: tf.Tensor2D, pos: number, heads: number, kvHeads: number, e: number, scale: number): tf.Tensor4D {
  const [qf, kf, vf] = tf.split(qkv, [heads * e, kvHeads * e, kvHeads * e], 1);
  const qh = tf.tidy(() => qf.reshape([1, pos, heads, e]).transpose([0, 2, 1, 3])) as tf.Tensor4D; // [1, head, pos, d_head]
  const rep = (t: tf.Tensor) =>
    tf.tidy(() => {
      const x = t.reshape([1, pos, kvHeads, e]).transpose([0, 2, 1, 3]);
      if (heads === kvHeads) return x;
      return tf.gather(x, tf.tensor1d(Array.from({ length: heads }, (_, h) => Math.floor(h / (heads / kvHeads))), 'int32'), 1);
    }) as tf.Tensor4D;
  const [kh, vh] = [rep(kf), rep(vf)];
  tf.dispose([qf, kf, vf]);
  const per = Math.max(1, Math.floor(attentionSlicing.maxBytes / (heads * pos * 4)));
  const parts: tf.Tensor4D[] = [];
  try {
    for (let r0 = 0; r0 < pos; r0 += per) {
      const n = Math.min(per, pos - r0);
      const rows = Array.from({ length: n }, (_, i) => r0 + i);
      parts.push(
        tf.tidy(() => {
          const s = tf.matMul(qh.slice([0, 0, r0, 0], [1, heads, n, e]), kh, false, true).div(scale).add(causalMaskRows(rows, pos, null));
          return tf.matMul(tf.softmax(s, -1), vh) as tf.Tensor4D; // [1, head, rows, d_head]
        }),
      );
    }
    return tf.tidy(() => tf.concat(parts, 2).transpose([0, 2, 1, 3])) as tf.Tensor4D;
  } finally {
    tf.dispose([qh, kh, vh, ...parts]);
  }
}

/** Wall ms per call of f over `reps` calls after one untimed call; the queue drained by a one-value readback. */
async function timed(f: () => tf.Tensor, reps: number): Promise<{ ms: number; out: tf.Tensor }> {
  const sync = async (t: tf.Tensor) => {
    const one = tf.tidy(() => t.reshape([-1]).slice([0], [1]));
    await one.data();
    one.dispose();
  };
  let out = f();
  await sync(out);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    out.dispose();
    out = f();
  }
  await sync(out);
  return { ms: (performance.now() - t0) / Math.max(1, reps), out };
}

async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [d, m] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))]);
  const [dv, mv] = [(await d.data())[0], (await m.data())[0]];
  tf.dispose([d, m]);
  return dv / mv;
}

async function main(): Promise<void> {
  const lengths = arg('lengths', '1024,4096,16384').split(',').map(Number);
  const heads = Number(arg('heads', '32'));
  const kvHeads = Number(arg('kv-heads', String(heads)));
  const e = Number(arg('d-head', '128'));
  const reps = Number(arg('reps', '3'));
  const tile = arg('tile', 'auto');
  flashAttention.tile = tile === 'auto' ? 'auto' : (Number(tile) as 32 | 64);
  const out = path.join(arg('out', process.env.OUT ?? '.'), 'flash_bench.json');
  const choice = await initBackend({ backend: 'webgpu' });
  console.log('backend', choice.reason);
  const limits = (tf.backend() as unknown as { device: { limits: { maxComputeWorkgroupStorageSize: number } } }).device.limits;
  const scale = Math.sqrt(e);
  const results: Record<string, unknown>[] = [];
  const save = () => writeFileSync(out, JSON.stringify({ backend: choice.reason, workgroup_storage: limits.maxComputeWorkgroupStorageSize, tile, heads, kvHeads, dHead: e, reps, results }, null, 1));
  for (const L of lengths) {
    const row: Record<string, unknown> = { case: 'prefill', rows: L, keys: L };
    const qkv = tf.randomNormal([L, (heads + 2 * kvHeads) * e], 0, 1, 'float32', 7) as tf.Tensor2D;
    try {
      const [q, k, v] = views(qkv, L, heads, kvHeads, e);
      const o: DecodeAttentionOptions = { batch: 1, rows: L, heads, kvHeads, dHead: e, keys: L, scale, queryStart: 0, window: null };
      const flash = await timed(() => flashAttentionZ(q, k, v, o), reps);
      const plain = await timed(() => matmulPath(qkv, L, heads, kvHeads, e, scale), reps);
      row.rel_diff = await relDiff(flash.out, plain.out);
      row.agree_1e4 = (row.rel_diff as number) < 1e-4;
      row.flash_ms = flash.ms;
      row.matmul_ms = plain.ms;
      row.speedup = plain.ms / flash.ms;
      // causal attention's multiply-adds: two products of (L·(L+1)/2)·d_head per head
      row.flash_tflops = (4 * heads * ((L * (L + 1)) / 2) * e) / (flash.ms * 1e9);
      tf.dispose([flash.out, plain.out]);
    } catch (err) {
      row.error = (err as Error).message.split('\n')[0];
    } finally {
      qkv.dispose();
    }
    console.log(JSON.stringify(row));
    results.push(row);
    save();
  }
  if (arg('crossover', 'yes') === 'yes') {
    const keys = Number(arg('crossover-keys', '4096'));
    for (const rows of arg('crossover-rows', '8,16,32,64,128,256').split(',').map(Number)) {
      const row: Record<string, unknown> = { case: 'crossover', rows, keys };
      // q of the new rows and a KV cache of `keys` positions in the cache layout [2, 1, kv_head, keys, d_head]
      const qt = tf.randomNormal([1, rows, heads, e], 0, 1, 'float32', 8);
      const kv = tf.randomNormal([2, kvHeads, keys, e], 0, 1, 'float32', 9);
      try {
        const q: HeadView = { tensor: qt, offset: 0, strides: [rows * heads * e, heads * e, e] };
        const strides: [number, number, number] = [kvHeads * keys * e, e, keys * e];
        const k: HeadView = { tensor: kv, offset: 0, strides };
        const v: HeadView = { tensor: kv, offset: kvHeads * keys * e, strides };
        const o: DecodeAttentionOptions = { batch: 1, rows, heads, kvHeads, dHead: e, keys, scale, queryStart: keys - rows, window: null };
        const flash = await timed(() => flashAttentionZ(q, k, v, o), reps);
        const perRow = await timed(() => fusedAttention(q, k, v, o), reps);
        row.rel_diff = await relDiff(flash.out, perRow.out);
        row.agree_1e4 = (row.rel_diff as number) < 1e-4;
        row.flash_ms = flash.ms;
        row.per_row_ms = perRow.ms;
        tf.dispose([flash.out, perRow.out]);
      } catch (err) {
        row.error = (err as Error).message.split('\n')[0];
      } finally {
        tf.dispose([qt, kv]);
      }
      console.log(JSON.stringify(row));
      results.push(row);
      save();
    }
  }
  const bad = results.filter((r) => r.error || r.agree_1e4 === false);
  console.log(bad.length ? `DISAGREE OR FAILED: ${bad.length} rows (see ${out})` : 'every row agrees within 1e-4');
  console.log('wrote', out);
}

runMain(main);
