/**
 * The live head explorer: the script of the page `headlens explore` serves (bundled with esbuild, see
 * bundle.ts). Everything it computes, it computes with headlens itself in the browser: the model is built by
 * loadFromFiles from the files it fetched or the user picked, the backend is the one initBackend chooses
 * (webgpu where the browser has it, else wasm), and every number on the page comes from the library's own
 * functions (runWithCache, headAblationHooks, activationPatching, logitLensSummary, dlaPerHead).
 *
 * The state a teacher wants to share (model, prompt, answer, corrupted prompt, ablated heads, the head shown)
 * is in the URL's query string, rewritten after every change.
 *
 * For tests and the benchmark the page publishes its progress on <body>: data-state (loading, busy, ready,
 * error), data-first-picture-ms (navigation start → first attention picture), data-update-ms (the last
 * recomputation) and data-tensors (tf.memory().numTensors after it).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/index.js';
import { HeadlensError } from '../../errors.js';
import type { ActivationCache } from '../../hooks/activation_cache.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { actName } from '../../hooks/act_name.js';
import { loadFromFiles } from '../../loading/load_files.js';
import { isEncoder } from '../../model/config.js';
import { headAblationHooks, type AblationKind, type HeadRef } from '../../interp/interventions/ablation.js';
import { activationPatching } from '../../interp/interventions/patching.js';
import { logitLensSummary } from '../../interp/attribution/logit_lens.js';
import { dlaPerHead } from '../../interp/attribution/dla.js';
import { logitDiff } from '../../interp/metrics.js';
import { attentionPatternSVG } from '../attention_pattern.js';
import { TOKEN_LINES_JS } from '../client_scripts.js';
import { tokenLines } from '../token_lines.js';
import { headGrid } from '../head_grid.js';
import { esc } from '../html.js';

const $ = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;
const KINDS: AblationKind[] = ['zero', 'mean', 'uniform'];

interface State {
  model: string;
  prompt: string;
  answer: string;
  wrong: string;
  corrupted: string;
  kind: AblationKind;
  ablate: string[]; // head labels L{l}H{h}
  head: string; // the head whose pattern is shown
}

const DEFAULTS: State = {
  model: '',
  prompt: 'When Mary and John went to the store, John gave a drink to',
  answer: ' Mary',
  wrong: ' John',
  corrupted: 'When Mary and John went to the store, Mary gave a drink to',
  kind: 'zero',
  ablate: [],
  head: 'L0H0',
};

let model: HookedTransformer | undefined;
let modelLabel = '';
let state: State = readUrl();
let firstPicture = true;
/** The answer's numbers without interventions, for the current model and prompt. */
let baseline: Outcome | undefined;
/** The last position's logits without interventions, for the model and prompt (ids) they were computed on. */
let cleanRun: { model: HookedTransformer; key: string; last: Float32Array } | undefined;

interface Outcome {
  answerLogit: number;
  answerRank: number;
  answerProb: number;
  diff?: number;
}

function readUrl(): State {
  const q = new URLSearchParams(location.search);
  const kind = q.get('kind') as AblationKind | null;
  return {
    model: q.get('model') ?? DEFAULTS.model,
    prompt: q.get('prompt') ?? DEFAULTS.prompt,
    answer: q.get('answer') ?? DEFAULTS.answer,
    wrong: q.get('wrong') ?? DEFAULTS.wrong,
    corrupted: q.get('corrupted') ?? DEFAULTS.corrupted,
    kind: kind && KINDS.includes(kind) ? kind : DEFAULTS.kind,
    ablate: (q.get('ablate') ?? '').split(',').filter((s) => /^L\d+H\d+$/.test(s)),
    head: q.get('head') ?? DEFAULTS.head,
  };
}

function writeUrl(): void {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    const s = Array.isArray(v) ? v.join(',') : String(v);
    if (s !== '' || k === 'ablate') q.set(k, s);
  }
  if (!state.ablate.length) q.delete('ablate');
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

/** One message for whatever went wrong; the page keeps working. */
function showError(e: unknown): void {
  let msg = e instanceof HeadlensError || e instanceof Error ? e.message : String(e);
  // wasm and ArrayBuffer allocations fail with terse messages: say what they mean
  if (e instanceof RangeError || /out of memory|allocation failed|Cannot enlarge memory|OOM/i.test(msg)) {
    msg = `the browser ran out of memory (${msg}): the model is too large for this page (use a smaller model, or headlens in Node)`;
  }
  $('error').textContent = msg;
  $('error').hidden = false;
  document.body.dataset.state = 'error';
}

function clearError(): void {
  $('error').hidden = true;
  $('error').textContent = '';
}

function parseHead(label: string): HeadRef {
  const m = /^L(\d+)H(\d+)$/.exec(label);
  if (!m) throw new HeadlensError(`'${label}' is not a head`, 'heads are written L{layer}H{head}, e.g. L3H0');
  return { layer: Number(m[1]), head: Number(m[2]) };
}

async function fetchBytes(url: string): Promise<Uint8Array | undefined> {
  const r = await fetch(url);
  if (r.status === 404) return undefined;
  if (!r.ok) throw new HeadlensError(`fetching ${url} gave HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

/** Replaces the model (the old one is disposed only once the new one loaded). */
function useModel(m: HookedTransformer, label: string): void {
  if (isEncoder(m.cfg)) {
    m.dispose();
    throw new HeadlensError(`${label} is an encoder (${m.cfg.original_architecture}); this page compares next-token logits, which a masked-LM encoder does not compute`, 'pick a causal decoder; read an encoder\'s attention with runWithCache in Node or a notebook');
  }
  model?.dispose();
  model = m;
  modelLabel = label;
  const c = m.cfg;
  $('model-info').textContent = `${label}: ${c.n_layers} layers × ${c.n_heads} heads, d_model ${c.d_model}, n_ctx ${c.n_ctx}, vocabulary ${c.d_vocab}${m.tokenizer ? '' : ' (no tokenizer.json: prompts cannot be typed)'}`;
  state.ablate = state.ablate.filter((h) => { const r = parseHead(h); return r.layer < c.n_layers && r.head < c.n_heads; });
  if (!/^L(\d+)H(\d+)$/.test(state.head) || parseHead(state.head).layer >= c.n_layers || parseHead(state.head).head >= c.n_heads) state.head = 'L0H0';
  // results of the previous model no longer apply
  for (const id of ['patching', 'attribution', 'scores']) $(id).innerHTML = '';
}

/** Memory check before reading weights: tfjs keeps a float32 copy of every weight, the file stays in memory too. */
function checkSize(bytes: number, name: string): void {
  const limit = 2 ** 31; // 2 GiB: wasm memory is 4 GiB at most and the file plus its float32 copy must fit
  if (bytes > limit) throw new HeadlensError(`${name}'s model.safetensors is ${(bytes / 2 ** 30).toFixed(1)} GiB, too large for this page (at most 2 GiB)`, 'use a smaller model in the browser, or the headlens CLI or a notebook in Node');
}

async function loadServed(name: string): Promise<void> {
  const base = `models/${encodeURIComponent(name)}/`;
  const config = text(await fetchBytes(base + 'config.json'));
  if (config === undefined) throw new HeadlensError(`the folder of ${name} has no config.json`, 'a model folder needs config.json, model.safetensors and tokenizer.json');
  const weights = await fetchBytes(base + 'model.safetensors');
  if (!weights) throw new HeadlensError(`the folder of ${name} has no model.safetensors`, 'a model folder needs config.json, model.safetensors and tokenizer.json');
  checkSize(weights.length, name);
  const tokenizer = text(await fetchBytes(base + 'tokenizer.json'));
  useModel(loadFromFiles({ name, config, weights, tokenizer }), name);
}

async function loadPicked(files: File[]): Promise<void> {
  const byName = new Map(files.map((f) => [f.name, f]));
  const dir = files[0]?.webkitRelativePath?.split('/')[0] || 'the picked files';
  const cfg = byName.get('config.json');
  if (!cfg) throw new HeadlensError(`${dir} has no config.json (got ${files.map((f) => f.name).join(', ') || 'nothing'})`, 'pick a HuggingFace model folder holding config.json, model.safetensors and tokenizer.json');
  const w = byName.get('model.safetensors');
  if (!w) throw new HeadlensError(`${dir} has no model.safetensors`, 'pick a HuggingFace model folder holding config.json, model.safetensors and tokenizer.json (sharded or pickle checkpoints are not read in the page)');
  checkSize(w.size, dir);
  const tok = byName.get('tokenizer.json');
  const tokCfg = byName.get('tokenizer_config.json');
  const m = loadFromFiles({
    name: dir,
    config: await cfg.text(),
    weights: new Uint8Array(await w.arrayBuffer()),
    tokenizer: tok ? await tok.text() : undefined,
    tokenizerConfig: tokCfg ? await tokCfg.text() : undefined,
  });
  useModel(m, dir);
}

function checkedTokens(m: HookedTransformer, prompt: string): number[] {
  if (!m.tokenizer) throw new HeadlensError(`${modelLabel} has no tokenizer.json, so a typed prompt cannot be encoded`, 'pick a model folder with tokenizer.json');
  const ids = m.toTokens(prompt)[0];
  if (ids.length > m.cfg.n_ctx) throw new HeadlensError(`the prompt is ${ids.length} tokens, longer than ${modelLabel}'s context of ${m.cfg.n_ctx}`, 'shorten the prompt');
  if (ids.length === 0) throw new HeadlensError('the prompt is empty', 'type a prompt');
  return ids;
}

/** The id of a one-token answer, or undefined when the field is empty. */
function answerId(m: HookedTransformer, s: string, what: string): number | undefined {
  if (s === '') return undefined;
  try {
    return m.toSingleToken(s);
  } catch (e) {
    throw new HeadlensError(`${what}: ${(e as Error).message}`);
  }
}

function ablationHooks(m: HookedTransformer, ids: number[]) {
  if (!state.ablate.length) return { hooks: [], dispose: () => {} };
  const heads = state.ablate.map(parseHead);
  let reference: { cache: ActivationCache; logits: tf.Tensor } | undefined;
  if (state.kind === 'mean') {
    // the mean over this prompt's positions: one prompt is all the page has
    reference = m.runWithCache([ids], { names: [...new Set(heads.map((h) => actName('z', h.layer)))] });
    reference.logits.dispose();
  }
  const hooks = headAblationHooks(m, heads, { kind: state.kind, reference: reference?.cache, perPosition: false });
  return { hooks, dispose: () => reference?.cache.dispose() };
}

function outcome(last: Float32Array, ans: number | undefined, wrong: number | undefined): Outcome | undefined {
  if (ans === undefined) return undefined;
  let max = -Infinity;
  for (const v of last) max = Math.max(max, v);
  let z = 0;
  for (const v of last) z += Math.exp(v - max);
  let rank = 0;
  for (const v of last) if (v > last[ans]) rank++;
  return { answerLogit: last[ans], answerRank: rank, answerProb: Math.exp(last[ans] - max) / z, diff: wrong === undefined ? undefined : last[ans] - last[wrong] };
}

/** The logits at the last position of a [1, pos, d_vocab] run (the run is not disposed here). */
function lastRow(logits: tf.Tensor3D): Float32Array {
  const row = tf.tidy(() => logits.slice([0, logits.shape[1] - 1, 0], [1, 1, -1]).reshape([-1]));
  try {
    return row.dataSync() as Float32Array;
  } finally {
    row.dispose();
  }
}

/** Recomputes everything that depends on the model, prompt and interventions. */
function recompute(): void {
  update((m) => {
    const ids = checkedTokens(m, state.prompt);
    const ans = answerId(m, state.answer, 'answer');
    const wrong = answerId(m, state.wrong, 'wrong answer');
    const strs = m.toStrTokens(ids);
    const names = Array.from({ length: m.cfg.n_layers }, (_, l) => actName('pattern', l));
    // the run without interventions changes only with the model or the prompt: kept between clicks
    const key = ids.join(',');
    if (cleanRun?.model !== m || cleanRun.key !== key) {
      const clean = m.forward([ids]);
      cleanRun = { model: m, key, last: lastRow(clean) };
      clean.dispose();
    }
    const cleanLast = cleanRun.last;
    baseline = outcome(cleanLast, ans, wrong);
    const abl = ablationHooks(m, ids);
    const { logits, cache } = m.runWithCache([ids], { names, fwdHooks: abl.hooks });
    abl.dispose();
    let last: Float32Array;
    let patterns: number[][][][];
    try {
      last = lastRow(logits);
      patterns = names.map((n) => (cache.get(n).arraySync() as number[][][][])[0]); // [layer][head][query_pos][key_pos]
    } finally {
      logits.dispose();
      cache.dispose();
    }
    drawTokens(strs, patterns);
    drawNext(m, last, cleanLast);
    drawAnswer(outcome(last, ans, wrong));
    drawGrid(patterns);
    drawPattern(strs, patterns);
  }, {
    writeUrl: true,
    after: () => {
      if (firstPicture) {
        firstPicture = false;
        // performance.now() counts from the navigation's start: the time from opening the page
        document.body.dataset.firstPictureMs = performance.now().toFixed(1);
      }
      $('timing').textContent = `first attention picture ${document.body.dataset.firstPictureMs} ms after the page was opened; last update ${document.body.dataset.updateMs} ms`;
    },
  });
}

/**
 * One recomputation on the loaded model (nothing without one): the page is marked busy, and on success the time it
 * took and the tensor count are recorded (the browser test reads both) before `after` runs; an error is shown and the
 * page keeps its last state.
 */
function update(work: (m: HookedTransformer) => void, opts: { writeUrl?: boolean; after?: () => void } = {}): void {
  const m = model;
  if (!m) return;
  const t = performance.now();
  document.body.dataset.state = 'busy';
  clearError();
  if (opts.writeUrl) writeUrl();
  try {
    work(m);
    document.body.dataset.updateMs = (performance.now() - t).toFixed(1);
    opts.after?.();
    document.body.dataset.tensors = String(tf.memory().numTensors);
    document.body.dataset.state = 'ready';
  } catch (e) {
    showError(e);
  }
}

let currentPatterns: number[][][][] = [];
let currentStrs: string[] = [];

function visible(t: string): string {
  return t === '' ? '∅' : t.replace(/ /g, '␣').replace(/\n/g, '↵');
}

function drawTokens(strs: string[], patterns: number[][][][]): void {
  currentStrs = strs;
  currentPatterns = patterns;
  $('tokens').innerHTML = strs.map((s, i) => `<span class="hl-tok" data-pos="${i}" title="position ${i}">${esc(visible(s))}</span>`).join('');
}

/** Hovering a token shades every token by the shown head's attention from it. */
function onTokenHover(q: number | undefined): void {
  const { layer, head } = parseHead(state.head);
  const row = q === undefined ? undefined : currentPatterns[layer]?.[head]?.[q];
  $('tokens').querySelectorAll<HTMLElement>('.hl-tok').forEach((el, k) => {
    const w = row ? (row[k] ?? 0) : 0;
    el.dataset.weight = String(w);
    el.style.backgroundColor = row ? `rgba(33, 102, 172, ${w.toFixed(3)})` : '';
    el.classList.toggle('hl-focus', k === q);
  });
  if (row) {
    const best = row.indexOf(Math.max(...row));
    $('hover-info').textContent = `${state.head} from (${q}) ${currentStrs[q!]}: strongest to (${best}) ${currentStrs[best]} (${row[best].toFixed(3)})`;
  } else $('hover-info').textContent = 'hover a token to see where the shown head attends from it';
}

function topK(v: Float32Array, k: number): number[] {
  return Array.from(v.keys()).sort((a, b) => v[b] - v[a]).slice(0, k);
}

function softmax(v: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of v) max = Math.max(max, x);
  const e = Float64Array.from(v, (x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

function drawNext(m: HookedTransformer, last: Float32Array, cleanLast: Float32Array): void {
  const p = softmax(last);
  const p0 = softmax(cleanLast);
  const rows = topK(last, 8).map((id) => {
    const tok = m.tokenizer!.decode([id]);
    return `<tr data-id="${id}" data-token="${esc(tok)}" data-prob="${p[id]}"><td class="tok">${esc(visible(tok))}</td><td>${p[id].toFixed(4)}</td><td>${last[id].toFixed(3)}</td><td class="hl-note">${state.ablate.length ? p0[id].toFixed(4) : ''}</td></tr>`;
  });
  $('next').innerHTML = `<table class="hl-table"><tr><th>next token</th><th>probability</th><th>logit</th><th>${state.ablate.length ? 'without interventions' : ''}</th></tr>${rows.join('')}</table>`;
}

function fmt(x: number | undefined, d = 3): string {
  return x === undefined ? '–' : x.toFixed(d);
}

function signed(x: number, d = 3): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}`;
}

function drawAnswer(now: Outcome | undefined): void {
  const box = $('answer-box');
  if (!now || !baseline) {
    box.innerHTML = '<span class="hl-note">give an answer token to follow its logit and rank</span>';
    return;
  }
  const b = baseline;
  const ds = (k: 'answerLogit' | 'diff') => (now[k] !== undefined && b[k] !== undefined ? ` (${signed(now[k]! - b[k]!)})` : '');
  box.dataset.answerLogit = String(now.answerLogit);
  box.dataset.answerRank = String(now.answerRank);
  box.dataset.diff = now.diff === undefined ? '' : String(now.diff);
  box.dataset.baseDiff = b.diff === undefined ? '' : String(b.diff);
  const what = state.ablate.length ? `with ${state.ablate.join(', ')} ${state.kind}-ablated` : 'no interventions';
  box.innerHTML = [
    `<b>${esc(JSON.stringify(state.answer))}</b> — ${esc(what)}:`,
    `logit ${fmt(now.answerLogit)}${ds('answerLogit')}, rank ${now.answerRank} (was ${b.answerRank}), probability ${fmt(now.answerProb, 4)} (was ${fmt(b.answerProb, 4)})`,
  ].join(' ') + (now.diff !== undefined ? `; logit difference vs ${esc(JSON.stringify(state.wrong))} <span id="diff">${fmt(now.diff)}</span>${ds('diff')}` : '');
}

/** The head grid: each cell is the head's label, shaded by how sharply it attends from the last token (max weight); click shows its pattern, the box ablates it. */
function drawGrid(patterns: number[][][][]): void {
  const { n_layers, n_heads } = model!.cfg;
  const rows: string[] = [];
  for (let l = 0; l < n_layers; l++) {
    const cells: string[] = [];
    for (let h = 0; h < n_heads; h++) {
      const label = `L${l}H${h}`;
      const row = patterns[l][h][patterns[l][h].length - 1];
      const peak = Math.max(...row);
      const cls = [label === state.head ? 'shown' : '', state.ablate.includes(label) ? 'ablated' : ''].join(' ');
      cells.push(`<td class="cell ${cls}" data-head="${label}" style="background: rgba(33, 102, 172, ${(peak * 0.6).toFixed(3)})" title="${label}: strongest attention from the last token ${peak.toFixed(3)}"><button class="show" data-head="${label}">${label}</button><label title="ablate ${label}"><input type="checkbox" class="ablate" data-head="${label}"${state.ablate.includes(label) ? ' checked' : ''}>ablate</label></td>`);
    }
    rows.push(`<tr>${cells.join('')}</tr>`);
  }
  $('grid').innerHTML = `<table class="grid">${rows.join('')}</table>`;
}

function drawPattern(strs: string[], patterns: number[][][][]): void {
  const { layer, head } = parseHead(state.head);
  $('pattern').innerHTML = attentionPatternSVG([patterns[layer][head]], { labels: strs.map(visible), headLabels: [state.head], title: `attention of ${state.head}`, panelWidth: Math.max(160, 18 * strs.length) });
  $('pattern-title').textContent = `attention of ${state.head}${state.ablate.length ? ` (with ${state.ablate.join(', ')} ${state.kind}-ablated)` : ''}`;
  // bertviz-style token lines (the atlas' view and its script), while the number of lines stays drawable
  const { n_layers, n_heads } = model!.cfg;
  if (n_layers * n_heads * strs.length ** 2 <= 200_000) {
    $('lines').innerHTML = tokenLines(patterns, { tokens: strs.map(visible), layer, heads: [head], title: `token lines of layer ${layer}` }).fragment;
    new Function(TOKEN_LINES_JS)();
  } else {
    $('lines').innerHTML = '<p class="hl-note">token lines are left out for this many heads × positions</p>';
  }
  onTokenHover(undefined);
}

/** Activation patching over heads (and positions): clean head outputs into the corrupted run, measured by the logit difference. */
function runPatching(): void {
  update((m) => {
    const clean = checkedTokens(m, state.prompt);
    const corrupted = checkedTokens(m, state.corrupted);
    if (corrupted.length !== clean.length) throw new HeadlensError(`the corrupted prompt is ${corrupted.length} tokens and the prompt ${clean.length}`, 'patching needs prompts of the same length: change only the decisive word');
    const ans = answerId(m, state.answer, 'answer');
    const wrong = answerId(m, state.wrong, 'wrong answer');
    if (ans === undefined || wrong === undefined) throw new HeadlensError('patching measures the logit difference answer − wrong', 'fill in both the answer and the wrong answer');
    const byPos = $<HTMLInputElement>('by-pos').checked;
    const r = activationPatching(m, 'head-out', { clean: [clean], corrupted: [corrupted], metric: logitDiff(ans, wrong), byPos });
    const { n_layers, n_heads } = m.cfg;
    const grid: number[][] = Array.from({ length: n_layers }, () => new Array<number>(n_heads).fill(0));
    const table: string[] = [];
    if (byPos) {
      const strs = m.toStrTokens(clean);
      table.push(`<tr><th></th>${strs.map((s, p) => `<th>(${p}) ${esc(visible(s))}</th>`).join('')}</tr>`);
      for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) {
        const vals = strs.map((_, p) => r.get(l, p, h));
        grid[l][h] = vals.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
        table.push(`<tr><th>L${l}H${h}</th>${vals.map((v, p) => `<td data-head="L${l}H${h}" data-pos="${p}" data-value="${v}">${v.toFixed(2)}</td>`).join('')}</tr>`);
      }
    } else {
      table.push(`<tr><th></th>${Array.from({ length: n_heads }, (_, h) => `<th>H${h}</th>`).join('')}</tr>`);
      for (let l = 0; l < n_layers; l++) {
        const cells: string[] = [];
        for (let h = 0; h < n_heads; h++) {
          grid[l][h] = r.get(l, h);
          cells.push(`<td data-head="L${l}H${h}" data-value="${grid[l][h]}">${grid[l][h].toFixed(3)}</td>`);
        }
        table.push(`<tr><th>L${l}</th>${cells.join('')}</tr>`);
      }
    }
    const meta = r.meta as { clean: number; corrupted: number };
    $('patching').innerHTML = [
      `<p>logit difference ${esc(JSON.stringify(state.answer))} − ${esc(JSON.stringify(state.wrong))}: clean ${meta.clean.toFixed(3)}, corrupted ${meta.corrupted.toFixed(3)}; each cell is the corrupted run with that head's output${byPos ? ' at that position' : ''} taken from the clean run (denoising).</p>`,
      headGrid(grid, { title: 'activation patching', scoreLabel: byPos ? 'logit difference (the position with the largest effect)' : 'logit difference', diverging: true, top: 3, byMagnitude: true, cellSize: 36 }).svg,
      `<table class="hl-table patch">${table.join('')}</table>`,
    ].join('');
  }, { writeUrl: true });
}

/** Logit lens and DLA of the top heads, on the model without interventions. */
function runAttribution(): void {
  update((m) => {
    const ids = checkedTokens(m, state.prompt);
    const ans = answerId(m, state.answer, 'answer');
    const wrong = answerId(m, state.wrong, 'wrong answer');
    const lens = logitLensSummary(m, [ids], { answer: ans, topK: 3 });
    const tok = (id: number) => esc(visible(m.tokenizer!.decode([id])));
    const lensRows = lens.map((r) => `<tr><td>${r.layer}</td><td>${r.top.map((x) => `${tok(x.id)} ${x.prob.toFixed(3)}`).join(', ')}</td><td>${r.answerRank ?? '–'}</td><td>${r.answerLogProb === undefined ? '–' : Math.exp(r.answerLogProb).toFixed(4)}</td></tr>`);
    let dla = '';
    if (ans !== undefined) {
      const d = dlaPerHead(m, [ids], { answer: ans, wrong });
      const { n_layers, n_heads } = m.cfg;
      const heads: { label: string; v: number }[] = [];
      for (let l = 0; l < n_layers; l++) for (let h = 0; h < n_heads; h++) heads.push({ label: `L${l}H${h}`, v: d.get(l, h) });
      heads.sort((a, b) => Math.abs(b.v) - Math.abs(a.v));
      dla = `<h3>direct logit attribution of the top heads (${wrong === undefined ? 'answer logit' : 'logit difference'})</h3><table class="hl-table dla">${heads.slice(0, 6).map((x) => `<tr><td>${x.label}</td><td data-value="${x.v}">${signed(x.v)}</td></tr>`).join('')}</table>`;
    }
    $('attribution').innerHTML = `<h3>logit lens at the last token</h3><table class="hl-table lens"><tr><th>residual</th><th>top tokens</th><th>answer rank</th><th>answer probability</th></tr>${lensRows.join('')}</table>${dla}`;
  });
}

/** Shows the head scores of a `headlens scan` result (its JSON) for the loaded model. */
function showScan(text: string, file: string): void {
  const m = model;
  if (!m) return;
  let r: { model?: unknown; task?: unknown; scores?: unknown; top?: unknown };
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new HeadlensError(`${file} is not JSON: ${(e as Error).message}`, 'pick the file headlens scan --out wrote');
  }
  const { n_layers, n_heads } = m.cfg;
  const scores = r?.scores;
  const ok = Array.isArray(scores) && scores.every((row) => Array.isArray(row) && row.every((x) => typeof x === 'number'));
  if (!ok) throw new HeadlensError(`${file} is not a headlens scan result: it has no "scores" table [layer][head] of numbers`, 'pick the file headlens scan --out wrote');
  const table = scores as number[][];
  if (table.length !== n_layers || table.some((row) => row.length !== n_heads)) {
    throw new HeadlensError(`${file} scores ${table.length} layers × ${table[0]?.length ?? 0} heads (model ${String(r.model)}), but ${modelLabel} has ${n_layers} × ${n_heads}`, 'load the scan of this model, or pick its model');
  }
  const task = typeof r.task === 'string' ? r.task : 'scan';
  const ranked = table.flatMap((row, l) => row.map((v, h) => ({ label: `L${l}H${h}`, v }))).sort((a, b) => b.v - a.v).slice(0, 5);
  $('scores').innerHTML = [
    `<p>${esc(task)} scores of ${esc(String(r.model ?? 'a model'))} from ${esc(file)}; top heads: ${ranked.map((x) => `<button class="show-scored" data-head="${x.label}" data-value="${x.v}">${x.label} ${x.v.toFixed(3)}</button>`).join(' ')}</p>`,
    headGrid(table, { title: `${task} scores`, scoreLabel: task, top: 3, cellSize: 36 }).svg,
  ].join('');
}

/** Marks the page busy and runs `f` once the browser has had a moment to paint that (long steps block the page). */
function later(f: () => void): void {
  document.body.dataset.state = 'busy';
  $('timing').textContent = 'computing…';
  setTimeout(f, 30);
}

/** Runs an async step with the page's busy/error handling. */
async function step(f: () => Promise<void> | void): Promise<void> {
  document.body.dataset.state = 'busy';
  clearError();
  try {
    await f();
    recompute();
  } catch (e) {
    showError(e);
  }
}

function bindFields(): void {
  const fields: [keyof State, string][] = [['prompt', 'prompt'], ['answer', 'answer'], ['wrong', 'wrong'], ['corrupted', 'corrupted']];
  for (const [key, id] of fields) {
    const el = $<HTMLInputElement>(id);
    el.value = state[key] as string;
    el.addEventListener('change', () => {
      (state[key] as string) = el.value;
      if (key === 'corrupted') writeUrl();
      else recompute();
    });
  }
  const kind = $<HTMLSelectElement>('kind');
  kind.value = state.kind;
  kind.addEventListener('change', () => {
    state.kind = kind.value as AblationKind;
    recompute();
  });
  $('grid').addEventListener('click', (ev) => {
    const t = ev.target as HTMLElement;
    const head = t.dataset.head;
    if (!head) return;
    if (t.classList.contains('ablate')) {
      state.ablate = (t as HTMLInputElement).checked ? [...state.ablate, head] : state.ablate.filter((h) => h !== head);
      recompute();
    } else if (t.classList.contains('show')) {
      state.head = head;
      writeUrl();
      drawGrid(currentPatterns);
      drawPattern(currentStrs, currentPatterns);
    }
  });
  $('clear').addEventListener('click', () => {
    state.ablate = [];
    recompute();
  });
  $('tokens').addEventListener('mouseover', (ev) => {
    const p = (ev.target as HTMLElement).dataset.pos;
    if (p !== undefined) onTokenHover(Number(p));
  });
  $('tokens').addEventListener('mouseleave', () => onTokenHover(undefined));
  $('patch').addEventListener('click', () => later(runPatching));
  $('attribute').addEventListener('click', () => later(runAttribution));
  const select = $<HTMLSelectElement>('model');
  select.addEventListener('change', () => {
    state.model = select.value;
    void step(() => loadServed(select.value));
  });
  const picker = $<HTMLInputElement>('files');
  picker.addEventListener('change', () => {
    const files = Array.from(picker.files ?? []);
    void step(async () => {
      await loadPicked(files);
      state.model = '';
    });
  });
  const scanFile = $<HTMLInputElement>('scan-file');
  scanFile.addEventListener('change', () => {
    const f = scanFile.files?.[0];
    if (!f) return;
    clearError();
    f.text().then((t) => {
      try {
        showScan(t, f.name);
      } catch (e) {
        showError(e);
      }
    }, showError);
  });
  $('scores').addEventListener('click', (ev) => {
    const head = (ev.target as HTMLElement).dataset.head;
    if (!head) return;
    state.head = head;
    writeUrl();
    drawGrid(currentPatterns);
    drawPattern(currentStrs, currentPatterns);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (ev) => ev.preventDefault());
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    const files = Array.from(ev.dataTransfer?.files ?? []);
    void step(async () => {
      await loadPicked(files);
      state.model = '';
    });
  });
}

async function main(): Promise<void> {
  document.body.dataset.state = 'loading';
  bindFields();
  try {
    const choice = await initBackend();
    $('backend').textContent = `${choice.name} — ${choice.reason}`;
    document.body.dataset.backend = choice.name;
    const list = (await (await fetch('models.json')).json()) as { models: string[]; default: string };
    const select = $<HTMLSelectElement>('model');
    select.innerHTML = list.models.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join('');
    if (!state.model || !list.models.includes(state.model)) state.model = list.default;
    select.value = state.model;
    await loadServed(state.model);
  } catch (e) {
    showError(e);
    return;
  }
  recompute();
}

void main();
