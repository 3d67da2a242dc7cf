// Can @tensorflow/tfjs-backend-wasm's threaded build run in Node? (README, "A scan across cores and machines")
//   node bench/wasm_threads_probe.cjs 2      threaded build asked for 2 threads
//   node bench/wasm_threads_probe.cjs 1      the single-threaded build headlens uses
// Unpatched, the threaded build fails: tfjs gives Emscripten a blob: URL for the pthread worker script and Node's
// worker_threads.Worker takes only paths (ERR_WORKER_PATH). Run with --raw to see that. Patched here: every Blob
// of source text is also written to a file and URL.createObjectURL returns the file; the main script the threads
// load gets the names of tfjs' bundle it refers to (require$$0…, commonjsGlobal). Then the backend starts, and
// this prints the thread count XNNPACK reports, the pthreads running, and the time of 100 512x512 matmuls.
const fs = require('fs'), os = require('os'), path = require('path');
const threads = Number(process.argv[2] ?? 2);
if (!process.argv.includes('--raw')) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfwasm-'));
  const NodeBlob = globalThis.Blob;
  const files = new WeakMap();
  let n = 0;
  let mainFile;
  globalThis.Blob = class extends NodeBlob {
    constructor(parts, o) {
      super(parts, o);
      if (!parts.every((p) => typeof p === 'string')) return;
      let text = parts.join('');
      let f;
      if (text.startsWith('var WasmBackendModuleThreadedSimd')) {
        f = mainFile = path.join(dir, 'main.js');
        text = "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks'),require$$4=require('os'),commonjsGlobal=globalThis;" + text;
      } else {
        f = path.join(dir, `worker${n++}.js`);
        text = text.replace('if(typeof e.data.urlOrBlob=="string")', `e.data.urlOrBlob=${JSON.stringify(mainFile)};if(true)`);
      }
      fs.writeFileSync(f, text);
      files.set(this, f);
    }
  };
  const createObjectURL = URL.createObjectURL;
  URL.createObjectURL = (b) => files.get(b) ?? createObjectURL(b);
}
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
if (threads > 1) wasm.setThreadsCount(threads);
(async () => {
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend(wasm) returned false');
    await tf.ready();
    const m = tf.backend().wasm;
    console.log(`backend started; threads asked ${threads}, XNNPACK reports ${wasm.getThreadsCount()}; pthread workers: ${m.PThread ? `${m.PThread.unusedWorkers.length} idle, ${m.PThread.runningWorkers.length} running` : 'none (single-threaded build)'}`);
    const a = tf.randomNormal([512, 512], 0, 1, 'float32', 1);
    tf.matMul(a, a).dispose();
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      const c = tf.matMul(a, a);
      c.dataSync();
      c.dispose();
    }
    console.log(`100 matmuls 512x512x512: ${(performance.now() - t0).toFixed(0)} ms`);
  } catch (e) {
    console.log('failed:', (e && e.message) || e);
  }
  process.exit(0);
})();
