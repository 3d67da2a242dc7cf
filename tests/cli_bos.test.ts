/**
 * The BOS default of the CLI is the library's: `cache`, `patch` and `demo` encode text with the model's BOS first
 * where its vocabulary has one, and `--prepend-bos` / `--no-prepend-bos` say otherwise. Token ids given as ids are
 * never changed.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { parseSafetensors } from '../src/util/safetensors.js';
import { FIXTURES, runHeadlens } from './helpers.js';

const LLAMA = path.join(FIXTURES, 'llama-gqa');
const TEXT = 'hello world';
let llama: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  llama = await loadPretrained(LLAMA);
});
afterAll(() => llama.dispose());

async function cachedIds(...flags: string[]): Promise<number[]> {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-bos-')), 'a.safetensors');
  const r = await runHeadlens(['cache', '--model', LLAMA, '--text', TEXT, '--names', 'blocks.0.hook_resid_pre', '--out', out, ...flags]);
  expect(r.code, r.stderr).toBe(0);
  return Array.from(parseSafetensors(new Uint8Array(readFileSync(out)), out).int32('input_ids'));
}

describe('--prepend-bos / --no-prepend-bos', () => {
  it('cache --text puts BOS first by default and with --prepend-bos (as model.toTokens), and not with --no-prepend-bos', async () => {
    const withBos = llama.toTokens(TEXT)[0];
    expect(withBos[0]).toBe(llama.cfg.bos_token_id);
    expect(await cachedIds()).toEqual(withBos);
    expect(await cachedIds('--prepend-bos')).toEqual(withBos);
    expect(await cachedIds('--no-prepend-bos')).toEqual(llama.toTokens(TEXT, { prependBos: false })[0]);
  });

  it('both flags at once exit 2 with one line saying they contradict', async () => {
    const r = await runHeadlens(['cache', '--model', LLAMA, '--text', TEXT, '--out', '/tmp/x.safetensors', '--prepend-bos', '--no-prepend-bos']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/--prepend-bos and --no-prepend-bos contradict/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('patch and demo list both flags in their help', async () => {
    for (const cmd of ['patch', 'demo']) {
      const r = await runHeadlens([cmd, '--help']);
      expect(r.stdout + r.stderr, cmd).toContain('--prepend-bos');
      expect(r.stdout + r.stderr, cmd).toContain('--no-prepend-bos');
    }
  });
});
