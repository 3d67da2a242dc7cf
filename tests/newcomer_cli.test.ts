/**
 * Issue 20's command-line faults, each as a call, run in this process (tests/cli_in_process.ts).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tableTitle } from '../src/cli/scan.js';
import { unknownWords } from '../src/cli/token_args.js';
import { loadPretrained } from '../src/loading/load.js';
import { inProcess } from './cli_in_process.js';
import { FIXTURES } from './helpers.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'headlens-newcomer-'));

// first in the file: tfjs' cpu backend prints its banner at the first tensor it ever makes in this process
it('--backend cpu does not print tfjs\' "Hi, looks like you are running TensorFlow.js in Node.js" banner', async () => {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  try {
    const r = await inProcess('info', '--model', 'toy-induction-2l', '--backend', 'cpu');
    expect(r.code, r.stderr).toBe(0);
    const said = [...warn.mock.calls.flat(), r.stdout, r.stderr].join('\n');
    expect(said).not.toMatch(/Hi, looks like you are running TensorFlow\.js/);
  } finally {
    warn.mockRestore();
  }
});

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

describe('arguments', () => {
  it('a negative number after an option is its value, checked as such (not parseArgs\' "argument is ambiguous")', async () => {
    const r = await inProcess('svd', '--model', GPT2, '--layer', '-1', '--head', '0', '--circuit', 'qk', '--backend', 'wasm');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--layer '-1' is not a non-negative integer/);
    expect(r.stderr).not.toMatch(/ambiguous|forget to specify/);
  });

  it('headlens with no arguments prints the usage on stderr and exits 2; headlens help prints it on stdout, exit 0', async () => {
    const none = await inProcess();
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^headlens — attention heads/);
    const help = await inProcess('help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^headlens — attention heads/);
  });

  it('headlens scan --help prints the options of scan, not the global usage', async () => {
    const r = await inProcess('scan', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: headlens scan /);
    expect(r.stdout).not.toMatch(/headlens svd /);
  });
});

describe('hook names', () => {
  it('headlens hooks --model M lists every hook point with its short names; --json every full name', async () => {
    const r = await inProcess('hooks', '--model', GPT2, '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/blocks\.\{0…1\}\.attn\.hook_pattern\s+pattern, attn\s+\[batch, head, query_pos, key_pos\]/);
    const j = JSON.parse((await inProcess('hooks', '--model', GPT2, '--json', '--backend', 'wasm')).stdout);
    expect(j.names).toContain('blocks.1.attn.hook_z');
    expect(j.names).toContain('ln_final.hook_normalized');
  });

  it('cache --names pattern,resid_pre keeps every layer\'s hook of those kinds; an unknown name lists the short names', async () => {
    const out = path.join(tmp(), 'acts.safetensors');
    const r = await inProcess('cache', '--model', GPT2, '--tokens', '1,2,3', '--names', 'pattern,resid_pre', '--out', out, '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    const buf = readFileSync(out);
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8'));
    expect(Object.keys(header).filter((k) => k !== '__metadata__').sort()).toEqual(
      ['blocks.0.attn.hook_pattern', 'blocks.0.hook_resid_pre', 'blocks.1.attn.hook_pattern', 'blocks.1.hook_resid_pre', 'input_ids', 'logits'],
    );
    const bad = await inProcess('cache', '--model', GPT2, '--tokens', '1,2,3', '--names', 'patern', '--out', out, '--backend', 'wasm');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--names: 'patern' is neither a hook name of .* nor a short name \(embed, pos_embed, resid_pre.*pattern.*\) \(headlens hooks --model/);
  });
});

describe('patch and scan outputs', () => {
  it('patch --json prints the result on stdout, without --out', async () => {
    const r = await inProcess('patch', '--model', GPT2, '--clean', '1,2,3,4', '--corrupted', '1,2,5,4', '--answer', '7', '--wrong', '8', '--component', 'head-out', '--json', '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.component).toBe('head-out');
    expect(j.result.values).toHaveLength(2 * 4);
    const none = await inProcess('patch', '--model', GPT2, '--clean', '1,2', '--corrupted', '1,3', '--answer', '7', '--wrong', '8', '--component', 'head-out', '--backend', 'wasm');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--json \(stdout\) or --out/);
  });

  it('a finished scan --out FILE leaves no FILE.partial.json', async () => {
    const out = path.join(tmp(), 'sink.json');
    const r = await inProcess('scan', '--model', GPT2, '--task', 'sink', '--samples', '2', '--out', out, '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(existsSync(`${out}.partial.json`)).toBe(false);
  });

  it('scan report grids are titled in words, not field names ("ioi: sInhibition")', () => {
    expect(tableTitle('ioi', 'sInhibition')).toBe("IOI: path through the name movers' queries (S-inhibition heads)");
    expect(tableTitle('ioi', 'score')).toMatch(/^IOI: name-mover strength/);
    expect(tableTitle('newtask', 'someTable_name')).toBe('newtask: some table name');
  });
});

describe('demo --text', () => {
  it('demo --text on a model without a tokenizer says --text is not used', async () => {
    const r = await inProcess('demo', '--model', 'toy-induction-2l', '--text', 'hello there', '--out', tmp(), '--backend', 'wasm');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: --text is not used: toy-induction-2l has no tokenizer\.json/);
  });

  it('unknownWords names the words a word-level vocabulary turns into [UNK]', async () => {
    const model = await loadPretrained('toy-lm', { backend: 'wasm' });
    try {
      expect(model.tokenizer!.unkId).toBe(1);
      expect(unknownWords(model, 'When Mary and Zorblax went to the store')).toEqual(['Zorblax']);
      expect(unknownWords(model, 'When Mary and John went to the store')).toEqual([]);
    } finally {
      model.dispose();
    }
  });
});
