import { expect } from 'vitest';
import { HeadlensError } from '../src/errors.js';

/** The HeadlensError `fn` throws; fails the test if it throws anything else or nothing. */
export function headlensError(fn: () => unknown): HeadlensError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeadlensError);
    return e as HeadlensError;
  }
  throw new Error('expected a HeadlensError, but nothing was thrown');
}
