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
  worker: async () => (await import('./worker.js')).workerCommand,
  collect: async () => (await import('./collect.js')).collectCommand,
};

async function allCommands(): Promise<Record<string, Command>> {
  const names = Object.keys(COMMANDS);
  const loaded = await Promise.all(names.map((n) => COMMANDS[n]()));
  return Object.fromEntries(names.map((n, i) => [n, loaded[i]]));
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      const topic = name === 'help' ? rest[0] : undefined;
      if (topic && COMMANDS[topic]) console.log(commandHelp(topic, await COMMANDS[topic]()));
      else console.log(usage(await allCommands()));
      return name ? 0 : 2;
    }
    const load = COMMANDS[name];
    if (!load) throw new HeadlensError(`unknown command '${name}'`, `use one of ${Object.keys(COMMANDS).join(', ')} (headlens help)`);
    const cmd = await load();
    let given: Record<string, unknown>;
    try {
      ({ values: given } = parseArgs({ args: rest, options: parseArgsOptions(cmd.options), strict: true, allowPositionals: false }));
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
