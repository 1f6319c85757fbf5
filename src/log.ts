/**
 * Logging: pino. Human-readable on a TTY (pino-pretty, synchronous so lines interleave with
 * progress bars), JSON lines when --log-format json or when stderr is not a TTY.
 * Logs always go to stderr: stdout stays clean for data (predict output, --json summaries).
 * Messages name user files, so each is made printable (util/text.ts: control characters
 * escaped, a very long one cut); the fields keep the exact values, JSON-escaped.
 */
import pino, { type Logger, type LoggerOptions } from 'pino';
import { printable } from './util/text.js';

export type LogFormat = 'pretty' | 'json';
export type { Logger };

export interface LogOptions {
  format?: LogFormat; // default: pretty on a TTY, json otherwise
  level?: string; // 'info' by default, 'debug' with --verbose
}

let current: Logger | undefined;

/**
 * JSON.stringify escapes C0 controls but leaves DEL and C1 (U+0080..U+009F, CSI among them)
 * raw. In a JSON line they can only stand inside strings, where \u escapes are the same
 * value; pino-pretty quotes field values as JSON, so the same holds for its lines.
 */
const escapeC1 = (text: string) => text.replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const hooks: LoggerOptions['hooks'] = {
  // log.info(msg) or log.info(fields, msg): the message is the first string.
  logMethod(args, method) {
    const at = typeof args[0] === 'string' ? 0 : 1;
    if (typeof args[at] === 'string') (args as unknown[])[at] = printable(args[at] as string);
    method.apply(this, args);
  },
};

export async function createLogger(opts: LogOptions = {}): Promise<Logger> {
  const format: LogFormat = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const level = opts.level ?? 'info';
  if (format === 'json') {
    current = pino({ level, base: undefined, hooks: { ...hooks, streamWrite: escapeC1 } }, pino.destination({ fd: 2, sync: true }));
  } else {
    const { prettyFactory } = await import('pino-pretty');
    // On a terminal the message line says it all; the structured fields (also in JSON logs)
    // are shown with --verbose only, so a bar is not pushed away by a dozen field lines.
    const prettify = prettyFactory({ colorize: process.stderr.isTTY, ignore: 'pid,hostname', translateTime: 'HH:MM:ss', hideObject: level !== 'debug' });
    const stderr = pino.destination({ fd: 2, sync: true }); // synchronous, so lines interleave with progress bars
    current = pino({ level, base: undefined, hooks }, { write: (line: string) => stderr.write(escapeC1(prettify(line))) });
  }
  return current;
}

/** The process logger; a silent one until the CLI creates the real one (keeps stage modules testable). */
export function getLogger(): Logger {
  return current ?? (current = pino({ level: 'silent' }));
}

export function setLogger(logger: Logger): void {
  current = logger;
}
