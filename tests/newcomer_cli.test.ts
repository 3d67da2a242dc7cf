/**
 * Issue 20's command-line faults, each as a call, run in this process (tests/cli_in_process.ts).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inProcess } from './cli_in_process.js';
import { FIXTURES } from './helpers.js';

const GPT2 = path.join(FIXTURES, 'gpt2'); // 2 layers × 4 heads: 16 pairs of heads in different layers

describe('composition --top', () => {
  it('composition --json --top 3 prints the 3 highest pairs and the total', async () => {
    const r = await inProcess('composition', '--model', GPT2, '--kind', 'k', '--json', '--top', '3', '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.pairs).toHaveLength(3);
    expect(got.total_pairs).toBe(16);
    expect(got.pairs[0].score).toBeGreaterThanOrEqual(got.pairs[2].score);
    const all = JSON.parse((await inProcess('composition', '--model', GPT2, '--kind', 'k', '--json', '--backend', 'wasm')).stdout);
    expect(all.pairs).toHaveLength(16);
    expect(got.pairs).toEqual(all.pairs.slice(0, 3));
  });

  it('composition --top beyond the pairs there are is refused up front, naming the count', async () => {
    const r = await inProcess('composition', '--model', GPT2, '--kind', 'k', '--top', '1000000000000', '--backend', 'wasm');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--top 1000000000000 is more than 16, the number of pairs of heads in different layers of .*e\.g\. --top 16/);
  });
});

describe('toy-induction-2l within its trained context', () => {
  it('scan --model toy-induction-2l --task induction stays within the 33 tokens it was trained on and finds L1H0 near 0.5', async () => {
    const r = await inProcess('scan', '--model', 'toy-induction-2l', '--task', 'induction', '--json', '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.settings.length).toBeLessThanOrEqual(33);
    expect(out.top[0]).toMatchObject({ layer: 1, head: 0 });
    // at most ≈ 0.5 on [BOS, s, s] (only the second copy has targets); the model card measures 0.480 at |s| = 16
    expect(out.top[0].score).toBeGreaterThan(0.45);
    const info = await inProcess('info', '--model', 'toy-induction-2l', '--backend', 'wasm');
    expect(info.stdout).toMatch(/n_ctx 64 \(trained on 33 tokens/);
  });
});
