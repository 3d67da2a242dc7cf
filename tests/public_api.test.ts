/**
 * The public surface: one entry per layer (package.json's exports), each a file that loads, and no name
 * exported by two entries (a user who imports `topHeads` gets the one there is).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };

describe('public entries', () => {
  it("package.json's exports are headlens and its sub-entries, each backed by a src/…/index.ts", () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './bench', './datasets', './interp', './linalg', './train', './viz', './zoo']);
  });

  it('no value is exported by two entries, and each entry exports something', async () => {
    const owner = new Map<string, string>();
    const clashes: string[] = [];
    for (const [entry, { default: dist }] of Object.entries(pkg.exports)) {
      const src = path.join(ROOT, dist.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
      const mod = (await import(src)) as Record<string, unknown>;
      const names = Object.keys(mod);
      expect(names.length, entry).toBeGreaterThan(0);
      for (const n of names) {
        if (owner.has(n)) clashes.push(`${n}: ${owner.get(n)} and ${entry}`);
        owner.set(n, entry);
      }
    }
    expect(clashes).toEqual([]);
  });

  it('the core entry stays free of the analyses: it exports the model, not patching or scores', async () => {
    const core = (await import(path.join(ROOT, 'src/index.ts'))) as Record<string, unknown>;
    expect(core).toHaveProperty('loadPretrained');
    expect(core).toHaveProperty('HookedTransformer');
    expect(core).toHaveProperty('loadFromFiles');
    expect(core).toHaveProperty('isEncoder');
    expect(core).not.toHaveProperty('activationPatching');
    expect(core).not.toHaveProperty('inductionScores');
  });
});
