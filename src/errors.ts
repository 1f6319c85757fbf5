import { printable } from './util/text.js';

/**
 * Domain errors: a code, a one-line message naming the file or flag and what was expected,
 * and an optional suggestion. The CLI's single top-level handler prints them without a stack
 * (unless --verbose) and exits non-zero (STYLE lesson 6).
 */
export type ErrorCode =
  | 'BAD_FLAG'
  | 'MISSING_DATA'
  | 'BAD_MAT'
  | 'BAD_CACHE'
  | 'BAD_MODEL'
  | 'BAD_INPUT'
  | 'NETWORK'
  | 'CHECKSUM'
  | 'IO'
  | 'BACKEND'
  | 'INTERRUPTED';

export class SvhnError extends Error {
  readonly code: ErrorCode;
  readonly suggestion?: string;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, opts: { suggestion?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SvhnError';
    this.code = code;
    this.suggestion = opts.suggestion;
    this.exitCode = opts.exitCode ?? (code === 'BAD_FLAG' ? 2 : 1);
  }
}

export function isSvhnError(e: unknown): e is SvhnError {
  return e instanceof SvhnError;
}

/**
 * One line for humans: "message; suggestion". Printable (util/text.ts): a path in it with
 * control characters shows them escaped, and a very long one is cut in the middle.
 */
export function formatError(e: unknown): string {
  if (isSvhnError(e)) return printable(e.suggestion ? `${e.message}; ${e.suggestion}` : e.message);
  if (e instanceof Error) return printable(e.message.split('\n')[0] ?? String(e));
  return printable(String(e));
}

/** Turns a Node fs error into a SvhnError naming the path. */
export function ioError(path: string, what: string, cause: unknown): SvhnError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  const reason =
    code === 'ENOENT' ? 'no such file or directory'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'ENOSPC' ? 'no space left on device'
    : code === 'EROFS' ? 'read-only file system'
    : code === 'ENOTDIR' ? 'a parent is not a directory'
    : (cause as Error)?.message ?? String(cause);
  return new SvhnError('IO', `cannot ${what} ${path}: ${reason}`, { cause });
}
