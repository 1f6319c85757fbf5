/**
 * Flag parsers shared by the subcommands. Each throws commander's InvalidArgumentError with
 * what was expected, which the top-level handler prints as one line naming the flag.
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import type { LabelledSource } from '../data/images/labelled.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  }
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  }
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number >= 0, got '${value}'`);
  }
  return n;
}

/** A fraction strictly between 0 and 1. */
export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw new InvalidArgumentError(`expected a number between 0 and 1 (exclusive), got '${value}'`);
  }
  return n;
}

export function oneOf<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got '${value}'`);
    }
    return value as T;
  };
}

/** Comma-separated list of choices, e.g. --split train,test. */
export function listOf<T extends string>(choices: readonly T[]): (value: string) => T[] {
  return (value: string) => {
    const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (parts.length === 0) throw new InvalidArgumentError(`expected a comma-separated list of ${choices.join(', ')}`);
    for (const p of parts) {
      if (!(choices as readonly string[]).includes(p)) {
        throw new InvalidArgumentError(`expected a comma-separated list of ${choices.join(', ')}, got '${p}'`);
      }
    }
    return [...new Set(parts)] as T[];
  };
}

/** For repeatable flags (--model DIR --model DIR). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * --threads, one rule for every command: 1 up to the cores this process may use. More only
 * slows down (train --threads 64 on 2 cores took 53 s to start and ran at 22 images/s).
 */
export function threadCount(value: string): number {
  const n = positiveInt(value);
  const cores = availableParallelism();
  if (n > cores) throw new InvalidArgumentError(`expected at most ${cores} (the cores here), got ${n}`);
  return n;
}

const THREADS_RULE = `at most the cores here; default: all of them, ${availableParallelism()}`;
/** --threads, the same for every command that runs a model. */
export const THREADS_HELP = `wasm threads: more than 1 runs its threaded build, with the same results as 1; the count used is logged (${THREADS_RULE})`;
/** train's --threads: data-parallel replicas. */
export const TRAIN_THREADS_HELP =
  `data-parallel training replicas, one per thread: a seed repeats exactly for the same count; other counts train the same steps, rounded differently (${THREADS_RULE})`;

/** --images DIR or --labels FILE.csv (commander refuses both at once) as a stage source. */
export function labelledSource(flags: { images?: string; labels?: string }, prefix = ''): LabelledSource | undefined {
  if (flags.images !== undefined) return { kind: 'folder', path: flags.images, flag: `--${prefix}images` };
  if (flags.labels !== undefined) return { kind: 'csv', path: flags.labels, flag: `--${prefix}labels` };
  return undefined;
}

/** The help lines that say what a labelled folder or CSV is (preprocess and evaluate). */
export const LABELLED_HELP = `
Your own digits: --images DIR reads DIR/0 .. DIR/9 (one folder per digit, subfolders walked,
files with an image extension decoded); --labels FILE.csv reads path,label rows (paths
relative to the CSV's folder, digits 0..9, an optional header such as file,label). Images are
decoded and resized exactly as \`svhn predict\` does. A file that does not decode is skipped and
listed with its reason (--strict: an error); a label outside 0..9, a folder not named 0..9, a
file listed twice or a malformed row is an error naming the folder or line.`;
