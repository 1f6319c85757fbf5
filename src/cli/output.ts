/**
 * Human text a command prints on stdout (summaries, tables): every line through printable
 * (util/text.ts), so a path or name from the user cannot drive the terminal or flood it.
 * --json summaries and predict's rows are data and go out as they are.
 */
import { printableLines } from '../util/text.js';

export function printText(text: string): void {
  process.stdout.write(printableLines(text));
}

/** `arg` as a POSIX shell word: as it is when it needs no quoting, else in single quotes (a `'` inside as `'\''`). */
export function shellArg(arg: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
