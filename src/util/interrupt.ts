/**
 * Ctrl-C and kill: nothing lost, nothing half-made left behind. Every temporary file or
 * directory that will later be renamed into place is tracked here while it exists; the CLI's
 * one interrupt handler removes them all, prints one line (plus what the running command
 * says about going on, e.g. train's --resume hint) and exits 130 (SIGINT) or 143 (SIGTERM).
 * Final names are only ever reached by rename, so they hold complete files or nothing.
 */
import { renameSync, rmSync } from 'node:fs';
import { printable } from './text.js';

const temps = new Set<string>();

/** What an interrupted temporary is renamed to before its removal (see removeTrackedTemps). */
export const GONE_SUFFIX = '-gone';
type Note = string | (() => string | undefined);
let note: Note | undefined;

/** Tracks a temporary path until the returned release function is called (after its rename). */
export function trackTemp(path: string): () => void {
  temps.add(path);
  return () => {
    temps.delete(path);
  };
}

/**
 * What the interrupt line should add, e.g. how to resume. A function is asked at the moment of
 * the interrupt (synchronously), for notes that depend on what is on disk by then.
 */
export function setInterruptNote(text: Note | undefined): void {
  note = text;
}

function currentNote(): string | undefined {
  try {
    return typeof note === 'function' ? note() : note;
  } catch {
    return undefined; // the exit line must still be printed
  }
}

const REMOVE_ATTEMPTS = 20;
const REMOVE_RETRY_MS = 10;

/** Blocks the thread for ms milliseconds (a signal handler cannot wait on a timer). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Removes every tracked temporary path (synchronously: it runs in a signal handler). */
export function removeTrackedTemps(): void {
  for (const p of temps) {
    // Writes already queued on libuv's pool (photos, weight files) go on landing after this
    // handler starts, with no JS to run. Renamed first, the folder takes no entry from an open
    // that has not yet looked its path up (it names the old path: ENOENT); the few already past
    // that can still add one after rmSync's listing, and rmSync's own retries only retry the
    // final rmdir, not the listing. So: removed again, listing and all, until it is gone. The
    // new name is one removeStaleTemps (atomic.ts) takes for a leftover, should all this fail.
    let target = p;
    try {
      renameSync(p, `${p}${GONE_SUFFIX}`);
      target = `${p}${GONE_SUFFIX}`;
    } catch {
      // not there, or not renamable here: removed under its own name
    }
    for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
      try {
        rmSync(target, { recursive: true, force: true });
        break;
      } catch {
        sleepSync(REMOVE_RETRY_MS); // best effort at the end: a leftover .tmp-* name is never taken for a finished file
      }
    }
  }
  temps.clear();
}

/** A command that stops on its own terms (serve: finish the requests in flight, exit 0). */
type StopHandler = (signal: NodeJS.Signals) => void;
let stopHandler: StopHandler | undefined;

/** While set, SIGINT/SIGTERM call `handler` instead of exiting 130/143; returns the unset function. */
export function handleInterruptsWith(handler: StopHandler): () => void {
  stopHandler = handler;
  return () => {
    if (stopHandler === handler) stopHandler = undefined;
  };
}

let installed = false;

export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  const listeners = new Map<NodeJS.Signals, () => void>();
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const listener = () => {
      if (stopHandler) return stopHandler(signal);
      removeTrackedTemps();
      const text = currentNote();
      process.stderr.write(`\nsvhn: interrupted${text ? `; ${printable(text)}` : ''}\n`);
      // A second signal takes the default action and ends the process at once, should exit
      // itself wait (process.exit waits for libuv's threads; one blocked in a read would hold it).
      for (const [s, l] of listeners) process.off(s, l);
      process.exit(code);
    };
    listeners.set(signal, listener);
    process.on(signal, listener);
  }
}
