/**
 * show(view): in a tslab notebook the picture appears under the cell (tslab.display.html); anywhere else
 * (a script, a test, the REPL) it is written to a file and the path is returned, so the same code works in
 * both places.
 */
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { View } from './view.js';

export interface ShowOptions {
  /** Outside a notebook: the file to write. Default: `headlens-out/<kind>-<n>.html` (or .svg). */
  file?: string;
  /** What to show: the interactive page fragment or the static SVG. Default: 'html'. */
  as?: 'html' | 'svg';
}

export interface ShowResult {
  /** 'notebook' when tslab displayed it, 'file' when it was written. */
  where: 'notebook' | 'file';
  /** The file written (only when where is 'file'). */
  file?: string;
}

interface TslabDisplay {
  html(s: string): void;
}

/** The running tslab kernel's display, or undefined outside one. */
export function tslabDisplay(): TslabDisplay | undefined {
  // a tslab kernel is the node process started as `tslab kernel …`; elsewhere do not load tslab at all
  // (it pulls in a TypeScript compiler)
  if (!process.argv.slice(1, 3).some((a) => /tslab/.test(a))) return undefined;
  // the kernel's own copy first (the display only works in the instance that runs the cell), then the project's
  for (const base of [process.argv[1], path.join(process.cwd(), 'noop.js')]) {
    try {
      const from = base === process.argv[1] ? realpathSync(base) : base;
      return (createRequire(from)('tslab') as { display: TslabDisplay }).display;
    } catch {
      // not resolvable from here: try the next
    }
  }
  return undefined;
}

let counter = 0;

export function show(view: View, opts: ShowOptions = {}): ShowResult {
  const as = opts.as ?? 'html';
  const display = tslabDisplay();
  if (display) {
    try {
      display.html(as === 'svg' ? view.svg : view.fragment);
      return { where: 'notebook' };
    } catch {
      // tslab loaded but not executing a cell (e.g. between cells): fall through to a file
    }
  }
  const file = opts.file ?? path.join('headlens-out', `${view.kind.replace(/[^a-z0-9]+/gi, '-')}-${++counter}.${as}`);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, as === 'svg' ? `<?xml version="1.0" encoding="UTF-8"?>\n${view.svg}\n` : view.html);
  return { where: 'file', file };
}
