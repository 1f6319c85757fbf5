/**
 * Logging: pino. Human-readable on a TTY (pino-pretty, synchronous so lines interleave with
 * progress bars), JSON lines when --log-format json or when stderr is not a TTY.
 * Logs always go to stderr: stdout stays clean for data (predict output, --json summaries).
 */
import pino, { type Logger } from 'pino';

export type LogFormat = 'pretty' | 'json';
export type { Logger };

export interface LogOptions {
  format?: LogFormat; // default: pretty on a TTY, json otherwise
  level?: string; // 'info' by default, 'debug' with --verbose
}

let current: Logger | undefined;

export async function createLogger(opts: LogOptions = {}): Promise<Logger> {
  const format: LogFormat = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const level = opts.level ?? 'info';
  if (format === 'json') {
    current = pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true }));
  } else {
    const { default: pretty } = await import('pino-pretty');
    current = pino(
      { level, base: undefined },
      // On a terminal the message line says it all; the structured fields (also in JSON logs)
      // are shown with --verbose only, so a bar is not pushed away by a dozen field lines.
      pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: 'pid,hostname', translateTime: 'HH:MM:ss', hideObject: level !== 'debug' }),
    );
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
