#!/usr/bin/env node
/**
 * The `headlens` command. Bad input exits with code 2 and one line naming the problem and the fix;
 * anything else that goes wrong is a bug and exits with 1 and its stack.
 */
import { parseArgs } from 'node:util';
import { HeadlensError } from '../errors.js';
import { checkOptions, commandHelp, parseArgsOptions, usage, type Command } from './options.js';

// commands load on demand, so `headlens info` does not pay for d3, Plot and every analysis module
// (only `headlens help`, which shows every command's options, loads them all)
const COMMANDS: Record<string, () => Promise<Command>> = {
  info: async () => (await import('./info.js')).infoCommand,
  cache: async () => (await import('./cache.js')).cacheCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  patch: async () => (await import('./patch.js')).patchCommand,
  svd: async () => (await import('./svd.js')).svdCommand,
  composition: async () => (await import('./composition.js')).compositionCommand,
  bench: async () => (await import('./bench.js')).benchCommand,
  train: async () => (await import('./train.js')).trainCommand,
  findings: async () => (await import('./findings.js')).findingsCommand,
  scan: async () => (await import('./scan.js')).scanCommand,
  hooks: async () => (await import('./hooks.js')).hooksCommand,
  flow: async () => (await import('./flow.js')).flowCommand,
  'function-vector': async () => (await import('./function_vector.js')).functionVectorCommand,
  explore: async () => (await import('./explore.js')).exploreCommand,
  worker: async () => (await import('./worker.js')).workerCommand,
  collect: async () => (await import('./collect.js')).collectCommand,
};

async function allCommands(): Promise<Record<string, Command>> {
  const names = Object.keys(COMMANDS);
  const loaded = await Promise.all(names.map((n) => COMMANDS[n]()));
  return Object.fromEntries(names.map((n, i) => [n, loaded[i]]));
}

/**
 * `--layer -1` → `--layer=-1`: parseArgs reads a value that starts with a dash as another option and answers
 * "argument is ambiguous"; a negative number after an option that takes a value is that option's value (whose
 * check then says what is wrong with it, e.g. "--layer '-1' is not a non-negative integer").
 */
function negativeValues(args: string[], table: ReturnType<typeof parseArgsOptions>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const opt = /^--([^=]+)$/.exec(a)?.[1];
    if (opt && table[opt]?.type === 'string' && i + 1 < args.length && /^-(\d|\.\d|Infinity)/.test(args[i + 1])) {
      out.push(`${a}=${args[i + 1]}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      const topic = name === 'help' ? rest[0] : undefined;
      if (topic && COMMANDS[topic]) console.log(commandHelp(topic, await COMMANDS[topic]()));
      // no command at all is a usage error, as git and npm treat it: the usage on stderr, exit 2 (asked-for help: stdout, 0)
      else if (!name) console.error(usage(await allCommands()));
      else console.log(usage(await allCommands()));
      return name ? 0 : 2;
    }
    const load = COMMANDS[name];
    if (!load) throw new HeadlensError(`unknown command '${name}'`, `use one of ${Object.keys(COMMANDS).join(', ')} (headlens help)`);
    const cmd = await load();
    let given: Record<string, unknown>;
    try {
      const table = parseArgsOptions(cmd.options);
      ({ values: given } = parseArgs({ args: negativeValues(rest, table), options: table, strict: true, allowPositionals: false }));
    } catch (e) {
      throw new HeadlensError(`${name}: ${(e as Error).message}`, `see headlens ${name} --help`);
    }
    if (given.help) {
      console.log(commandHelp(name, cmd));
      return 0;
    }
    const values = checkOptions(name, cmd.options, cmd.preset ? { ...cmd.preset(given), ...given } : given);
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

const invokedDirectly = process.argv[1] && /headlens$|main\.[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
