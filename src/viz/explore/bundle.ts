/**
 * Builds the explorer's browser files into one folder (dist/explore by default): explore.js, the page
 * script with headlens bundled by esbuild, and the .wasm binaries of @tensorflow/tfjs-backend-wasm, which
 * the wasm backend fetches from beside the page. `npm run build` runs this after tsc; tests build into a
 * temporary folder so they never read a stale bundle.
 *
 * esbuild because it is what vite (and so vitest) already installs and runs, bundles TypeScript sources
 * directly, and takes about a second. The library's Node-only modules (node:fs, node:path…) are imported by
 * files the page uses for other exports (tokenizer.ts reads tokenizer.json from a folder; the backend looks
 * for libtensorflow); in the bundle they become stubs that throw if called, which the page never does.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The page's entry: beside this file under src, or the source tree's copy when this runs from dist. */
function entry(): string {
  const candidates = [path.join(HERE, 'page.ts'), path.resolve(HERE, '..', '..', '..', 'src', 'viz', 'explore', 'page.ts')];
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`the explorer's source (page.ts) is not at ${candidates.join(' or ')}: build it from a checkout of headlens`);
  return found;
}

/** Where `npm run build` puts the bundle: dist/explore of the repository. */
export const DEFAULT_BUNDLE_DIR = path.resolve(HERE, ...(HERE.includes(`${path.sep}dist${path.sep}`) ? ['..', '..', 'explore'] : ['..', '..', '..', 'dist', 'explore']));

export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

// what the page's import graph names from Node's modules; every function throws if the page ever calls it
const STUBS: Record<string, string> = {
  fs: 'existsSync readFileSync writeFileSync readdirSync statSync renameSync mkdirSync',
  module: '',
  path: '',
  url: 'fileURLToPath pathToFileURL',
  crypto: 'createHash',
};

function stubSource(mod: string): string {
  const names = (STUBS[mod] ?? '').split(' ').filter(Boolean);
  const fail = `(name) => () => { throw new Error('node:${mod} ' + name + ' is not available in the browser'); }`;
  return [
    `const fail = ${fail};`,
    ...names.map((n) => `export const ${n} = fail('${n}');`),
    // createRequire runs at import time in the backend module; the function it returns must only fail when used
    mod === 'module' ? 'export const createRequire = () => Object.assign(fail("require"), { resolve: fail("require.resolve") });' : '',
    mod === 'path' ? "const p = { sep: '/', join: fail('join'), dirname: fail('dirname'), resolve: fail('resolve'), basename: fail('basename'), isAbsolute: fail('isAbsolute') }; p.win32 = p; export default p;" : `export default { ${names.join(', ')} };`,
  ].join('\n');
}

/** Bundles the page into `outDir` (created) and copies the wasm binaries beside it. Returns the folder. */
export async function bundleExplorer(outDir = DEFAULT_BUNDLE_DIR): Promise<string> {
  // esbuild is a build tool, not a runtime dependency: imported here only
  const esbuild = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [entry()],
    outfile: path.join(outDir, 'explore.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"' },
    // the Node binding of WebGPU (Dawn): the backend imports it only in Node, where navigator.gpu is missing
    external: ['webgpu'],
    plugins: [
      {
        name: 'node-stubs',
        setup(build) {
          build.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path.slice(5), namespace: 'node-stub' }));
          build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({ contents: stubSource(a.path), loader: 'js' }));
        },
      },
    ],
  });
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of WASM_FILES) copyFileSync(path.join(wasmDir, f), path.join(outDir, f));
  return outDir;
}

const invokedDirectly = process.argv[1] && /explore[/\\]bundle\.[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  bundleExplorer(process.argv[2]).then((dir) => console.log(`explorer bundle in ${dir}`));
}
