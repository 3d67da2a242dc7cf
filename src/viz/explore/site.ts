/**
 * The explorer as a static site: index.html, the bundle (explore.js and the .wasm files, see bundle.ts),
 * models.json naming the models, and models/NAME/{config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json}. `headlens explore` serves exactly this tree from memory and disk; `--export DIR`
 * writes it to a folder that any static web host can serve.
 *
 * The server is node:http and nothing more: a static tree of a dozen known paths needs no framework, and
 * an allow-list (a request is answered only if its path is in the tree) cannot be walked out of with `..`.
 * It listens on 127.0.0.1 unless told otherwise.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { HeadlensError } from '../../errors.js';
import { PAGE_STYLE } from '../html.js';
import { DEFAULT_BUNDLE_DIR, WASM_FILES } from './bundle.js';

/** The files a model folder contributes, when present (config.json and model.safetensors are required). */
export const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

export interface SiteOptions {
  /** Models by name → folder. The first is the default unless `defaultModel` says otherwise. */
  models: Record<string, string>;
  defaultModel?: string;
  /** The folder holding explore.js and the .wasm files (default dist/explore, written by npm run build). */
  bundleDir?: string;
}

/** One entry of the site: text, or a file on disk. */
type Entry = { text: string } | { file: string };

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm' };

export const EXPLORE_STYLE = `
header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
#error { background: #fde0dc; border: 1px solid #d62728; padding: 8px 12px; margin: 8px 0; border-radius: 4px; }
.row { margin: 6px 0; } .row label { margin-right: 12px; }
input[type=text] { width: 36em; font: inherit; }
#drop { border: 1px dashed #999; padding: 4px 10px; color: #555; display: inline-block; }
table.grid td.cell { border: 2px solid #fff; padding: 4px; text-align: center; font: 12px ui-monospace, monospace; }
table.grid td.shown { border-color: #222; } table.grid td.ablated { outline: 3px solid #d62728; }
table.grid button { font: inherit; cursor: pointer; display: block; margin: 0 auto 2px; }
.cols { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
#answer-box { background: #f4f4f4; padding: 6px 10px; border-radius: 4px; margin: 6px 0; }
`;

/** The page: its markup only; explore.js does the rest. */
export function exploreHTML(): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>headlens explore</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}${EXPLORE_STYLE}</style>
</head><body data-state="loading">
<header><h1>headlens explore</h1><span class="hl-note">backend: <span id="backend">starting…</span></span></header>
<div id="error" role="alert" hidden></div>
<div class="row"><label>model <select id="model"></select></label>
<label>or a HuggingFace folder <input type="file" id="files" webkitdirectory multiple></label>
<span id="drop">drop config.json, model.safetensors, tokenizer.json here</span></div>
<div class="row hl-note" id="model-info"></div>
<div class="row"><label>prompt <input type="text" id="prompt"></label></div>
<div class="row"><label>answer <input type="text" id="answer" style="width:8em"></label>
<label>wrong answer <input type="text" id="wrong" style="width:8em"></label>
<label>ablation <select id="kind"><option value="zero">zero</option><option value="mean">mean (over this prompt's positions)</option><option value="uniform">uniform attention</option></select></label>
<button id="clear">clear ablations</button></div>
<div id="answer-box"></div>
<div class="hl-tokens" id="tokens"></div>
<div class="hl-note" id="hover-info"></div>
<div class="cols">
<div><h3>heads <span class="hl-note">(click a name to show its pattern, tick to ablate)</span></h3><div id="grid"></div>
<h3>next token</h3><div id="next"></div></div>
<div><h3 id="pattern-title">attention</h3><figure id="pattern"></figure><div id="lines"></div></div>
</div>
<h2>activation patching</h2>
<div class="row"><label>corrupted prompt <input type="text" id="corrupted"></label>
<label><input type="checkbox" id="by-pos"> by position</label> <button id="patch">patch heads</button></div>
<div id="patching"></div>
<h2>head scores</h2>
<div class="row"><label>a scan's JSON (<code>headlens scan --task T --model M --out scores.json</code>) <input type="file" id="scan-file" accept=".json,application/json"></label></div>
<div id="scores"></div>
<h2>logit lens and direct logit attribution</h2>
<div class="row"><button id="attribute">compute</button> <span class="hl-note">(on the model without interventions)</span></div>
<div id="attribution"></div>
<p class="hl-note" id="timing"></p>
<script type="module" src="explore.js"></script>
</body></html>
`;
}

/** Every path of the site and what it holds. */
export function exploreSite(opts: SiteOptions): Map<string, Entry> {
  const bundleDir = opts.bundleDir ?? DEFAULT_BUNDLE_DIR;
  const bundle = path.join(bundleDir, 'explore.js');
  if (!existsSync(bundle)) throw new HeadlensError(`the explorer's bundle is missing (${bundle})`, 'run npm run build in the headlens checkout');
  const names = Object.keys(opts.models);
  if (names.length === 0) throw new HeadlensError('no model to explore', 'pass --model DIR|NAME');
  const def = opts.defaultModel ?? names[0];
  const site = new Map<string, Entry>([
    ['index.html', { text: exploreHTML() }],
    ['explore.js', { file: bundle }],
    ['models.json', { text: JSON.stringify({ models: names, default: def }) }],
  ]);
  for (const f of WASM_FILES) site.set(f, { file: path.join(bundleDir, f) });
  for (const [name, dir] of Object.entries(opts.models)) {
    if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) throw new HeadlensError(`'${name}' cannot name a model in the explorer`, 'use letters, digits, dots, dashes and underscores');
    for (const f of MODEL_FILES) {
      const file = path.join(dir, f);
      if (existsSync(file)) site.set(`models/${name}/${f}`, { file });
      else if (f === 'config.json' || f === 'model.safetensors') {
        throw new HeadlensError(`${dir} has no ${f}`, 'pass a HuggingFace model folder holding config.json and model.safetensors (one file; tokenizer.json to type prompts)');
      }
    }
  }
  return site;
}

/** Writes the site to `dir` (created): the page works from any static host serving that folder. */
export function exportExplore(dir: string, opts: SiteOptions): string[] {
  const written: string[] = [];
  for (const [p, e] of exploreSite(opts)) {
    const out = path.join(dir, ...p.split('/'));
    mkdirSync(path.dirname(out), { recursive: true });
    if ('text' in e) writeFileSync(out, e.text);
    else copyFileSync(e.file, out);
    written.push(out);
  }
  return written;
}

export interface ServeOptions extends SiteOptions {
  port?: number;
  host?: string;
}

/** Serves the site; resolves once listening, with its URL and a close function. */
export async function serveExplore(opts: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const site = exploreSite(opts);
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    let p: string;
    try {
      p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    } catch {
      p = '';
    }
    const entry = site.get(p);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !entry) {
      res.writeHead(req.method !== 'GET' && req.method !== 'HEAD' ? 405 : 404, { 'content-type': 'text/plain' });
      res.end(entry ? 'method not allowed' : 'not found');
      return;
    }
    const body = 'text' in entry ? Buffer.from(entry.text) : readFileSync(entry.file);
    res.writeHead(200, { 'content-type': TYPES[path.extname(p)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new HeadlensError(`port ${opts.port} on ${host} is in use`, 'pass another --port, or 0 for any free one') : e),
    );
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

