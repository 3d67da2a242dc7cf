/**
 * Settings a GPU call can change without a new bundle: HEADLENS_FLASH_MIN_ROWS (flashAttention.minRows; a huge
 * value sends every prefill to the matmul path, for a same-call baseline or when the flash kernel misbehaves).
 * Imported first by the device programs.
 */
import { flashAttention } from '../../src/backend/webgpu_kernels/index.js';

const minRows = process.env.HEADLENS_FLASH_MIN_ROWS;
if (minRows) {
  flashAttention.minRows = Number(minRows);
  console.log(`device_env: flashAttention.minRows = ${flashAttention.minRows}`);
}
