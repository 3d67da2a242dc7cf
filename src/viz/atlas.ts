/**
 * The head atlas: one self-contained HTML page that puts a model's heads side by side — its model card, a
 * head grid for every scorer, the top heads' attention maps (with the hover explorer), the QK/OV SVD
 * spectra and top tokens, the circuit graph and a logit-lens table. It takes plain data, so whatever
 * computed the scores (headlens scan, a notebook, another library) can write one.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import { attentionExplorerFragment, attentionPatternSVG } from './attention_pattern.js';
import { circuitGraph, type CircuitEdge } from './circuit_graph.js';
import { ATTENTION_EXPLORER_JS, TOKEN_LINES_JS } from './client_scripts.js';
import { headEmbeddingPlot, type EmbeddedHeadPoint } from './head_embedding.js';
import { headGrid, rankedHeads } from './head_grid.js';
import { layerAttention, type LayerAttentionSeries } from './layer_attention.js';
import { esc, htmlPage } from './html.js';
import { logitLensTable, type LogitLensData } from './logit_lens.js';
import { svdSpectrum, type Spectrum } from './svd_spectrum.js';
import { tokenLines } from './token_lines.js';
import { tokenScores, type TokenScoreColumn } from './token_scores.js';
import { topTokenTable, type TopTokenRow } from './top_token_table.js';

export interface AtlasScorer {
  /** e.g. 'induction', 'previous token'. */
  name: string;
  /** One line on what the score measures and where it comes from. Default: none. */
  description?: string;
  /** Scores [layer][head]. */
  scores: number[][];
  /** Signed scores (colour diverges around 0, heads ranked by |score|). Default: false. */
  diverging?: boolean;
}

export interface AtlasData {
  /** Page title. Default: `head atlas: <model name>`. */
  title?: string;
  /** The model card: name → value, in order (e.g. from `headlens info --json`). Must hold `name` or `model_name`. */
  model: Record<string, string | number | boolean | null>;
  /** Head scorers, one head grid each. */
  scorers: AtlasScorer[];
  /** Tokens of the prompt whose attention is shown (token ids passed as numbers from untyped code are shown as digits). */
  tokens?: string[];
  /** Attention on that prompt [layer][head][query_pos][key_pos]. */
  patterns?: number[][][][];
  /** Heads per scorer whose attention maps are shown (the union over scorers). Default: 3. */
  topPerScorer?: number;
  /** SVD spectra, one chart each (e.g. QK and OV of the top heads). Default: none. */
  spectra?: { title: string; spectra: Spectrum[] }[];
  /** Top-token tables (e.g. the OV circuit's first singular directions). Default: none. */
  topTokens?: { title: string; rows: TopTokenRow[] }[];
  /** A circuit graph. Default: none. */
  circuit?: { title?: string; edges: CircuitEdge[] };
  /** A logit-lens table. Default: none. */
  logitLens?: LogitLensData;
  /** A sentence under the title (what was run, on what data). Default: none. */
  note?: string;
  /**
   * Attention rollout beside attention flow (Abnar & Zuidema 2020), and any importance they are compared with,
   * per input token of one prompt, traced from `outputPos`; `rho` lines (e.g. Spearman's ρ with the
   * importances) print under the table. Default: none.
   */
  tokenFlow?: { title?: string; tokens: string[]; outputPos: number; columns: TokenScoreColumn[]; rho?: string[] };
  /**
   * What the heads look at (Clark et al. 2019): panels of average attention per head against layer (their
   * Figure 2), each with its series, and the heads embedded by their attention distances, coloured by layer
   * (their Figure 6); `note` says what was run. Default: none.
   */
  lookAt?: { panels: { title: string; series: LayerAttentionSeries[]; means?: boolean; yLabel?: string }[]; embedding?: { title?: string; points: EmbeddedHeadPoint[]; note?: string }; note?: string };
}

/** The heads shown in the attention section: each scorer's top heads, in scorer order, no repeats. */
export function atlasHeads(data: AtlasData): { layer: number; head: number; label: string; why: string }[] {
  const k = data.topPerScorer ?? 3;
  const seen = new Map<string, { layer: number; head: number; label: string; why: string }>();
  for (const s of data.scorers) {
    for (const t of rankedHeads(s.scores, k, s.diverging)) {
      const prev = seen.get(t.label);
      if (prev) prev.why += `, ${s.name}`;
      else seen.set(t.label, { layer: t.layer, head: t.head, label: t.label, why: s.name });
    }
  }
  return [...seen.values()];
}

/** The atlas page as one HTML string. */
export function atlasHTML(data: AtlasData): string {
  const name = String(data.model.name ?? data.model.model_name ?? '');
  if (!name) throw new HeadlensError('atlas: the model card has no name', "add model.name (or model_name)");
  if (data.patterns && !data.tokens) throw new HeadlensError('atlas: patterns given without tokens', 'pass the tokens of the prompt the patterns come from');
  // token ids are fine as labels; anything else (an object, undefined) is named here rather than failing in a string method
  if (data.tokens) {
    const bad = (data.tokens as unknown[]).findIndex((t) => typeof t !== 'string' && !(typeof t === 'number' && Number.isFinite(t)));
    if (bad >= 0) throw new HeadlensError(`atlas: token ${bad} is ${JSON.stringify(data.tokens[bad]) ?? String(data.tokens[bad])}, not a string or a number`, 'pass the tokens as strings (model.tokenLabels(ids) or model.toStrTokens(…)), or as token ids');
    data = { ...data, tokens: data.tokens.map(String) };
  }
  const tokens = data.tokens as string[] | undefined;
  const title = data.title ?? `head atlas: ${name}`;
  const body: string[] = [`<h1>${esc(title)}</h1>`];
  if (data.note) body.push(`<p>${esc(data.note)}</p>`);
  const contents: string[] = ['model card', 'head scores'];
  if (data.patterns && atlasHeads(data).length > 0) contents.push('attention');
  if (data.spectra?.length || data.topTokens?.length) contents.push('QK / OV');
  if (data.circuit) contents.push('circuit');
  if (data.logitLens) contents.push('logit lens');
  if (data.tokenFlow) contents.push('attention flow');
  if (data.lookAt) contents.push('what heads look at');
  body.push(`<nav class="hl-note">${contents.map((c) => `<a href="#${c.replace(/\W+/g, '-')}">${esc(c)}</a>`).join(' · ')}</nav>`);

  body.push('<h2 id="model-card">model card</h2>');
  body.push(`<table class="hl-table hl-card">${Object.entries(data.model).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`).join('')}</table>`);

  body.push('<h2 id="head-scores">head scores</h2>', '<div style="display:flex;flex-wrap:wrap;gap:8px 32px">');
  for (const s of data.scorers) {
    const v = headGrid(s.scores, { title: s.name, scoreLabel: s.name, diverging: s.diverging, byMagnitude: s.diverging, top: data.topPerScorer ?? 3 });
    body.push('<section style="max-width:460px">', `<h3>${esc(s.name)}</h3>`);
    if (s.description) body.push(`<p class="hl-note">${esc(s.description)}</p>`);
    body.push(v.fragment, '</section>');
  }
  body.push('</div>');

  const scripts: string[] = [];
  const heads = atlasHeads(data);
  if (data.patterns && tokens && heads.length > 0) {
    const maps = heads.map((h) => data.patterns![h.layer][h.head]);
    const labels = heads.map((h) => `${h.label} (${h.why})`);
    body.push('<h2 id="attention">attention</h2>');
    body.push(`<p class="hl-note">The top heads of every scorer on the prompt. Pick a head and hover a token: source tokens are shaded by the weight the hovered token gives them.</p>`);
    body.push(attentionExplorerFragment(maps, tokens, labels));
    // one figure per head, wrapped: a single row of panels would shrink to illegibility on a long prompt
    const figs = heads.map((h, i) => `<figure>${attentionPatternSVG([maps[i]], { labels: tokens, headLabels: [h.label], title: h.label })}</figure>`);
    body.push(`<div style="display:flex;flex-wrap:wrap;gap:12px">${figs.join('\n')}</div>`);
    body.push('<h3>token lines</h3>', '<p class="hl-note">Weights below 0.08 are not drawn.</p>');
    body.push(tokenLines(data.patterns, { tokens, layer: heads[0]?.layer ?? 0, minWeight: 0.08 }).fragment.replace(/<script>[\s\S]*?<\/script>/g, ''));
    scripts.push(ATTENTION_EXPLORER_JS, TOKEN_LINES_JS);
  }

  if (data.spectra?.length || data.topTokens?.length) {
    body.push('<h2 id="QK-OV">QK / OV</h2>');
    for (const s of data.spectra ?? []) body.push(`<h3>${esc(s.title)}</h3>`, svdSpectrum(s.spectra, { title: s.title }).fragment);
    for (const t of data.topTokens ?? []) body.push(`<h3>${esc(t.title)}</h3>`, topTokenTable(t.rows, { title: t.title }).fragment);
  }
  if (data.circuit) {
    body.push('<h2 id="circuit">circuit</h2>', circuitGraph(data.circuit.edges, { title: data.circuit.title }).fragment);
  }
  if (data.logitLens) body.push('<h2 id="logit-lens">logit lens</h2>', logitLensTable(data.logitLens).fragment);
  if (data.tokenFlow) {
    const f = data.tokenFlow;
    body.push('<h2 id="attention-flow">attention flow</h2>');
    body.push(`<p class="hl-note">Where position ${f.outputPos}'s representation comes from, per input token: rollout multiplies the layers' head-averaged attention with the residual added (0.5·A + 0.5·I); flow is the maximum flow through the same layered graph (Abnar &amp; Zuidema 2020), normalised over the tokens.</p>`);
    body.push(tokenScores(f.tokens, f.columns, { title: f.title ?? 'rollout and flow', outputPos: f.outputPos }).fragment);
    if (f.rho?.length) body.push(`<ul class="hl-note">${f.rho.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>`);
  }
  if (data.lookAt) {
    const a = data.lookAt;
    body.push('<h2 id="what-heads-look-at">what heads look at</h2>');
    if (a.note) body.push(`<p class="hl-note">${esc(a.note)}</p>`);
    body.push('<div style="display:flex;flex-wrap:wrap;gap:8px 32px">');
    for (const p of a.panels) body.push('<section>', `<h3>${esc(p.title)}</h3>`, layerAttention(p.series, { title: p.title, means: p.means, yLabel: p.yLabel }).fragment, '</section>');
    if (a.embedding) {
      const title = a.embedding.title ?? 'heads embedded by attention distance';
      body.push('<section>', `<h3>${esc(title)}</h3>`, headEmbeddingPlot(a.embedding.points, { title }).fragment);
      if (a.embedding.note) body.push(`<p class="hl-note" style="max-width:420px">${esc(a.embedding.note)}</p>`);
      body.push('</section>');
    }
    body.push('</div>');
  }
  body.push(`<p class="hl-note">Written by headlens. Self-contained: no script or font is loaded from anywhere.</p>`);
  return htmlPage(title, body.join('\n'), scripts);
}

/** Writes the atlas page to `file` (folders made as needed) and returns the path. */
export function writeAtlas(file: string, data: AtlasData): string {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, atlasHTML(data));
  return file;
}
