/**
 * The `headlens` CLI as one bundle for the GPU machine (no Node.js or registry there: shared/device/pack.sh
 * bundles this file with esbuild). Forked with --scan-child it is a local scan worker (src/cli/scan_child.ts);
 * run it with HEADLENS_WORKER_SCRIPT pointing at the bundle itself.
 */
import { main } from '../src/cli/main.js';

if (process.argv.includes('--scan-child')) {
  void import('../src/cli/scan_child.js');
} else {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
