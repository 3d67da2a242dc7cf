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
