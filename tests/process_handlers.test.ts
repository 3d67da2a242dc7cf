/**
 * The wasm backend's Emscripten module, loaded in Node, adds process-wide 'uncaughtException' and
 * 'unhandledRejection' listeners that rethrow. With them a stray rejection killed a tslab kernel that has listeners
 * of its own to report it and go on (CI: "Kernel died" in a notebook). initBackend removes what the module added.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/index.js';

const EVENTS = ['uncaughtException', 'unhandledRejection'];
// typed loosely: @types/node's overloads take one event name at a time
const listeners = (e: string) => (process as unknown as { listeners(e: string): Function[] }).listeners(e);

describe('initBackend leaves the process handlers as it found them', () => {
  it('wasm: no uncaughtException or unhandledRejection listener is added', async () => {
    const before = EVENTS.map(listeners);
    await initBackend({ backend: 'wasm' });
    const after = EVENTS.map(listeners);
    expect(after).toEqual(before);
  });

  it('a process with its own listener (as a tslab kernel) survives a stray rejection after the wasm backend starts', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-handlers-'));
    try {
      const script = path.join(dir, 'host.ts');
      const src = path.join(import.meta.dirname, '..', 'src', 'index.ts').replaceAll('\\', '/');
      writeFileSync(
        script,
        [
          `import { initBackend } from '${src}';`,
          `const seen: string[] = [];`,
          `process.on('unhandledRejection', (r) => { seen.push(String((r as Error).message)); });`,
          `await initBackend({ backend: 'wasm' });`,
          `void Promise.reject(new Error('stray'));`,
          `await new Promise((r) => setTimeout(r, 200));`,
          `console.log(JSON.stringify({ seen, alive: true }));`,
        ].join('\n'),
      );
      const bin = path.join(import.meta.dirname, '..', 'node_modules', '.bin', 'vite-node');
      const { stdout } = await promisify(execFile)(bin, [script], { encoding: 'utf8', env: { ...process.env, HEADLENS_BACKEND: 'wasm' } }).catch((e: { stderr?: string }) => {
        // the stack of a rethrowing listener quotes the minified Emscripten module: the error's last lines are enough
        const tail = (e.stderr ?? String(e)).split('\n').slice(-6).map((l) => l.slice(0, 300));
        throw new Error(`the host process died at the stray rejection:\n${tail.join('\n')}`);
      });
      const last = stdout.trim().split('\n').pop() ?? '';
      expect(JSON.parse(last)).toEqual({ seen: ['stray'], alive: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
