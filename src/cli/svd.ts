/**
 * `headlens svd`: the singular values of one head's QK (W_Q·W_Kᵀ) or OV (W_V·W_O) circuit and, when the
 * model has a tokenizer, the tokens that best match the leading singular vectors (circuitSvd in
 * src/interp/weights/svd_interpreter.ts computes them; this file prints them).
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { decomposeAttentionScore, type ScoreDecomposition } from '../interp/attribution/sparse_attention.js';
import { circuitSvdAsync, type CircuitSvd, type TokenScore } from '../interp/weights/svd_interpreter.js';
import { bosOptions, defineCommand, modelOption, nonNegativeInt, option, positiveNumber } from './options.js';
import { prependBosFlag, promptRows } from './token_args.js';
import { withModel } from './with_model.js';

interface TopToken {
  id: number;
  token: string;
  value: number;
}

/** What `headlens svd --json` prints (snake_case, as every JSON the CLI writes). */
export interface SvdReport {
  model: string;
  head: string;
  layer: number;
  head_index: number;
  circuit: 'qk' | 'ov';
  singular_values: number[];
  top_tokens?: { index: number; singular_value: number; input_tokens: TopToken[]; output_tokens: TopToken[] }[];
}

export function svdReport(model: string, r: CircuitSvd): SvdReport {
  const tokens = (ts: TokenScore[]): TopToken[] => ts.map(({ id, token, value }) => ({ id, token, value }));
  return {
    model,
    head: r.label,
    layer: r.layer,
    head_index: r.head,
    circuit: r.circuit,
    singular_values: r.singularValues,
    ...(r.directions
      ? { top_tokens: r.directions.map((d) => ({ index: d.index, singular_value: d.singularValue, input_tokens: tokens(d.inputTokens), output_tokens: tokens(d.outputTokens) })) }
      : {}),
  };
}

export function formatSvd(r: SvdReport): string {
  const lines = [`${r.head} ${r.circuit.toUpperCase()} circuit of ${r.model}: ${r.singular_values.length} singular values`, r.singular_values.map((s) => s.toPrecision(5)).join(' ')];
  const [inName, outName] = r.circuit === 'qk' ? ['query', 'key'] : ['source', 'output'];
  for (const d of r.top_tokens ?? []) {
    const show = (t: TopToken[]) => t.map((x) => JSON.stringify(x.token)).join(' ');
    lines.push(`σ${d.index} = ${d.singular_value.toPrecision(5)}`, `  ${inName} tokens: ${show(d.input_tokens)}`, `  ${outName} tokens: ${show(d.output_tokens)}`);
  }
  return lines.join('\n');
}

/** What `headlens svd --prompt … --json` prints: the score split by QK's singular components (Franco & Crovella 2024). */
export interface ScoreReport {
  model: string;
  head: string;
  query_pos: number;
  key_pos: number;
  contrast_key_pos?: number;
  score: number;
  attention: number;
  fraction: number;
  measure: 'projection' | 'exact';
  terms: { component: number; singular_value: number; term: number }[];
  carrying: number[];
  carried: number;
  upstream: { label: string; query: number; key: number }[];
}

export function scoreReport(model: string, d: ScoreDecomposition, top: number): ScoreReport {
  return {
    model,
    head: d.label,
    query_pos: d.queryPos,
    key_pos: d.keyPos,
    ...(d.contrastKeyPos === undefined ? {} : { contrast_key_pos: d.contrastKeyPos }),
    score: d.score,
    attention: d.attention,
    fraction: d.fraction,
    measure: d.measure,
    terms: d.terms.map((t) => ({ component: t.component, singular_value: t.singularValue, term: t.term })),
    carrying: d.carrying,
    carried: d.carried,
    upstream: d.upstream.slice(0, top).map((u) => ({ label: u.label, query: u.query, key: u.key })),
  };
}

export function formatScore(r: ScoreReport): string {
  const what = r.contrast_key_pos === undefined ? `score ${r.query_pos}→${r.key_pos}` : `score ${r.query_pos}→${r.key_pos} − ${r.query_pos}→${r.contrast_key_pos}`;
  const lines = [
    `${r.head} of ${r.model}: ${what} = ${r.score.toPrecision(5)} (q·k before the scale; attention ${r.attention.toFixed(3)}); ${r.carrying.length} of ${r.terms.length} components carry it past ${r.fraction} of it`,
  ];
  for (const t of r.terms.filter((x) => r.carrying.includes(x.component))) lines.push(`  σ${t.component} = ${t.singular_value.toPrecision(5)}: term ${t.term.toPrecision(5)}`);
  lines.push(`upstream parts through the carrying components (${r.measure}; query side, key side):`);
  for (const u of r.upstream) lines.push(`  ${u.label.padEnd(10)} ${u.query.toFixed(4).padStart(12)} ${u.key.toFixed(4).padStart(12)}`);
  return lines.join('\n');
}

export const svdCommand = defineCommand({
  summary: "the singular values of one head's QK or OV circuit, and the tokens its leading directions read and write",
  options: {
    model: modelOption(),
    layer: option(nonNegativeInt(), { description: 'the layer of the head', value: 'L', example: '0' }),
    head: option(nonNegativeInt(), { description: 'the head within the layer', value: 'H', example: '0' }),
    circuit: option(z.enum(['qk', 'ov']), { description: 'QK (W_Q·W_Kᵀ: where the head looks) or OV (W_V·W_O: what it moves)' }),
    k: option(nonNegativeInt().default(3), { description: 'how many leading directions to read in tokens (1..d_head)', value: 'N', example: '3' }),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
    prompt: option(z.string().optional(), {
      description: 'with --circuit qk: split this prompt\'s score at --query-pos → --key-pos into QK\'s singular components and the upstream parts writing along them (sparse attention decomposition)',
      value: 'TEXT|IDS',
      example: '"When Mary and John went to the store, John gave a drink to"',
    }),
    'query-pos': option(nonNegativeInt().optional(), { description: 'with --prompt: the query position (default: the last)', value: 'Q', example: '14' }),
    'key-pos': option(nonNegativeInt().optional(), { description: 'with --prompt: the key position', value: 'K', example: '2' }),
    'contrast-key-pos': option(nonNegativeInt().optional(), { description: 'with --prompt: decompose score(Q, K) − score(Q, this key) instead', value: 'K2', example: '10' }),
    fraction: option(positiveNumber().optional(), { description: 'with --prompt: the carrying components must pass this share of the score (default 1, Franco & Crovella\'s full tracing)', value: 'F', example: '0.7' }),
    measure: option(z.enum(['projection', 'exact']).optional(), { description: 'with --prompt: projection (theirs: sign·√σ·projection) or exact (additive shares of the score)' }),
    top: option(nonNegativeInt().default(8), { description: 'with --prompt: upstream parts to list', value: 'N', example: '8' }),
    ...bosOptions(),
  },
  async run(v) {
    await withModel(v, async (model) => {
      if (v.prompt !== undefined) {
        if (v.circuit !== 'qk') throw new HeadlensError('--prompt decomposes an attention score, which is the QK circuit', 'pass --circuit qk');
        const rows = promptRows(model, v.prompt, 'prompt', prependBosFlag(v));
        if (rows.length !== 1) throw new HeadlensError(`--prompt has ${rows.length} rows`, 'give one prompt');
        const tokens = rows[0];
        if (v['key-pos'] === undefined) throw new HeadlensError('--prompt needs --key-pos', 'e.g. --key-pos 0');
        const q = v['query-pos'] ?? tokens.length - 1;
        const d = decomposeAttentionScore(model, tokens, v.layer, v.head, q, v['key-pos'], { fraction: v.fraction, measure: v.measure, contrastKeyPos: v['contrast-key-pos'] });
        const report = scoreReport(model.cfg.model_name, d, v.top);
        console.log(v.json ? JSON.stringify(report) : formatScore(report));
        return;
      }
      if (v.k < 1 || v.k > model.cfg.d_head) throw new HeadlensError(`--k ${v.k} is not in 1..d_head (${model.cfg.d_head})`, `use --k 1..${model.cfg.d_head}`);
      const report = svdReport(model.cfg.model_name, await circuitSvdAsync(model, v.layer, v.head, v.circuit, { k: v.k }));
      console.log(v.json ? JSON.stringify(report) : formatSvd(report));
    });
  },
});
