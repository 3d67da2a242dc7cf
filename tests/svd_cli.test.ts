/**
 * `headlens svd` and `headlens composition` as a user runs them (the built dist/cli/main.js in a child
 * process). The singular values are checked against numpy's, computed by
 * tests/fixtures/make_numpy_fixtures.py from the HF checkpoints with its own reader and slicing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inProcess } from './cli_in_process.js';
import { FIXTURES, runHeadlens } from './helpers.js';

const ROOT = path.join(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');

interface HeadSvd { layer: number; head: number; qk: number[]; ov: number[] }
const NUMPY = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'numpy', 'head_svd.json'), 'utf8')) as Record<string, { heads: HeadSvd[] }>;

const headlens = (...args: string[]) => runHeadlens(args);

beforeAll(() => {
  process.env.HEADLENS_BACKEND = 'wasm';
});

describe('headlens svd matches numpy for every family', () => {
  it.each(Object.keys(NUMPY))('svd --model %s --circuit qk|ov --json gives numpy’s singular values to 1e-4 relative', async (name) => {
    // one head per checkpoint through the CLI (each run loads the model), the rest through the library in
    // head_circuits.test.ts; this pick is (last layer, n_heads/2 − 1), whose key/value head under GQA is 0
    const { layer, head, qk, ov } = NUMPY[name].heads.at(-2)!;
    let worst = 0;
    const args = (circuit: string) => ['svd', '--model', path.join(FIXTURES, name), '--layer', String(layer), '--head', String(head), '--circuit', circuit, '--json'];
    const runs = await Promise.all([headlens(...args('qk')), headlens(...args('ov'))]);
    for (const [r, want] of [[runs[0], qk], [runs[1], ov]] as const) {
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { singular_values: number[]; top_tokens?: { input_tokens: unknown[] }[] };
      const dHead = got.singular_values.length;
      expect(dHead).toBeGreaterThanOrEqual(8); // d_head of these fixtures is 8, 12 or 16
      for (let i = 1; i < dHead; i++) expect(got.singular_values[i]).toBeLessThanOrEqual(got.singular_values[i - 1]);
      for (let i = 0; i < dHead; i++) worst = Math.max(worst, Math.abs(got.singular_values[i] - want[i]) / want[i]);
      expect(got.top_tokens).toHaveLength(3); // every fixture ships a tokenizer.json
    }
    expect(worst, name).toBeLessThan(1e-4);
    console.log(`${name} L${layer}H${head}: worst relative error of headlens svd vs numpy ${worst.toExponential(2)}`);
  });
});

describe('headlens svd and composition output', () => {
  it('svd --circuit ov --k 2 prints top tokens of the two leading singular vectors', async () => {
    const r = await headlens('svd', '--model', path.join(FIXTURES, 'gpt2'), '--layer', '1', '--head', '2', '--circuit', 'ov', '--k', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got).toMatchObject({ head: 'L1H2', circuit: 'ov' });
    expect(got.top_tokens).toHaveLength(2);
    expect(got.top_tokens[0].input_tokens).toHaveLength(8);
    expect(typeof got.top_tokens[0].output_tokens[0].token).toBe('string');
    const text = await inProcess('svd', '--model', path.join(FIXTURES, 'gpt2'), '--layer', '1', '--head', '2', '--circuit', 'qk');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/L1H2 QK circuit .*: 8 singular values/);
    expect(text.stdout).toMatch(/query tokens: /);
  });

  it('composition --kind k --json lists every cross-layer head pair with a baseline', async () => {
    const r = await headlens('composition', '--model', path.join(FIXTURES, 'llama-gqa'), '--kind', 'k', '--json');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.kind).toBe('k');
    expect(got.pairs).toHaveLength(8 * 8);
    expect(got.pairs[0].score).toBeGreaterThanOrEqual(got.pairs[63].score);
    expect(got.baseline.mean).toBeGreaterThan(0);
    const text = await inProcess('composition', '--model', path.join(FIXTURES, 'gpt2'), '--kind', 'q', '--top', '3');
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(4);
  });

  it('svd --circuit qk --prompt splits one score into singular components whose terms sum to it, with the upstream parts', async () => {
    const r = await inProcess('svd', '--model', path.join(FIXTURES, 'gpt2'), '--layer', '1', '--head', '2', '--circuit', 'qk', '--prompt', '3,17,5,9,2,11', '--key-pos', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { head: string; query_pos: number; score: number; terms: { term: number }[]; carrying: number[]; upstream: { label: string }[] };
    expect(got).toMatchObject({ head: 'L1H2', query_pos: 5, key_pos: 1, fraction: 1, measure: 'projection' });
    expect(got.terms).toHaveLength(8);
    expect(got.terms.reduce((s, t) => s + t.term, 0)).toBeCloseTo(got.score, 3);
    expect(got.carrying.length).toBeGreaterThan(0);
    expect(got.upstream.map((u) => u.label)).toContain('L0H0');
    const bad = await inProcess('svd', '--model', path.join(FIXTURES, 'gpt2'), '--layer', '1', '--head', '2', '--circuit', 'ov', '--prompt', '3,17', '--key-pos', '0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/pass --circuit qk/);
  });

  const model = path.join(FIXTURES, 'gpt2');
  const cases: [string, string[], RegExp][] = [
    ['no --circuit', ['svd', '--model', model, '--layer', '0', '--head', '0'], /--circuit is required/],
    ['bad circuit', ['svd', '--model', model, '--layer', '0', '--head', '0', '--circuit', 'vo'], /--circuit 'vo' is not qk or ov/],
    ['layer out of range', ['svd', '--model', model, '--layer', '2', '--head', '0', '--circuit', 'qk'], /layer 2 is not a layer.*0\.\.1/],
    ['non-integer head', ['svd', '--model', model, '--layer', '0', '--head', 'x', '--circuit', 'qk'], /--head 'x' is not a non-negative integer/],
    ['k too large', ['svd', '--model', model, '--layer', '0', '--head', '0', '--circuit', 'qk', '--k', '9'], /--k 9 is not in 1\.\.d_head \(8\)/],
    ['bad kind', ['composition', '--model', model, '--kind', 'z'], /--kind 'z' is not q, k or v/],
  ];
  // in-process through main() (the same code the binary runs), to spare a process start per case
  it.each(cases)('%s exits 2 with one line', async (_, args, pattern) => {
    const r = await inProcess(...args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(pattern);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
