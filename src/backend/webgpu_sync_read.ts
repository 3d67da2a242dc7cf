/**
 * Synchronous reads (`dataSync`, `arraySync`) of WebGPU tensors in Node.
 *
 * tfjs-backend-webgpu 4.22 reads synchronously by drawing the buffer into an OffscreenCanvas, a browser API.
 * In Node through Dawn (npm 'webgpu') every `dataSync()` threw "OffscreenCanvas is not defined" and left tfjs'
 * compute pass open, so the calls after it failed with WebGPU validation errors (seen on an H200, 2026-12-07:
 * the patching sweep and the benchmark). Node cannot wait for a GPU read inside a synchronous call: Dawn
 * resolves a buffer mapping through a promise, and promise callbacks do not run while a synchronous call (or
 * the promise job that made it) is on the stack; a nested event loop (the `deasync` package) was tried and
 * hangs inside async code for that reason.
 * So in Node the webgpu backend's readSync is replaced by one that returns values still held on the CPU (as
 * tfjs does) and otherwise throws a HeadlensError naming the asynchronous form to call, before tfjs touches
 * its encoder. The asynchronous forms (every reading call's `…Async` twin: `activationPatchingAsync`,
 * `retrievalScoresAsync`, `runScorerAsync`, `model.generateAsync`, …; `await tensor.data()`) run the same
 * computation (util/reads.ts).
 */
import { HeadlensError } from '../errors.js';

/** The parts of tfjs-backend-webgpu's WebGPUBackend this reaches (4.22's names). */
export interface SyncReadBackend {
  readSync(dataId: object): unknown;
  tensorMap: { get(dataId: object): { values?: unknown; dtype?: string } | undefined };
}

const refused = new WeakSet<object>();

/** Replaces `backend.readSync` as described above (once per backend). */
export function refuseSyncReads(backend: SyncReadBackend): void {
  if (refused.has(backend)) return;
  refused.add(backend);
  backend.readSync = (dataId: object) => {
    const t = backend.tensorMap.get(dataId);
    if (t && (t.values != null || t.dtype === 'string')) return t.values;
    throw new HeadlensError(
      'a synchronous read (dataSync, arraySync, or a headlens call that returns numbers) of a WebGPU tensor is not possible in Node: tfjs reads synchronously through OffscreenCanvas, which only browsers have',
      "call the asynchronous form, the same name with 'Async' (activationPatchingAsync, retrievalScoresAsync, runScorerAsync, model.generateAsync, …; await tensor.data()), or use the wasm or tensorflow backend",
    );
  };
}
