/**
 * Options declared once (src/cli/options.ts): the same declaration parses, checks, fills defaults and writes
 * the usage text. In-process and without a model, so it is quick.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HeadlensError } from '../src/errors.js';
import { inProcess } from './cli_in_process.js';
import { checkOptions, commandHelp, defineCommand, nonNegativeInt, option, parseArgsOptions, positiveInt, synopsis } from '../src/cli/options.js';


const example = defineCommand({
  summary: 'an example',
  options: {
    model: option(z.string(), { description: 'the model', value: 'M', example: 'toy-lm' }),
    layer: option(nonNegativeInt(), { description: 'a layer', value: 'L', example: '0' }),
    k: option(positiveInt().default(3), { description: 'how many', value: 'N', example: '3' }),
    circuit: option(z.enum(['qk', 'ov']).default('ov'), { description: 'which circuit' }),
    text: option(z.array(z.string()).optional(), { description: 'texts', value: 'T' }),
    json: option(z.boolean().optional(), { description: 'JSON out' }),
  },
  async run() {},
});

describe('command options', () => {
  it('checkOptions(values) converts, fills defaults and keeps what was given', () => {
    const v = checkOptions('example', example.options, { model: 'm', layer: '2', text: ['a', 'b'] });
    expect(v).toEqual({ model: 'm', layer: 2, k: 3, circuit: 'ov', text: ['a', 'b'] });
  });

  it('checkOptions names the flag, the problem and the fix of the first bad option', () => {
    const e = (raw: Record<string, unknown>) => {
      try {
        checkOptions('example', example.options, raw);
      } catch (err) {
        expect(err).toBeInstanceOf(HeadlensError);
        return err as HeadlensError;
      }
      throw new Error('no error');
    };
    expect(e({ layer: '0' }).message).toBe('--model is required (e.g. --model toy-lm)');
    expect(e({ model: '', layer: '0' }).message).toBe('--model is required (e.g. --model toy-lm)');
    expect(e({ model: 'm', layer: '-1' }).message).toBe("--layer '-1' is not a non-negative integer (e.g. --layer 0)");
    expect(e({ model: 'm', layer: '0', k: '0' }).message).toBe('--k 0 is not a positive integer (e.g. --k 3)');
    expect(e({ model: 'm', layer: '0', circuit: 'vo' }).message).toBe("--circuit 'vo' is not qk or ov (use --circuit qk or --circuit ov)");
  });

  it('parseArgsOptions gives parseArgs the kind of each option, with the common ones', () => {
    expect(parseArgsOptions(example.options)).toEqual({
      backend: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      model: { type: 'string' },
      layer: { type: 'string' },
      k: { type: 'string' },
      circuit: { type: 'string' },
      text: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    });
  });

  it('synopsis and commandHelp come from the same declaration: required, optional, defaults', () => {
    expect(synopsis('example', example.options)).toBe('headlens example --model M --layer L [--k N] [--circuit qk|ov] [--text T …] [--json] [--backend B]');
    const help = commandHelp('example', example);
    expect(help).toMatch(/--model M\s+the model \(required\)/);
    expect(help).toMatch(/--k N\s+how many \(default: 3\)/);
    expect(help).toMatch(/--circuit qk\|ov\s+which circuit \(default: ov\)/);
    expect(help).toMatch(/-h, --help\s+print this help/);
  });
});

describe('headlens help', () => {
  it('headlens help shows every command with its options; headlens svd --help the options of svd with defaults', async () => {
    const all = await inProcess('help');
    expect(all.code).toBe(0);
    for (const line of [
      'headlens info --model M [--json] [--backend B]',
      'headlens svd --model M --layer L --head H --circuit qk|ov [--k N] [--json] [--prompt TEXT|IDS] [--query-pos Q] [--key-pos K] [--contrast-key-pos K2] [--fraction F] [--measure projection|exact] [--top N] [--prepend-bos] [--no-prepend-bos] [--backend B]',
      'headlens composition --model M --kind q|k|v [--top N] [--json] [--backend B]',
    ]) expect(all.stdout).toContain(line);
    for (const name of ['cache', 'demo', 'patch', 'bench', 'train', 'findings', 'scan', 'flow', 'function-vector', 'worker', 'collect']) expect(all.stdout).toContain(`headlens ${name} `);
    const svd = await inProcess('svd', '--help');
    expect(svd.code).toBe(0);
    expect(svd.stdout).toMatch(/^usage: headlens svd /);
    expect(svd.stdout).toMatch(/--k N\s+.*\(default: 3\)/);
    expect(await inProcess('help', 'svd')).toEqual(svd);
  });
});
