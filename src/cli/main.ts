#!/usr/bin/env node
/**
 * The `headlens` command. Bad input exits with code 2 and one line naming the problem and the fix;
 * anything else that goes wrong is a bug and exits with 1 and its stack.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HeadlensError } from '../errors.js';

const USAGE = `headlens — attention heads, opened up

usage:
  headlens info  --model M [--backend B] [--json]
  headlens cache --model M (--tokens "1,2,3;4,5,6" | --text "…") [--names all|NAME,NAME] --out FILE.safetensors [--backend B]
  headlens demo  [--model M] [--text "…"] [--out DIR] [--backend B]
  headlens patch --model M --clean TEXT|IDS --corrupted TEXT|IDS --answer TOKEN --wrong TOKEN --component C [--by-pos] [--direction denoising|noising] --out FILE.json [--backend B]
  headlens svd   --model M --layer L --head H --circuit qk|ov [--k N] [--json] [--backend B]
  headlens composition --model M --kind q|k|v [--top N] [--json] [--backend B]
  headlens bench [--quick | --preset gpt2-small|quick|tiny] [--batch N] [--pos N] [--ablate] [--json] [--out FILE.json] [--backend B]
  headlens train --recipe NAME --out DIR [--steps N] [--seed S] [--lr X] [--batch-size B] [--init-std S] [--eval-every N] [--checkpoint-every N]
                 [--mix KIND=SHARE,…] [--head-dropout P] [--attention-target LxHy[:W][@PAIRS],…]
                 [--resume DIR | --init DIR] [--max-seconds T] [--backend B]
  headlens findings --model M [--tasks retrieval,ioi,temporal,correct-letter] [--backend B]
  headlens scan  --model M --task induction|prev-token|duplicate|sink|retrieval|streaming|temporal|correct-letter|ioi [--samples N] [--seed S] [--causal [--k K] [--draws D]] [--resume] [--checkpoint FILE] (--json | --out FILE.json | --report FILE.html) [--backend B]

C is resid-pre, resid-mid, resid-post, attn-out, mlp-out, head-out, head-q, head-k, head-v or head-pattern; IDS "1,2,3"; TOKEN text of one token or an id.
M is a model folder (config.json + model.safetensors), a shipped model's name, or a hub id (online only).
B is webgpu, tensorflow, wasm or cpu (default: the best available; env HEADLENS_BACKEND).`;

export interface Command {
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | string[] | undefined>): Promise<void>;
}

const COMMON = { backend: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

// commands load on demand, so `headlens info` does not pay for d3, Plot and every analysis module
const COMMANDS: Record<string, () => Promise<Command>> = {
  info: async () => (await import('./info.js')).infoCommand,
  cache: async () => (await import('./cache.js')).cacheCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  train: async () => (await import('./train.js')).trainCommand,
  bench: async () => (await import('./bench.js')).benchCommand,
  svd: async () => (await import('./svd.js')).svdCommand,
  composition: async () => (await import('./composition.js')).compositionCommand,
  patch: async () => (await import('./patch.js')).patchCommand,
  scan: async () => (await import('./scan.js')).scanCommand,
  findings: async () => (await import('./findings.js')).findingsCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  try {
    const load = COMMANDS[name];
    if (!load) throw new HeadlensError(`unknown command '${name}'`, `use one of ${Object.keys(COMMANDS).join(', ')} (headlens help)`);
    const cmd = await load();
    let values: Record<string, string | boolean | string[] | undefined>;
    try {
      ({ values } = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, strict: true, allowPositionals: false }) as { values: typeof values });
    } catch (e) {
      throw new HeadlensError(`${name}: ${(e as Error).message}`, 'see headlens help');
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    await cmd.run(values);
    return 0;
  } catch (e) {
    if (e instanceof HeadlensError) {
      console.error(`headlens: ${e.message}`);
      return 2;
    }
    console.error(e);
    return 1;
  }
}

/** An optional positive-integer option (undefined when absent), or a HeadlensError naming it. */
export function positiveInt(v: unknown, key: string, example = 8): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new HeadlensError(`--${key} ${String(v)} is not a positive integer`, `e.g. --${key} ${example}`);
  return n;
}

/** A required string option, or a HeadlensError naming it. */
export function required(values: Record<string, unknown>, key: string, example: string): string {
  const v = values[key];
  if (typeof v !== 'string' || v === '') throw new HeadlensError(`--${key} is required`, `e.g. --${key} ${example}`);
  return v;
}

const invokedDirectly = process.argv[1] && /headlens$|main\.[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
