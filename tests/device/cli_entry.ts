/** The `headlens` command bundled for the GPU machine (../shared/device/pack.sh tests/device/cli_entry.ts). */
import './device_env.js';
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
