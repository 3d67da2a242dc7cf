/**
 * How src/cli is put together: commands are loaded only when they run (main imports them dynamically), and
 * no command file imports another (what two commands share lives in a non-command module).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const CLI = path.join(import.meta.dirname, '..', 'src', 'cli');
const files = readdirSync(CLI).filter((f) => f.endsWith('.ts'));
const source = (f: string) => readFileSync(path.join(CLI, f), 'utf8');
/** The src/cli files a file imports, statically or through import(). */
function cliImports(f: string): { file: string; dynamic: boolean }[] {
  const text = source(f);
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles
    .filter((i) => i.fileName.startsWith('./'))
    // pos is where the specifier's string starts: a dynamic import has `import(` right before it
    .map((i) => ({ file: i.fileName.slice(2).replace(/\.js$/, '.ts'), dynamic: /import\(\s*['"]?$/.test(text.slice(0, i.pos)) }));
}
const commandFiles = files.filter((f) => /\bdefineCommand\(/.test(source(f)) && f !== 'options.ts');

describe('src/cli layout', () => {
  it('finds the command files (one per command main lists)', () => {
    const listed = [...source('main.ts').matchAll(/import\('\.\/(\w+)\.js'\)/g)].map((m) => `${m[1]}.ts`);
    expect(commandFiles.sort()).toEqual(listed.sort());
    expect(commandFiles.length).toBeGreaterThanOrEqual(10);
  });

  it('no src/cli file imports a command file, except main through import()', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const i of cliImports(f)) {
        if (!commandFiles.includes(i.file)) continue;
        if (f === 'main.ts' && i.dynamic) continue;
        bad.push(`${f} imports ${i.file}${i.dynamic ? ' (dynamically)' : ''}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('no src/cli file but main imports main', () => {
    const bad = files.filter((f) => f !== 'main.ts' && cliImports(f).some((i) => i.file === 'main.ts'));
    expect(bad).toEqual([]);
  });
});
