/**
 * `headlens flow`: attention rollout and attention flow (Abnar & Zuidema 2020) of one prompt into one output
 * position, token by token, beside input-gradient and blank-out importance and the Spearman correlations the
 * paper reports (src/interp/attribution/attention_flow.ts computes them; this file prints them and can write
 * the atlas section that shows them).
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { flowCorrelationsAsync, type FlowCorrelations } from '../interp/attribution/attention_flow.js';
import { writeAtlas } from '../viz/atlas.js';
import { bosOptions, defineCommand, integer, modelOption, option } from './options.js';
import { prependBosFlag, promptRows, tokenId } from './token_args.js';
import { withModel } from './with_model.js';

/** What `headlens flow --json` prints (snake_case, as every JSON the CLI writes). */
export interface FlowReport {
  model: string;
  tokens: number[];
  token_strings?: string[];
  output_pos: number;
  answer: number | null;
  blank: number | null;
  raw_attention: number[];
  rollout: number[];
  flow: number[];
  input_gradient: number[];
  blank_out?: number[];
  spearman: Record<string, Record<string, number>>;
}

export function flowReport(model: HookedTransformer, tokens: number[], r: FlowCorrelations, answer: number | undefined, blank: number | undefined): FlowReport {
  const spearman: FlowReport['spearman'] = {};
  for (const m of ['raw', 'rollout', 'flow'] as const) {
    spearman[m] = { input_gradient: r.rho[m].gradient.perPrompt[0] };
    if (r.rho[m].blankOut) spearman[m].blank_out = r.rho[m].blankOut!.perPrompt[0];
  }
  return {
    model: model.cfg.model_name,
    tokens,
    ...(model.tokenizer ? { token_strings: model.toStrTokens(tokens) } : {}),
    output_pos: r.pos,
    answer: answer ?? null,
    blank: blank ?? null,
    raw_attention: r.scores.raw[0],
    rollout: r.scores.rollout[0],
    flow: r.scores.flow[0],
    input_gradient: r.importance.gradient[0],
    ...(r.importance.blankOut ? { blank_out: r.importance.blankOut[0] } : {}),
    spearman,
  };
}

const f3 = (x: number) => (Number.isNaN(x) ? '  n/a' : x.toFixed(3).padStart(6));

export function formatFlow(r: FlowReport): string {
  const names = r.token_strings ?? r.tokens.map(String);
  const lines = [`${r.model}: rollout and attention flow into position ${r.output_pos} (${JSON.stringify(names[r.output_pos])})`];
  lines.push(`  ${'token'.padEnd(18)} ${'attn'.padStart(6)} ${'rollout'.padStart(7)} ${'flow'.padStart(6)} ${'grad'.padStart(7)}${r.blank_out ? ' blank-out' : ''}`);
  for (let k = 0; k <= r.output_pos; k++) {
    const label = `${k} ${JSON.stringify(names[k])}`.slice(0, 18).padEnd(18);
    lines.push(`  ${label} ${f3(r.raw_attention[k])} ${f3(r.rollout[k]).padStart(7)} ${f3(r.flow[k])} ${r.input_gradient[k].toPrecision(3).padStart(7)}${r.blank_out ? ` ${f3(r.blank_out[k]).padStart(9)}` : ''}`);
  }
  lines.push("Spearman's ρ with the importances (over the tokens above):");
  for (const [m, rho] of Object.entries(r.spearman)) lines.push(`  ${m.padEnd(8)} ${Object.entries(rho).map(([k, v]) => `${k} ${f3(v)}`).join('   ')}`);
  return lines.join('\n');
}

/** The tokenizer's [UNK] as the blank token, when it has one token for it. */
function defaultBlank(model: HookedTransformer): number | undefined {
  if (!model.tokenizer) return undefined;
  try {
    const ids = model.tokenizer.encode('[UNK]');
    return ids.length === 1 ? ids[0] : undefined;
  } catch {
    return undefined;
  }
}

export const flowCommand = defineCommand({
  summary: 'attention rollout and attention flow of one prompt, token by token, against input-gradient and blank-out importance',
  options: {
    model: modelOption(),
    prompt: option(z.string(), { description: 'the prompt: text, or token ids "1,2,3"', value: 'TEXT|IDS', example: '"When Mary and John went to the store, John gave a drink to"' }),
    pos: option(integer().default(-1), { description: 'the output position traced back (negative: from the end, written --pos=-2)', value: 'P', example: '5' }),
    answer: option(z.string().optional(), { description: 'the answer at that position whose gradient and probability are taken: one token, or its id', value: 'TOKEN', default: "the model's top token" }),
    blank: option(z.string().optional(), { description: 'the token that blanks out an input token: one token, or its id', value: 'TOKEN', default: "'[UNK]' where the tokenizer has it, else no blank-out" }),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
    atlas: option(z.string().optional(), { description: 'also write a page with rollout beside flow (the atlas section)', value: 'FILE.html' }),
    ...bosOptions(),
  },
  async run(v) {
    await withModel(v, async (model) => {
      const rows = promptRows(model, v.prompt, 'prompt', prependBosFlag(v));
      if (rows.length !== 1) throw new HeadlensError(`--prompt holds ${rows.length} rows`, 'give one prompt');
      const answer = v.answer === undefined ? undefined : tokenId(model, v.answer, 'answer');
      const blank = v.blank === undefined ? defaultBlank(model) : tokenId(model, v.blank, 'blank');
      const r = await flowCorrelationsAsync(model, rows, { pos: v.pos, answer, blank }); // read with await: runs on WebGPU in Node
      const report = flowReport(model, rows[0], r, answer, blank);
      console.log(v.json ? JSON.stringify(report) : formatFlow(report));
      if (v.atlas) {
        const n = r.pos + 1;
        const tokens = (report.token_strings ?? rows[0].map(String)).slice(0, n);
        const columns = [
          { name: 'rollout', values: report.rollout },
          { name: 'flow', values: report.flow },
          { name: 'input gradient', values: report.input_gradient },
          ...(report.blank_out ? [{ name: 'blank-out', values: report.blank_out }] : []),
        ];
        const rho = Object.entries(report.spearman).flatMap(([m, x]) => Object.entries(x).map(([k, val]) => `${m} vs ${k.replace('_', ' ')}: ρ = ${Number.isNaN(val) ? 'undefined' : val.toFixed(3)}`));
        const file = writeAtlas(v.atlas, { title: `attention flow: ${model.cfg.model_name}`, model: { name: model.cfg.model_name }, scorers: [], tokenFlow: { tokens, outputPos: r.pos, columns, rho } });
        console.error(`wrote ${file}`);
      }
    });
  },
});
