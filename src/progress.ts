/**
 * Progress for long work: a live bar on a TTY (cli-progress), plain periodic lines otherwise
 * (CI logs, pipes). Always on stderr so stdout stays clean for data.
 */
import cliProgress from 'cli-progress';
import { printable } from './util/text.js';

export interface ProgressOptions {
  label: string; // e.g. "download train_32x32.mat", "epoch 3/15"
  total: number; // units of work (bytes, images, batches)
  unit?: string; // shown in plain lines: 'B', 'img', 'batch'
  /** Seconds between plain lines when not on a TTY. */
  plainEverySec?: number;
  /** Force a mode (tests); default: bar when stderr is a TTY. */
  mode?: 'bar' | 'plain' | 'silent';
  /** Formats value/total for display (bytes as MB, etc.). */
  format?: (n: number) => string;
  /** When the work started (Date.now()); default: now. The rate shown is done / the seconds since. */
  startedAt?: number;
}

/** Units per second: the one definition of a rate, the progress display's and training's (train/history.ts). */
export function ratePerSec(done: number, seconds: number): number {
  return seconds > 0 ? done / seconds : 0;
}

/** How a display ends: `rate` replaces the measured one (the work's own figure, e.g. one that leaves out a later phase). */
export interface ProgressEnd {
  rate?: number;
}

export interface Progress {
  /** Sets the absolute amount done; `fields` fill extra columns (loss, acc, img/s...). */
  update(done: number, fields?: Record<string, string | number>): void;
  stop(finalFields?: Record<string, string | number>, end?: ProgressEnd): void;
  /** A later phase of the same work, after `done` reached the total (train: "validating 1,200 images"); `end.rate` holds the rate the first phase ended on. */
  phase?(text: string, end?: ProgressEnd): void;
  /** Ends the display where it stands, without claiming completion (work failed or was cut short). */
  abort?(): void;
}

const fmtDefault = (n: number) => String(n);

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function formatEta(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--';
  const m = Math.floor(sec / 60);
  const s = Math.round(sec % 60);
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

function fieldText(fields?: Record<string, string | number>): string {
  if (!fields) return '';
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : v}`)
    .join('  ');
}

export function createProgress(options: ProgressOptions): Progress {
  const opts = { ...options, label: printable(options.label) }; // labels name user files
  const mode = opts.mode ?? (process.stderr.isTTY ? 'bar' : 'plain');
  const fmt = opts.format ?? fmtDefault;
  const start = opts.startedAt ?? Date.now();
  if (mode === 'silent') return { update() {}, stop() {}, abort() {}, phase() {} };

  if (mode === 'bar') {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${opts.label} [{bar}] {percentage}% {doneText}/{totalText} | {rate} | ETA {etaText} {fieldsText}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (done: number, fields?: Record<string, string | number>, end?: ProgressEnd) => {
      const rate = end?.rate ?? ratePerSec(done, (Date.now() - start) / 1000);
      return {
        doneText: fmt(done),
        totalText: fmt(opts.total),
        rate: `${fmt(Math.round(rate))}/s`,
        etaText: formatEta(rate > 0 ? (opts.total - done) / rate : NaN),
        fieldsText: fieldText(fields),
      };
    };
    bar.start(opts.total, 0, payload(0));
    return {
      update(done, fields) {
        bar.update(done, payload(done, fields));
      },
      stop(finalFields, end) {
        bar.update(opts.total, payload(opts.total, finalFields, end));
        bar.stop();
      },
      abort() {
        bar.stop(); // restores the cursor; the bar stays at its last value
      },
      phase(text, end) {
        bar.update(opts.total, { ...payload(opts.total, undefined, end), fieldsText: printable(text) });
      },
    };
  }

  const every = (opts.plainEverySec ?? 10) * 1000;
  let last = start;
  const line = (done: number, fields?: Record<string, string | number>, end?: ProgressEnd) => {
    const rate = end?.rate ?? ratePerSec(done, (Date.now() - start) / 1000);
    const pct = opts.total > 0 ? ((100 * done) / opts.total).toFixed(0) : '100';
    const extra = fieldText(fields);
    process.stderr.write(
      `${opts.label}: ${fmt(done)}/${fmt(opts.total)} (${pct}%) ${fmt(Math.round(rate))}/s ETA ${formatEta(rate > 0 ? (opts.total - done) / rate : NaN)}${extra ? '  ' + extra : ''}\n`,
    );
  };
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last >= every) {
        last = now;
        line(done, fields);
      }
    },
    stop(finalFields, end) {
      line(opts.total, finalFields, end);
    },
    abort() {},
    phase(text) {
      process.stderr.write(`${opts.label}: ${printable(text)}\n`);
    },
  };
}
