/**
 * Ctrl-C and kill: nothing lost, nothing half-made left behind. Every temporary file or
 * directory that will later be renamed into place is tracked here while it exists; the CLI's
 * one interrupt handler removes them all, prints one line (plus what the running command
 * says about going on, e.g. train's --resume hint) and exits 130 (SIGINT) or 143 (SIGTERM).
 * Final names are only ever reached by rename, so they hold complete files or nothing.
 */
import { rmSync } from 'node:fs';

const temps = new Set<string>();
let note: string | undefined;

/** Tracks a temporary path until the returned release function is called (after its rename). */
export function trackTemp(path: string): () => void {
  temps.add(path);
  return () => {
    temps.delete(path);
  };
}

/** What the interrupt line should add, e.g. how to resume. */
export function setInterruptNote(text: string | undefined): void {
  note = text;
}

/** Removes every tracked temporary path (synchronously: it runs in a signal handler). */
export function removeTrackedTemps(): void {
  for (const p of temps) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort: a leftover .tmp-* name is never taken for a finished file
    }
  }
  temps.clear();
}

let installed = false;

export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      removeTrackedTemps();
      process.stderr.write(`\nsvhn: interrupted${note ? `; ${note}` : ''}\n`);
      process.exit(code);
    });
  }
}
