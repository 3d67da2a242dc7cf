/**
 * `headlens bench --long`: prefill and decoding at long contexts on a real model shape (random rank-64 weights
 * made on the backend, RandomInit.lowRank; nothing downloaded), one prompt at a time, as retrieval-head and needle-in-a-haystack work runs.
 * For each context length L it measures
 *   prefill      one forward of [1, L] tokens, logits of the last position only (ForwardOptions.logits 'last'),
 *                attention sliced by query rows where the scores would be large (attention.ts);
 *   decode       greedy decoding through model.generateAsync with a KV cache after that prompt: the time
 *                between the first decoded token and the last, over the steps between them (the step before,
 *                the first with one new position, also compiles the decoding kernels on a GPU: it is reported
 *                apart as decode_first_step_ms);
 *   decode+rows  the same with every layer's last attention row cached at each step (patternRows 'last'): the
 *                work of Wu et al.'s retrieval score per decoded token;
 *   peak         bytes of tensors alive at once during the prefill, weights excluded (memory.ts), and the
 *                bytes the weights take;
 *   retrieval    with `retrieval`, instead of the above: one retrieval-head scan of every head on one needle trial
 *                of L random tokens, timed end to end (retrieval_scan.ts; the scores of random weights mean nothing).
 * A context that fails (out of memory, a buffer over the device's limits) is reported with its error and the
 * next one still runs. Times are wall-clock on GPUs and CPU time on CPU backends (timing.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { currentBackend, releaseGpuPool } from '../backend/index.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig, type HookedConfigInput } from '../model/config.js';
import { Random } from '../util/random.js';
import { HeadlensError } from '../errors.js';
import { countParams } from '../model/params.js';
import { measurePeak, uniqueBytes } from './memory.js';
import { retrievalBenchTrial, timeRetrievalScan, type RetrievalScanTiming } from './retrieval_scan.js';
import { now, sync } from './timing.js';

/** Real model shapes (the HF configs' numbers); `llama-7b` is Llama-2-7B's; `llama-tiny`, Llama's architecture at toy size, for tests. */
export const LONG_PRESETS = {
  'gpt2-small': { model_name: 'gpt2-small-random', original_architecture: 'GPT2LMHeadModel', d_model: 768, n_layers: 12, n_heads: 12, d_head: 64, d_mlp: 3072, d_vocab: 50257, n_ctx: 1024, act_fn: 'gelu_new', tie_word_embeddings: true },
  'pythia-1.4b': {
    model_name: 'pythia-1.4b-random', original_architecture: 'GPTNeoXForCausalLM', d_model: 2048, n_layers: 24, n_heads: 16, d_head: 128, d_mlp: 8192, d_vocab: 50304, n_ctx: 2048,
    act_fn: 'gelu', normalization_type: 'LN', positional_embedding_type: 'rotary', rotary_dim: 32, rotary_base: 10000, parallel_attn_mlp: true,
  },
  'llama-7b': {
    model_name: 'llama-7b-random', original_architecture: 'LlamaForCausalLM', d_model: 4096, n_layers: 32, n_heads: 32, d_head: 128, d_mlp: 11008, d_vocab: 32000, n_ctx: 4096,
    act_fn: 'silu', gated_mlp: true, normalization_type: 'RMS', eps: 1e-5, positional_embedding_type: 'rotary', rotary_dim: 128, rotary_base: 10000,
    attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
  },
  'llama-tiny': {
    model_name: 'llama-tiny-random', original_architecture: 'LlamaForCausalLM', d_model: 64, n_layers: 2, n_heads: 4, d_head: 16, d_mlp: 128, d_vocab: 512, n_ctx: 256,
    act_fn: 'silu', gated_mlp: true, normalization_type: 'RMS', eps: 1e-5, positional_embedding_type: 'rotary', rotary_dim: 16, rotary_base: 10000,
    attn_qkv_bias: false, attn_out_bias: false, mlp_bias: false,
  },
} satisfies Record<string, HookedConfigInput>;

export type LongPreset = keyof typeof LONG_PRESETS;

/** What a 32-bit WebAssembly memory can address; the wasm backend's tensors live there. */
const WASM_BYTES = 4 * 2 ** 30;

export interface LongBenchOptions {
  preset?: LongPreset;
  /** Prompt lengths (default 1024, 4096, 16384). n_ctx is raised to the longest (random weights: no trained limit). */
  contexts?: number[];
  /** Decoding steps timed after each prompt (default 16). */
  decodeTokens?: number;
  seed?: number;
  /**
   * '16bit': the random weights rounded to bf16 and kept packed on the GPU (Transformer.useWeights16; webgpu only),
   * as an F16/BF16 checkpoint loaded with weights: '16bit' would be. Default 'float32'.
   */
  weights?: 'float32' | '16bit';
  /** Time one retrieval-head scan of every head per context instead of prefill and decoding (retrieval_scan.ts). */
  retrieval?: boolean;
  /** Tokens the retrieval scan decodes (default 50, Wu et al.'s script). */
  retrievalSteps?: number;
  log?: (line: string) => void;
}

export interface LongBenchRow {
  context: number;
  prefill_ms?: number;
  prefill_tokens_per_s?: number;
  prefill_peak_bytes?: number;
  decode_ms_per_token?: number;
  decode_tokens_per_s?: number;
  /** The first decoding step (one new position after the prompt): on a GPU it also compiles the decoding kernels. */
  decode_first_step_ms?: number;
  decode_rows_ms_per_token?: number;
  decode_rows_tokens_per_s?: number;
  /** Programs the webgpu backend dispatched per decoded token (the decode without cached rows); webgpu only. */
  decode_programs_per_token?: number;
  /** The same for the decode with attention rows cached (webgpu only). */
  decode_rows_programs_per_token?: number;
  /** With `retrieval`: the timed scan of every head (its scores are meaningless: random weights). */
  retrieval?: RetrievalScanTiming;
  /** Set when this context could not run; the fields above it reached are kept. */
  error?: string;
}

export interface LongBenchResult {
  backend: string;
  backend_reason: string;
  preset: LongPreset;
  model: { n_layers: number; d_model: number; n_heads: number; d_mlp: number; d_vocab: number; parameters: number };
  /** Bytes the model holds on the backend: float32 parameters (and, with 16-bit weights, the packed ones). */
  weight_bytes: number;
  weights: 'float32' | '16bit';
  decode_tokens: number;
  clock: 'wall' | 'cpu';
  /** Whether the rows are retrieval scans (opts.retrieval). */
  retrieval?: boolean;
  rows: LongBenchRow[];
  total_s: number;
}

export async function runLongBench(opts: LongBenchOptions = {}): Promise<LongBenchResult> {
  const started = performance.now();
  const preset = opts.preset ?? 'gpt2-small';
  const contexts = opts.contexts ?? [1024, 4096, 16384];
  const decodeTokens = opts.decodeTokens ?? 16;
  if (!(Number.isInteger(decodeTokens) && decodeTokens >= 2)) {
    throw new HeadlensError(`bench --long: --decode ${decodeTokens} is too few: the first decoding step is timed apart, so the rate needs at least 2 tokens`, 'pass --decode 2 or more (default 16)');
  }
  const log = opts.log ?? (() => {});
  const p = LONG_PRESETS[preset];
  const retrievalSteps = opts.retrievalSteps ?? 50;
  if (!(Number.isInteger(retrievalSteps) && retrievalSteps >= 1)) throw new HeadlensError(`bench --long: retrievalSteps ${retrievalSteps} must be an integer ≥ 1`);
  const longest = Math.max(...contexts) + (opts.retrieval ? retrievalSteps : decodeTokens) + 1;
  const cfg = makeConfig({ ...p, n_ctx: Math.max(p.n_ctx, longest) });
  const weights = opts.weights ?? 'float32';
  if (weights === '16bit' && tf.getBackend() !== 'webgpu') {
    throw new HeadlensError(`bench --long --weights 16bit runs on webgpu only (running: ${tf.getBackend()})`, 'add --backend webgpu, or drop --weights');
  }
  const needed = 4 * countParams(cfg);
  if (['wasm', 'cpu'].includes(tf.getBackend()) && needed > WASM_BYTES) {
    throw new HeadlensError(
      `the ${preset} shape needs ${(needed / 2 ** 30).toFixed(1)} GiB of float32 weights; the ${tf.getBackend()} backend holds at most ${WASM_BYTES / 2 ** 30} GiB (a 32-bit WebAssembly memory)`,
      'run it on --backend webgpu (or tensorflow), or bench a smaller preset',
    );
  }
  log(`bench --long: making ${preset} (random weights) on ${currentBackend()?.name}`);
  // rank-64 random weights drawn on the backend (RandomInit.lowRank): a full draw in JavaScript would take minutes
  const model = HookedTransformer.random(cfg, { seed: opts.seed ?? 0, lowRank: 64 });
  if (weights === '16bit') {
    // rounded to bf16, one weight at a time (what a BF16 checkpoint would hold)
    model.useWeights16('bf16');
    log(`bench --long: linear weights rounded to bf16 and kept packed on the GPU`);
  }
  // the fused QKV weights are made on first use: once here, so no context's peak counts them
  model.runWithHooks([[0]], { logits: 'last' }).dispose();
  const weightBytes = uniqueBytes(model.storedTensors());
  log(`bench --long: ${model.nParams.toLocaleString('en-US')} parameters, ${(weightBytes / 2 ** 30).toFixed(1)} GiB of weights`);
  const rng = new Random(opts.seed ?? 1);
  const rows: LongBenchRow[] = [];
  try {
    for (const L of contexts) {
      // the pools of the last context's shapes go back to the device first (webgpu_guard.ts)
      const freed = releaseGpuPool();
      if (freed) log(`bench --long: ${(freed / 2 ** 30).toFixed(2)} GiB of pooled GPU buffers released`);
      const row: LongBenchRow = { context: L };
      rows.push(row);
      const prompt = [Array.from({ length: L }, () => rng.int(0, cfg.d_vocab))];
      try {
        if (opts.retrieval) {
          const seed = (opts.seed ?? 1) + L;
          row.retrieval = await timeRetrievalScan(model, retrievalBenchTrial(cfg.d_vocab, L, seed), retrievalSteps, seed);
          const t = row.retrieval;
          log(`bench --long: ${L} tokens: retrieval scan of ${t.heads} heads, ${t.decode_steps} steps: ${t.total_s.toFixed(2)} s (first step ${t.first_step_s.toFixed(2)} s, then ${t.ms_per_step?.toFixed(1) ?? '—'} ms/step); ${t.note}`);
          continue;
        }
        // prefill: once to compile the shaders for this shape (GPU) and measure its peak, then timed
        const first = measurePeak(() => model.runWithHooks(prompt, { logits: 'last' }));
        row.prefill_peak_bytes = first.peak;
        await sync(first.out);
        first.out.dispose();
        const t0 = now();
        const out = model.runWithHooks(prompt, { logits: 'last' });
        await sync(out);
        out.dispose();
        row.prefill_ms = now() - t0;
        row.prefill_tokens_per_s = (L / row.prefill_ms) * 1000;
        log(`bench --long: ${L} tokens: prefill ${row.prefill_ms.toFixed(0)} ms (${row.prefill_tokens_per_s.toFixed(0)} tokens/s), peak ${(first.peak / 2 ** 30).toFixed(2)} GiB above the weights`);
        const decode = await decodeRun(model, prompt, decodeTokens, false);
        row.decode_ms_per_token = decode.ms;
        row.decode_first_step_ms = decode.firstStepMs;
        if (decode.programs !== undefined) row.decode_programs_per_token = decode.programs;
        row.decode_tokens_per_s = 1000 / row.decode_ms_per_token;
        log(`bench --long: ${L} tokens: decode ${row.decode_ms_per_token.toFixed(1)} ms/token (${row.decode_tokens_per_s.toFixed(1)} tokens/s; the first step, which compiles the decoding kernels, ${decode.firstStepMs.toFixed(0)} ms)`);
        const withRows = await decodeRun(model, prompt, decodeTokens, true);
        row.decode_rows_ms_per_token = withRows.ms;
        row.decode_rows_tokens_per_s = 1000 / row.decode_rows_ms_per_token;
        if (withRows.programs !== undefined) row.decode_rows_programs_per_token = withRows.programs;
        log(`bench --long: ${L} tokens: decode with every layer's last attention row cached ${row.decode_rows_ms_per_token.toFixed(1)} ms/token${withRows.programs === undefined ? '' : `, ${withRows.programs.toFixed(0)} programs/token`}`);
      } catch (e) {
        row.error = (e as Error).message.split('\n')[0];
        log(`bench --long: ${L} tokens: ${row.error}`);
      }
    }
  } finally {
    model.dispose();
  }
  const b = currentBackend();
  return {
    backend: b?.name ?? tf.getBackend(),
    backend_reason: b?.reason ?? '',
    preset,
    model: { n_layers: cfg.n_layers, d_model: cfg.d_model, n_heads: cfg.n_heads, d_mlp: cfg.d_mlp ?? 0, d_vocab: cfg.d_vocab, parameters: model.nParams },
    weight_bytes: weightBytes,
    weights,
    decode_tokens: opts.retrieval ? retrievalSteps : decodeTokens,
    ...(opts.retrieval ? { retrieval: true } : {}),
    clock: ['wasm', 'cpu'].includes(tf.getBackend()) ? 'cpu' : 'wall',
    rows,
    total_s: (performance.now() - started) / 1000,
  };
}

/**
 * Milliseconds per decoded token after `prompt`, through generateAsync: the clock at each step's token (read
 * back, so the GPU has finished that step). Step 0 runs the prompt; step 1, the first with one new position,
 * also compiles the decoding kernels on a GPU (once: 0.16–0.42 s for the llama-7b shape on an H100), so the rate
 * is taken from step 1's token to the last (`steps` − 1 steps) and step 1 is returned apart.
 * On webgpu also the programs dispatched per token over the same steps (each one costs JavaScript time to encode:
 * issue 18), counted by wrapping the backend's runWebGPUProgram for the run.
 */
async function decodeRun(model: HookedTransformer, prompt: number[][], steps: number, rows: boolean): Promise<{ ms: number; firstStepMs: number; programs?: number }> {
  const at: number[] = [];
  const dispatched: number[] = [];
  const be = tf.backend() as unknown as { runWebGPUProgram?: (...a: unknown[]) => unknown };
  const original = be.runWebGPUProgram;
  let programs = 0;
  if (original) {
    be.runWebGPUProgram = function (this: unknown, ...a: unknown[]) {
      programs++;
      return original.apply(this, a);
    };
  }
  try {
    await model.generateAsync(prompt, {
      maxNewTokens: steps + 1,
      onStep: () => void (at.push(now()), dispatched.push(programs)),
      ...(rows ? { names: (n: string) => n.endsWith('attn.hook_pattern'), patternRows: 'last' as const } : {}),
    });
  } finally {
    if (original) be.runWebGPUProgram = original;
  }
  if (at.length < 3) throw new Error(`decoding stopped after ${at.length} step(s); the rate needs 3`);
  const n = at.length - 1;
  return { ms: (at[n] - at[1]) / (n - 1), firstStepMs: at[1] - at[0], ...(original ? { programs: (dispatched[n] - dispatched[1]) / (n - 1) } : {}) };
}
