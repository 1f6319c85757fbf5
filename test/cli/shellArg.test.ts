/** cli/output.ts shellArg: the paths a command prints for the user to paste back into a shell. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellArg } from '../../src/cli/output.js';

describe('shellArg', () => {
  it('leaves plain paths as they are and quotes the rest so that sh reads back the same string', () => {
    expect(shellArg('tune/optimized/best.json')).toBe('tune/optimized/best.json');
    for (const s of ['my study/best.json', "it's/best.json", 'a$b`c"d\\e', '', '*', 'x;rm -rf y']) {
      const quoted = shellArg(s);
      expect(quoted).not.toBe(s);
      expect(execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' })).toBe(s);
    }
  });
});
