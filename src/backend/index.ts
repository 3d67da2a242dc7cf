/**
 * Choosing and starting a TensorFlow.js backend.
 *
 * `initBackend()` starts the fastest backend that can run here and says which and why:
 *   webgpu      a GPU adapter through WebGPU: natively in a browser, in Node through the `webgpu` package
 *               (Google's Dawn as a Node addon), which must be installed into globalThis before
 *               @tensorflow/tfjs-backend-webgpu is imported, because that module registers itself only
 *               when it finds `navigator.gpu` at import time;
 *   tensorflow  libtensorflow through @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, if the user
 *               installed one (optional peer dependencies: their install step downloads libtensorflow);
 *   wasm        the default on a CPU: XNNPACK kernels, SIMD, one thread (the threaded build does not start in
 *               Node, and patched to start it still runs one thread: README, "A scan across cores and machines");
 *   cpu         plain JavaScript, about 25× slower than wasm: the last resort.
 * `HEADLENS_BACKEND` or an explicit `backend` option forces one; if it cannot start that is an error,
 * never a silent fallback, so a benchmark always runs where its user thinks it does.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import { registerWasmKernels } from './wasm_kernels.js';
import { guardWebGPU, releasePooledBuffers, type WebGPUBackendLike } from './webgpu_guard.js';
import { refuseSyncReads, type SyncReadBackend } from './webgpu_sync_read.js';
import { installLeanDispatch, type DispatchBackend } from './webgpu_dispatch.js';
import { tuneWebGPUHost, webgpuHostTuning, type UploadBackend } from './webgpu_uploads.js';
import { registerTiledMatMul } from './webgpu_kernels/matmul_tiled.js';

export const BACKENDS = ['webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendChoice {
  name: BackendName;
  /** Why this backend: what was found, and why the faster ones were passed over. */
  reason: string;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const require = createRequire(import.meta.url);

let current: BackendChoice | undefined;

/** The backend headlens started, if any. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}

/**
 * Starts a backend. `backend` (or env HEADLENS_BACKEND) forces one; 'auto' or nothing picks the best.
 * Calling it again with the same request returns the running choice.
 */
export async function initBackend(opts: { backend?: BackendName | 'auto' } = {}): Promise<BackendChoice> {
  const requested = opts.backend ?? envBackend() ?? 'auto';
  if (requested !== 'auto' && !(BACKENDS as readonly string[]).includes(requested)) {
    throw new HeadlensError(`'${requested}' is not a backend`, `use one of ${BACKENDS.join(', ')} (or leave it unset to choose automatically)`);
  }
  if (current && (requested === 'auto' || requested === current.name)) return current;
  if (requested !== 'auto') {
    const why = await tryStart(requested);
    if (typeof why !== 'string') {
      throw new HeadlensError(
        `backend '${requested}' cannot start here: ${why.error}`,
        `pick another with --backend or HEADLENS_BACKEND (${BACKENDS.join(', ')}), or leave it unset to choose automatically`,
      );
    }
    current = { name: requested, reason: `asked for ${requested}${why ? `: ${why}` : ''}` };
    return current;
  }
  const skipped: string[] = [];
  for (const name of BACKENDS) {
    const why = await tryStart(name);
    if (typeof why === 'string') {
      current = { name, reason: [why, ...skipped].filter(Boolean).join('; ') };
      return current;
    }
    skipped.push(`${name} skipped: ${why.error}`);
  }
  throw new HeadlensError(`no TensorFlow.js backend could start (${skipped.join('; ')})`);
}

function envBackend(): BackendName | undefined {
  const v = isNode ? process.env.HEADLENS_BACKEND : undefined;
  if (!v || v === 'auto') return undefined;
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new HeadlensError(`HEADLENS_BACKEND='${v}' is not a backend`, `use one of ${BACKENDS.join(', ')} or auto`);
  }
  return v as BackendName;
}

/** Returns a description of what started, or {error} saying why it could not. */
async function tryStart(name: BackendName): Promise<string | { error: string }> {
  try {
    switch (name) {
      case 'webgpu':
        return await startWebGPU();
      case 'tensorflow':
        return await startTensorflow();
      case 'wasm':
        return await startWasm();
      case 'cpu': {
        await setBackend('cpu');
        // tfjs' cpu backend prints a "Hi, looks like you are running TensorFlow.js in Node.js" banner at its first
        // tensor; headlens already says which backend runs and why (info, --backend), so the banner is switched off
        const cpu = tf.backend() as unknown as { firstUse?: boolean };
        if (typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
        return 'pure-JavaScript kernels (slow)';
      }
    }
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

async function setBackend(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

async function startWebGPU(): Promise<string> {
  const g = globalThis as unknown as { navigator?: { gpu?: GPUish } };
  let via = 'navigator.gpu';
  if (!g.navigator?.gpu) {
    if (!isNode) throw new Error('this browser has no navigator.gpu');
    const loader = findVulkanLoader();
    if (!loader) throw new Error('no Vulkan loader (libvulkan.so.1) for Dawn, so no GPU adapter');
    let mod: { create: (o: string[]) => GPUish; globals: Record<string, unknown> };
    try {
      mod = await import('webgpu' as string);
    } catch {
      throw new Error("the optional package 'webgpu' is not installed (npm install webgpu)");
    }
    const software = softwareVulkan();
    const gpu = mod.create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error(software ? `Dawn found no adapter through SwiftShader (${software})` : 'Dawn found no GPU adapter');
    Object.assign(globalThis, mod.globals);
    // Node 21+ defines a read-only navigator; replace it rather than mutate it
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    via = software ? `Dawn (npm 'webgpu') on SwiftShader, a CPU implementation of Vulkan (${software}): for checking WebGPU code, far slower than a GPU` : "Dawn (npm 'webgpu')";
  } else {
    const adapter = await g.navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('navigator.gpu has no adapter');
  }
  if (!tf.findBackendFactory('webgpu')) await import('@tensorflow/tfjs-backend-webgpu');
  await setBackend('webgpu');
  // before the guard, so the guard's size checks wrap the tuned upload (webgpu_uploads.ts)
  const tuning = tuneWebGPUHost(tf.backend() as unknown as UploadBackend);
  if (installLeanDispatch(tf.backend() as unknown as DispatchBackend) && webgpuHostTuning.leanDispatch) tuning.push('lean dispatch');
  // tfjs reads none of WebGPU's errors: a buffer over the device's limits would give silent wrong numbers
  const limits = guardWebGPU(tf.backend() as unknown as WebGPUBackendLike);
  const mib = (b: number) => `${Math.floor(b / 2 ** 20)} MiB`;
  // tfjs' synchronous read needs OffscreenCanvas, which Node lacks (webgpu_sync_read.ts)
  let reads = '';
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined') {
    refuseSyncReads(tf.backend() as unknown as SyncReadBackend);
    reads = '; no synchronous reads in Node: use the async forms';
  }
  // prefill-sized float32 products through headlens' tiled WGSL matmul (webgpu_kernels/matmul_tiled.ts)
  if (registerTiledMatMul()) tuning.push('tiled matmul for ≥ 64 rows, decode matmul for ≤ 8');
  const tuned = tuning.length ? `; ${tuning.join(', ')}` : '';
  return `GPU adapter through ${via} (tensors up to ${mib(Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize))}${reads}${tuned})`;
}

/**
 * HEADLENS_WEBGPU_ADAPTER=swiftshader runs the webgpu backend on SwiftShader, Google's CPU implementation of Vulkan,
 * so WebGPU code (tfjs' kernels, headlens' own, the async reads) can be checked on a machine without a GPU, as the
 * tests do. Chromium ships it (Debian's chromium package: /usr/lib/chromium/vk_swiftshader_icd.json); another ICD
 * file can be named with HEADLENS_VK_ICD. Sets the Vulkan loader's VK_ICD_FILENAMES before Dawn starts; returns the
 * ICD file, or undefined when the variable is not set.
 */
function softwareVulkan(): string | undefined {
  const want = process.env.HEADLENS_WEBGPU_ADAPTER;
  if (!want) return undefined;
  if (want !== 'swiftshader') {
    throw new HeadlensError(`HEADLENS_WEBGPU_ADAPTER='${want}' is not known`, "use 'swiftshader', or unset it to use the GPU");
  }
  const icd = [process.env.HEADLENS_VK_ICD, '/usr/lib/chromium/vk_swiftshader_icd.json', '/usr/lib64/chromium/vk_swiftshader_icd.json'].find(
    (f): f is string => !!f && existsSync(f),
  );
  if (!icd) {
    throw new HeadlensError(
      'HEADLENS_WEBGPU_ADAPTER=swiftshader: no SwiftShader Vulkan ICD file found',
      "install Debian's chromium package (it ships /usr/lib/chromium/vk_swiftshader_icd.json) or name the file with HEADLENS_VK_ICD",
    );
  }
  process.env.VK_ICD_FILENAMES = icd;
  // the Vulkan loader complains on stderr without it; any writable folder will do
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return icd;
}

interface GPUish {
  requestAdapter(): Promise<unknown>;
}

function findVulkanLoader(): string | undefined {
  if (process.platform === 'darwin' || process.platform === 'win32') return 'system';
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
  ];
  return dirs.map((d) => path.join(d, 'libvulkan.so.1')).find((f) => existsSync(f));
}

async function startTensorflow(): Promise<string> {
  if (!isNode) throw new Error('tfjs-node runs only in Node');
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
    } catch {
      continue;
    }
    await import(pkg);
    await setBackend('tensorflow');
    return `libtensorflow through ${pkg}`;
  }
  throw new Error('neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
}

/** Where the wasm binaries are: the installed package, else beside the running script (a bundle). */
export function wasmDir(): string | undefined {
  const candidates: string[] = [];
  if (isNode) {
    try {
      candidates.push(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
    } catch {
      /* bundled: no package to resolve */
    }
    if (process.argv[1]) candidates.push(path.dirname(path.resolve(process.argv[1])));
  }
  return candidates.find((d) => existsSync(path.join(d, 'tfjs-backend-wasm-simd.wasm')));
}

async function startWasm(): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (isNode) {
    const dir = wasmDir();
    if (!dir) throw new Error('the .wasm files of @tensorflow/tfjs-backend-wasm were not found');
    // a file path, not a URL: Emscripten reads it with fs in Node, whatever the working directory
    wasm.setWasmPaths(dir + path.sep);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  registerWasmKernels();
  await keepProcessHandlers(() => setBackend('wasm'));
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return `CPU through WebAssembly (${simd ? 'SIMD' : 'no SIMD'}, one thread)`;
}

/**
 * Runs `start` and then removes the process-wide 'uncaughtException' and 'unhandledRejection' listeners it added.
 * The wasm backend's Emscripten module adds one of each when it loads in Node, and both rethrow. A listener that
 * rethrows kills the process at any stray rejection or error thrown in a callback, even where the host has its own
 * listener to report and carry on: the tslab kernel's does that, and with the wasm module loaded a notebook's kernel
 * died instead (tfjs removes the same listeners itself, but only when the module is disposed). Without them Node and
 * the host behave as they would without headlens.
 */
async function keepProcessHandlers<T>(start: () => Promise<T>): Promise<T> {
  if (!isNode || typeof process.listeners !== 'function') return start();
  // typed loosely: @types/node's overloads take one event name at a time
  const proc = process as unknown as { listeners(e: string): Function[]; removeListener(e: string, l: Function): void };
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((e) => new Set(proc.listeners(e)));
  try {
    return await start();
  } finally {
    events.forEach((e, i) => {
      for (const l of proc.listeners(e)) if (!before[i].has(l)) proc.removeListener(e, l);
    });
  }
}

/**
 * Gives the webgpu backend's pooled free buffers back to the device (webgpu_guard.ts releasePooledBuffers); 0 on
 * other backends. For long runs over several shapes, between shapes.
 */
export function releaseGpuPool(): number {
  return tf.getBackend() === 'webgpu' ? releasePooledBuffers(tf.backend() as unknown as { bufferManager: unknown }) : 0;
}
export { webgpuHostTuning } from './webgpu_uploads.js';
export { webgpuMatMul } from './webgpu_kernels/matmul_tiled.js';
