/**
 * Executes every notebook in notebooks/ headless, as CI does: Debian's `jupyter nbconvert --execute` with the
 * tslab kernel, on the wasm backend. The notebooks check their own key numbers (a failed check is a cell
 * error, which fails nbconvert), so a broken notebook fails this test.
 *
 * Needs jupyter-nbconvert and the tslab kernel (`.ci/run` installs both: apt-get install jupyter-nbconvert
 * python3-ipykernel; npx tslab install --python=/usr/bin/python3) and a built package (`npm run build`;
 * `npm test` builds first). Without them this test FAILS and says what to install — it never skips, since a
 * skipped notebook test would let a broken notebook through.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..');
const NOTEBOOKS = path.join(ROOT, 'notebooks');
const BIN = path.join(ROOT, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${BIN}${path.delimiter}${process.env.PATH ?? ''}`, HEADLENS_BACKEND: 'wasm' };
const out = mkdtempSync(path.join(os.tmpdir(), 'headlens-nb-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

const run = promisify(execFile);

/** Checks once (asynchronously, so the worker stays responsive) that Jupyter, the kernel and dist/ are there. */
let tools: Promise<void> | undefined;
function requireTools(): Promise<void> {
  tools ??= (async () => {
    try {
      await run('jupyter', ['nbconvert', '--version'], { env });
    } catch {
      throw new Error('jupyter nbconvert is not installed: apt-get install jupyter-nbconvert jupyter-client python3-ipykernel (as .ci/run does)');
    }
    const { stdout } = await run('jupyter', ['kernelspec', 'list'], { env, encoding: 'utf8' });
    if (!/\btslab\b/.test(stdout)) {
      throw new Error('the tslab kernel is not installed: npx tslab install --python=/usr/bin/python3 (as .ci/run does)');
    }
    if (!existsSync(path.join(ROOT, 'dist', 'index.js')) || !existsSync(path.join(ROOT, 'dist', 'viz', 'index.js'))) {
      throw new Error('dist/ is missing: the notebooks import the built package; run npm run build (npm test does)');
    }
  })();
  return tools;
}

const notebooks = readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb')).sort();

describe('notebooks', () => {
  it('notebooks/ holds the quickstart', () => {
    expect(notebooks).toContain('01-quickstart.ipynb');
  });

  for (const nb of notebooks) {
    it.concurrent(`jupyter nbconvert --execute ${nb} runs every cell without error`, { timeout: 300_000 }, async () => {
      await requireTools();
      const target = path.join(out, nb);
      let stderr: string;
      try {
        // asynchronously: a blocked worker cannot answer vitest's RPC for the half minute a notebook takes
        ({ stderr } = await run('jupyter', ['nbconvert', '--to', 'notebook', '--execute', `--ExecutePreprocessor.timeout=240`, '--output', target, path.join(NOTEBOOKS, nb)], {
          cwd: NOTEBOOKS,
          env,
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        }));
      } catch (e) {
        const err = e as { stderr?: string };
        // nbconvert's stderr ends with the failing cell and its error; what the kernel itself printed (a crash, a
        // stray rejection) comes before nbconvert's traceback, so that part is shown too
        const lines = (err.stderr ?? String(e)).split('\n').map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
        const tb = lines.findIndex((l) => l.startsWith('Traceback'));
        const kernel = (tb > 0 ? lines.slice(0, tb) : []).filter((l) => !/^\[NbConvertApp\]/.test(l)).slice(-30);
        throw new Error(`${nb} failed:\n${kernel.length ? `the kernel printed:\n${kernel.join('\n')}\n---\n` : ''}${lines.slice(-40).join('\n')}`);
      }
      const executed = JSON.parse(readFileSync(target, 'utf8')) as { cells: { cell_type: string; outputs?: { output_type: string; text?: string[]; data?: Record<string, unknown> }[] }[] };
      const code = executed.cells.filter((c) => c.cell_type === 'code');
      expect(code.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === 'error')).toEqual([]);
      // the tslab kernel reports an error thrown in a callback, or a rejection nobody handled, and goes on (under the
      // running cell, or on its stderr between cells); one whose stack passes through headlens' own code fails the
      // notebook, any other is printed here
      const printed = [stderr, ...code.flatMap((c) => c.outputs ?? []).map((o) => (o.text ?? []).join(''))].join('\n');
      const stray = printed.split(/\n(?=UncaughtException:|UnhandledPromiseRejection:)/).filter((b) => /^(UncaughtException|UnhandledPromiseRejection):/.test(b));
      if (stray.length) console.warn(`${nb}: the kernel reported\n${stray.join('\n')}`);
      expect(stray.filter((b) => b.includes(path.join(ROOT, `dist${path.sep}`)) || b.includes(path.join(ROOT, `src${path.sep}`)))).toEqual([]);
      // the checks ran: every `check(…)` prints "ok: …"
      const oks = code.flatMap((c) => c.outputs ?? []).flatMap((o) => o.text ?? []).join('').match(/^ok: /gm) ?? [];
      expect(oks.length).toBeGreaterThan(0);
      // show(view) displayed its pictures through tslab rather than writing files
      const pictures = code.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === 'display_data' && o.data && 'text/html' in o.data);
      expect(pictures.length).toBeGreaterThan(0);
    });
  }
});
