/** Shared test helpers. */
import { expect } from 'vitest';
import { SvhnError } from '../src/errors.js';

/** Awaits a promise that must reject with a SvhnError, and returns that error for its message checks. */
export async function rejection(p: Promise<unknown>): Promise<SvhnError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SvhnError);
    return e as SvhnError;
  }
  throw new Error('expected a rejection');
}
