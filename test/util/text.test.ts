/**
 * util/text.ts: user-supplied text on its way to a terminal (printable), and the places that
 * print it for people: formatError (the CLI's one error line) and progress labels.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatError, SvhnError } from '../../src/errors.js';
import { createProgress } from '../../src/progress.js';
import { MAX_LINE_CHARS, MAX_WORD_CHARS, elideMiddle, escapeControls, printable, printableLines } from '../../src/util/text.js';

describe('escapeControls', () => {
  it('shows C0, DEL and C1 controls as escapes and leaves everything else alone', () => {
    expect(escapeControls('3/\x1b[31mRED\x07.png')).toBe('3/\\x1b[31mRED\\x07.png');
    expect(escapeControls('a\nb\rc\td\x00e\x7ff\x9bg\x80h')).toBe('a\\nb\\rc\\td\\x00e\\x7ff\\x9bg\\x80h');
    expect(escapeControls('déjà vu ½ 数字 🙂 back\\slash')).toBe('déjà vu ½ 数字 🙂 back\\slash');
  });
});

describe('elideMiddle', () => {
  it('keeps short text and cuts long text in the middle, counting what it left out', () => {
    expect(elideMiddle('abc', 3)).toBe('abc');
    const cut = elideMiddle('a'.repeat(600) + 'b'.repeat(400), 300);
    expect(cut).toBe(`${'a'.repeat(200)}…[700 characters elided]…${'b'.repeat(100)}`);
    expect(elideMiddle('x'.repeat(2_000_000), 30)).toBe(`${'x'.repeat(20)}…[1,999,970 characters elided]…${'x'.repeat(10)}`);
  });

  it('never splits a surrogate pair', () => {
    const cut = elideMiddle('🙂'.repeat(100), 31);
    expect(cut).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
    expect(cut).toMatch(/^(🙂)+…\[\d+ characters elided\]…(🙂)+$/);
  });
});

describe('printable', () => {
  it('cuts a long word (a path) on its own, so the message around it stays whole', () => {
    const path = `/data/${'d'.repeat(2 * 1024 * 1024)}/x.png`;
    const line = printable(`cannot read ${path}: expected a regular file, got a FIFO`);
    expect(line).toMatch(/^cannot read \/data\/d+…\[2,09\d,\d{3} characters elided\]…d+\/x\.png: expected a regular file, got a FIFO$/);
    expect(line.length).toBeLessThan(MAX_WORD_CHARS + 100);
  });

  it('cuts a long line of short words too, and escapes what it keeps', () => {
    const line = printable(`\x1b[2J${'a b '.repeat(10_000)}`);
    expect(line.startsWith('\\x1b[2Ja b a b')).toBe(true);
    expect(line).toContain('characters elided]…');
    expect(line.length).toBeLessThan(MAX_LINE_CHARS + 50);
    expect(printable('one\ntwo')).toBe('one\\ntwo'); // one line stays one line
  });

  it('keeps the lines of a summary, each made printable', () => {
    expect(printableLines('skipped 3/\x1b[31mRED.png: no such file\nskipped ok.png: bad\n')).toBe('skipped 3/\\x1b[31mRED.png: no such file\nskipped ok.png: bad\n');
  });
});

describe('formatError', () => {
  it('makes the one error line printable, suggestion included', () => {
    const e = new SvhnError('IO', `cannot read 3/\x1b[31mRED\x07.png: expected a regular file, got a FIFO`, { suggestion: 'pass \x9bfile' });
    expect(formatError(e)).toBe('cannot read 3/\\x1b[31mRED\\x07.png: expected a regular file, got a FIFO; pass \\x9bfile');
    expect(formatError(new Error('first \x07line\nsecond'))).toBe('first \\x07line');
  });
});

describe('progress', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('prints its label (a user path) printable in plain lines', () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const p = createProgress({ label: 'decode \x1b[31mred.csv', total: 2, mode: 'plain' });
    p.stop();
    expect(written.join('')).toMatch(/^decode \\x1b\[31mred\.csv: 2\/2 \(100%\)/);
  });
});
