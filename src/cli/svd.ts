/**
 * `headlens svd`: the singular values of one head's QK (W_Q·W_Kᵀ) or OV (W_V·W_O) circuit and, when the
 * model has a tokenizer, the tokens that best match the leading singular vectors (circuitSvd in
 * src/interp/weights/svd_interpreter.ts computes them; this file prints them).
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { circuitSvd, type CircuitSvd, type TokenScore } from '../interp/weights/svd_interpreter.js';
import { defineCommand, modelOption, nonNegativeInt, option } from './options.js';
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

export const svdCommand = defineCommand({
  summary: "the singular values of one head's QK or OV circuit, and the tokens its leading directions read and write",
  options: {
    model: modelOption(),
    layer: option(nonNegativeInt(), { description: 'the layer of the head', value: 'L', example: '0' }),
    head: option(nonNegativeInt(), { description: 'the head within the layer', value: 'H', example: '0' }),
    circuit: option(z.enum(['qk', 'ov']), { description: 'QK (W_Q·W_Kᵀ: where the head looks) or OV (W_V·W_O: what it moves)' }),
    k: option(nonNegativeInt().default(3), { description: 'how many leading directions to read in tokens (1..d_head)', value: 'N', example: '3' }),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
  },
  async run(v) {
    await withModel(v, (model) => {
      if (v.k < 1 || v.k > model.cfg.d_head) throw new HeadlensError(`--k ${v.k} is not in 1..d_head (${model.cfg.d_head})`, `use --k 1..${model.cfg.d_head}`);
      const report = svdReport(model.cfg.model_name, circuitSvd(model, v.layer, v.head, v.circuit, { k: v.k }));
      console.log(v.json ? JSON.stringify(report) : formatSvd(report));
    });
  },
});
