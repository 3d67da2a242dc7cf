/**
 * Plain sentences with punctuation, one scan item per line: the input of the attention-map analyses of Clark et
 * al. (2019) (`headlens scan --task special-tokens | attention-entropy`). The default set is
 * datasets/sentences/sentences.txt (its README says where it comes from); any text file works the same way.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadlensError } from '../errors.js';

/** The shipped sentence file. */
export const SENTENCES_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'datasets', 'sentences', 'sentences.txt');

/** The non-empty lines of a text, trimmed. */
export function textLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}

/** The non-empty lines of a text file (default: the shipped sentences); an empty file is an error. */
export function sentenceLines(file: string = SENTENCES_FILE): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new HeadlensError(`cannot read the text file ${file}: ${(e as Error).message}`, 'pass a readable text file, one item per line');
  }
  const lines = textLines(text);
  if (lines.length === 0) throw new HeadlensError(`${file} has no non-empty lines`, 'put one sentence (or a few) per line');
  return lines;
}
