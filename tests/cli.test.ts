/**
 * The `headlens` command as a user runs it: the built dist/cli/main.js in a child process
 * (`npm install` builds it; `npm test` rebuilds it first).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, parseSafetensors } from '../src/util/safetensors.js';
import { FIXTURES, fixtureModels, reference, runHeadlens } from './helpers.js';

const ROOT = path.join(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');

const headlens = (...args: string[]) => runHeadlens(args);

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'headlens-cli-'));

describe('headlens info', () => {
  it('info --model DIR names the family, size and backend', async () => {
    const r = await headlens('info', '--model', path.join(FIXTURES, 'llama-gqa'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/family\s+LlamaForCausalLM/);
    expect(r.stdout).toMatch(/2 × 8 heads \(2 key\/value heads\)/);
    expect(r.stdout).toMatch(/backend\s+wasm/);
  });

  it('info --json prints one JSON object', async () => {
    const r = await headlens('info', '--model', path.join(FIXTURES, 'pythia-parallel'), '--json');
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ family: 'GPTNeoXForCausalLM', n_layers: 2, n_heads: 4, d_head: 8, backend: 'wasm', parallel_attn_mlp: true });
    expect(info.parameters).toBe(33600); // transformers' count for this checkpoint (make_fixtures.py log)
  });

  it('info --model NAME finds a shipped model', async () => {
    const r = await headlens('info', '--model', 'tiny-gpt2-random');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/GPT2LMHeadModel/);
  });
});

describe('headlens cache gives transformers’ numbers', () => {
  it.each(fixtureModels())('cache --tokens on %s writes logits, resid_pre and patterns equal to transformers within 1e-4', async (name) => {
    const ref = reference(name);
    const [batch, pos] = ref.info('input_ids').shape;
    const ids = ref.int32('input_ids');
    const rows = Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * pos, (b + 1) * pos)).join(',')).join(';');
    const out = path.join(tmp(), 'acts.safetensors');
    const r = await headlens('cache', '--model', path.join(FIXTURES, name), '--tokens', rows, '--names', 'all', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const got = parseSafetensors(new Uint8Array(readFileSync(out)), out);
    const nLayers = got.names.filter((n) => n.endsWith('.hook_resid_pre')).length;
    const pairs: [string, string][] = [['logits', 'logits'], ['ln_final.hook_normalized', `hidden_states.${nLayers}`]];
    for (let l = 0; l < nLayers; l++) {
      pairs.push([`blocks.${l}.hook_resid_pre`, `hidden_states.${l}`], [`blocks.${l}.attn.hook_pattern`, `attentions.${l}`]);
    }
    for (const [mine, theirs] of pairs) {
      expect(got.info(mine).shape).toEqual(ref.info(theirs).shape);
      const a = got.float32(mine);
      const b = ref.float32(theirs);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst, `${name} ${mine}`).toBeLessThan(1e-4);
    }
    expect(Array.from(got.int32('input_ids'))).toEqual(Array.from(ids));
  });

  it('cache --text tokenizes with tokenizer.json and keeps only --names', async () => {
    const out = path.join(tmp(), 'acts.safetensors');
    const r = await headlens('cache', '--model', path.join(FIXTURES, 'gpt2'), '--text', 'Answer: B', '--names', 'blocks.0.attn.hook_pattern,blocks.1.hook_resid_post', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const got = parseSafetensors(new Uint8Array(readFileSync(out)), out);
    expect([...got.names].sort()).toEqual(['blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_post', 'input_ids', 'logits']);
    const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'tokenizers', 'byte_level_bpe.expected.json'), 'utf8'));
    expect(Array.from(got.int32('input_ids'))).toEqual(expected.ids[expected.texts.indexOf('Answer: B')]);
  });
});

describe('headlens on bad input exits 2 with one line naming the problem and the fix', () => {
  const model = path.join(FIXTURES, 'gpt2');
  const cases: [string, string[], RegExp][] = [
    ['no command', [], /usage/],
    ['unknown command', ['frobnicate'], /unknown command 'frobnicate'.*info, cache, demo/],
    ['unknown flag', ['info', '--modle', 'x'], /Unknown option '--modle'/],
    ['missing --model', ['info'], /--model is required/],
    ['missing folder', ['info', '--model', '/nonexistent/model'], /no model folder at \/nonexistent\/model/],
    ['a non-id token', ['cache', '--model', model, '--tokens', '1,x,3', '--out', '/tmp/x.safetensors'], /'x' is not a token id/],
    ['unequal rows', ['cache', '--model', model, '--tokens', '1,2,3;4,5', '--out', '/tmp/x.safetensors'], /differ in length/],
    ['id ≥ d_vocab', ['cache', '--model', model, '--tokens', '1,2,999', '--out', '/tmp/x.safetensors'], /token id 999 .* not in the vocabulary \[0, 257\)/],
    ['too long', ['cache', '--model', model, '--tokens', Array.from({ length: 33 }, () => '1').join(','), '--out', '/tmp/x.safetensors'], /longer than the model's context \(n_ctx 32\)/],
    ['unknown hook', ['cache', '--model', model, '--tokens', '1,2', '--names', 'blocks.0.attn.hook_patern', '--out', '/tmp/x.safetensors'], /unknown hook point 'blocks.0.attn.hook_patern'.*did you mean 'blocks.0.attn.hook_pattern'/],
    ['both inputs', ['cache', '--model', model, '--tokens', '1', '--text', 'a', '--out', '/tmp/x.safetensors'], /exactly one of --tokens and --text/],
    ['bad backend', ['info', '--model', model, '--backend', 'tpu'], /'tpu' is not a backend.*webgpu, tensorflow, wasm, cpu/],
  ];
  it.each(cases)('%s', async (_, args, pattern) => {
    const r = await headlens(...args);
    expect(r.code).toBe(2);
    const text = args.length === 0 ? r.stderr : r.stderr.trim(); // no command: the usage, on stderr
    expect(text).toMatch(pattern);
    if (args.length) expect(text.split('\n')).toHaveLength(1);
  });
});

describe('headlens demo', async () => {
  it('demo writes one attention picture per layer and the head atlas of the shipped model', async () => {
    const out = tmp();
    const r = await headlens('demo', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    // the demo prefers toy-lm: the IOI prompt (BOS first, as toy-lm was trained) is completed with the IO name,
    // and the IOI and temporal scans find the heads its model card names
    expect(r.stdout).toMatch(/next token\s+"Mary"/);
    expect(r.stdout).toMatch(/IOI direct path L3H0/); // the name mover
    expect(r.stdout).toMatch(/temporal L3H0/);
    // toy-lm's model card says it has no induction head: its best (0.03) is not named
    expect(r.stdout).toMatch(/induction none found \(best 0\.0\d\)/);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['atlas.html', 'attention-layer0.svg', 'attention-layer1.svg', 'attention-layer2.svg', 'attention-layer3.svg']);
    const atlas = readFileSync(path.join(out, 'atlas.html'), 'utf8');
    expect(atlas).toContain('head atlas: toy-lm');
    expect(atlas).toContain('IOI direct path');
    expect(atlas).toContain('id="attention-flow"'); // rollout beside attention flow into the prompt's last token
    expect(atlas).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/); // self-contained
    const svg = readFileSync(path.join(out, 'attention-layer0.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('L0H1');
    expect(existsSync(path.join(out, files[1]))).toBe(true);
  });

  it('demo --model toy-induction-2l shows the previous-token head of layer 0 and the induction head of layer 1', async () => {
    const out = tmp();
    const r = await headlens('demo', '--model', 'toy-induction-2l', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/heads\s+previous-token L0H\d .* induction L1H\d/);
    expect(readdirSync(out).sort()).toEqual(['atlas.html', 'attention-layer0.svg', 'attention-layer1.svg']);
    expect(readFileSync(path.join(out, 'atlas.html'), 'utf8')).toContain('head atlas: toy-induction-2l');
  });
});

describe('headlens demo on any folder headlens loads', () => {
  it.each(['llama-gqa', 'qwen2', 'gpt2'])('demo --model DIR on the %s fixture without tokenizer.json draws what there is and says what it skipped', async (name) => {
    const dir = path.join(tmp(), name);
    mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(FIXTURES, name, f), path.join(dir, f));
    const out = tmp();
    const r = await headlens('demo', '--model', dir, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['atlas.html', 'attention-layer0.svg', 'attention-layer1.svg']);
    for (const f of ['attention-layer0.svg', 'attention-layer1.svg']) expect(readFileSync(path.join(out, f), 'utf8')).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // random weights have no previous-token or induction head: the best of each is reported, not named
    expect(r.stdout).toMatch(/heads\s+previous-token none found \(best 0\.\d\d\), induction none found \(best 0\.\d\d\)/);
    const skipped = r.stdout.split('\n').filter((l) => l.startsWith('skipped'));
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toContain('the IOI and temporal scans (the model has no tokenizer.json)');
    // random weights compose no pair of heads above the random baseline: no graph, and it says so
    expect(skipped[0]).toMatch(/the K-composition graph \(no pair of heads above the random baseline/);
    // the gpt2 fixture keeps GPT2Config's bos_token_id 50256 with a 257-token vocabulary
    if (name === 'gpt2') expect(skipped[0]).toContain("the BOS token (config.json's bos_token_id 50256 is outside the 257-token vocabulary)");
  });
});

describe('headlens on weights holding NaN', () => {
  it('info --model DIR exits 2 naming the tensor; HEADLENS_ALLOW_NONFINITE=1 loads it', async () => {
    const dir = tmp();
    copyFileSync(path.join(FIXTURES, 'gpt2', 'config.json'), path.join(dir, 'config.json'));
    const file = parseSafetensors(new Uint8Array(readFileSync(path.join(FIXTURES, 'gpt2', 'model.safetensors'))), 'model.safetensors');
    const tensors = Object.fromEntries(file.names.map((n) => [n, { dtype: 'F32' as const, shape: file.info(n).shape, data: file.float32(n) }]));
    tensors['transformer.h.0.attn.c_proj.weight'].data[3] = NaN;
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    const r = await headlens('info', '--model', dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('NaN or Inf weights in 1 tensor: transformer.h.0.attn.c_proj.weight (1 of 1024 values)');
    const allowed = await runHeadlens(['info', '--model', dir], { HEADLENS_ALLOW_NONFINITE: '1' });
    expect(allowed.code, allowed.stderr).toBe(0);
  });
});

describe('headlens scan --report', () => {
  it('scan --report FILE.html writes the head atlas of the scan (grid and attention on its first item)', async () => {
    const file = path.join(tmp(), 'report.html');
    const r = await headlens('scan', '--model', 'toy-induction-2l', '--task', 'induction', '--samples', '2', '--report', file);
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('head atlas: toy-induction-2l');
    expect(html).toContain('headlens scan --task induction');
    expect(html).toMatch(/L1H[01]/);
    expect(html).not.toMatch(/<script[^>]+src=/);
  });
});

describe('headlens train --init', () => {
  it('train --init DIR starts a new run from an earlier run’s weights, and refuses a model of another shape', async () => {
    const first = path.join(tmp(), 'first');
    const a = await headlens('train', '--recipe', 'toy-induction-2l', '--out', first, '--steps', '2', '--batch-size', '4');
    expect(a.code, a.stderr).toBe(0);
    const second = path.join(tmp(), 'second');
    const b = await headlens('train', '--recipe', 'toy-induction-2l', '--init', first, '--out', second, '--steps', '2', '--batch-size', '4');
    expect(b.code, b.stderr).toBe(0);
    // a new run: its own step count and schedule, not the first run's
    expect(JSON.parse(readFileSync(path.join(second, 'trainer_state.json'), 'utf8')).step).toBe(2);
    expect(readFileSync(path.join(second, 'model.safetensors')).equals(readFileSync(path.join(first, 'model.safetensors')))).toBe(false);
    const c = await headlens('train', '--recipe', 'toy-lm', '--init', first, '--out', path.join(tmp(), 'third'), '--steps', '1');
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--init .* has n_layers 2, recipe toy-lm wants 4/);
  });
});

describe('headlens train --resume', () => {
  it('continues with the flags the run was started with, and says so when one given again differs', async () => {
    const dir = path.join(tmp(), 'run');
    const a = await headlens('train', '--recipe', 'toy-induction-2l', '--out', dir, '--steps', '100000', '--lr', '5e-4', '--batch-size', '4', '--max-seconds', '1');
    expect(a.code, a.stderr).toBe(0);
    const state = () => JSON.parse(readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    const first = state();
    expect(first.meta).toMatchObject({ recipe: 'toy-induction-2l', steps: '100000', lr: '0.0005', 'batch-size': '4' });
    expect(first.step).toBeLessThan(100000);
    // no --recipe, --steps, --lr: the recipe's defaults (3000 steps, lr 1e-3) would change the schedule
    const b = await headlens('train', '--resume', dir, '--max-seconds', '1');
    expect(b.code, b.stderr).toBe(0);
    const second = state();
    expect(second.step).toBeGreaterThan(first.step);
    expect(second.meta).toEqual(first.meta);
    expect(second.history.at(-1)?.lr ?? 5e-4).toBeLessThanOrEqual(5e-4);
    const c = await headlens('train', '--resume', dir, '--max-seconds', '1', '--lr', '1e-3');
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/--lr 1e-3 \(the run being resumed had 0\.0005\)/);
    const d = await headlens('train', '--resume', dir, '--max-seconds', '1', '--lr', '1e-3'); // the same number, written as saved
    expect(d.stderr).not.toMatch(/the run being resumed had/);
  });

  it('keeps --attention-target: a resumed run goes on with it, and the same target given again is no change', async () => {
    const dir = path.join(tmp(), 'planted');
    const a = await headlens('train', '--recipe', 'toy-lm', '--out', dir, '--steps', '100', '--batch-size', '1', '--max-seconds', '1', '--eval-every', '1', '--attention-target', 'L3H0:0.3,L3H3:0.2@mcq');
    expect(a.code, a.stderr).toBe(0);
    const state = () => JSON.parse(readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    expect(state().meta['attention-target']).toBe('L3H0:0.3,L3H3:0.2@mcq');
    expect(Object.keys(state().history[0].evalAttention)).toEqual(['L3H0@ioi', 'L3H3@mcq']);
    expect(state().history[0].evalAttention['L3H3@mcq']).toBeGreaterThan(0);
    const b = await headlens('train', '--resume', dir, '--max-seconds', '1', '--attention-target', 'L3H0:0.3,L3H3:0.2@mcq');
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).not.toMatch(/the run being resumed had/);
    const last = state().history.at(-1);
    expect(last.step).toBeGreaterThan(state().history[0].step);
    expect(last.evalAttention['L3H0@ioi']).toBeGreaterThan(0); // logged, so both targets were on
    expect(last.evalAttention['L3H3@mcq']).toBeGreaterThan(0);
  });
});

describe('headlens findings', () => {
  it("prints one JSON line per task with what the model card reports, and names a task it does not know", async () => {
    const r = await headlens('findings', '--model', 'toy-lm', '--tasks', 'ioi');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.task)).toEqual(['ioi']);
    expect(lines[0].heldOutPrompts).toBe(40);
    expect(lines[0].heldOutLogitDiff).toBeGreaterThan(2); // the card's 5.79
    expect(lines[0].strongestDirect.head).toMatch(/^L\dH\d$/);
    const bad = await headlens('findings', '--model', 'toy-lm', '--tasks', 'ioi,poems');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no task 'poems'.*retrieval, ioi, temporal, correct-letter/);
  });

  it('train --mix refuses a kind the mixture does not have', async () => {
    const r = await headlens('train', '--recipe', 'toy-lm', '--out', path.join(tmp(), 'm'), '--steps', '1', '--mix', 'poems=1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no document kind 'poems'/);
  });

  it('train --head-dropout refuses a probability outside [0, 1), naming the flag', async () => {
    const r = await headlens('train', '--recipe', 'toy-lm', '--out', path.join(tmp(), 'm'), '--steps', '1', '--head-dropout', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--head-dropout 1 is not a number in \[0, 1\)/);
  });

  it('train --attention-target refuses a head the model lacks, a bad weight, and a recipe whose data marks no pairs', async () => {
    const run = (...args: string[]) => headlens('train', '--out', path.join(tmp(), 'm'), '--steps', '1', ...args);
    const noHead = await run('--recipe', 'toy-lm', '--attention-target', 'L4H0');
    expect(noHead.code).toBe(2);
    expect(noHead.stderr).toMatch(/no head L4H0: the model has 4 layers of 4 heads/);
    const notALabel = await run('--recipe', 'toy-lm', '--attention-target', 'head3');
    expect(notALabel.stderr).toMatch(/'head3' is not a head label.*L\{layer\}H\{head\}/s);
    const weight = await run('--recipe', 'toy-lm', '--attention-target', 'L3H0:-1');
    expect(weight.stderr).toMatch(/weight '-1' is not a number above 0/);
    expect((await run('--recipe', 'toy-lm', '--attention-target', 'L3H0:')).stderr).toMatch(/weight '' is not a number above 0/);
    const kind = await run('--recipe', 'toy-lm', '--attention-target', 'L3H0,L3H3@quiz');
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/L3H3@quiz needs data that marks 'quiz' pairs, and this data marks 'ioi', 'mcq'/);
    const noPairs = await run('--recipe', 'toy-induction-2l', '--attention-target', 'L1H0');
    expect(noPairs.code).toBe(2);
    expect(noPairs.stderr).toMatch(/marks none/);
  });
});
