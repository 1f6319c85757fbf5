/**
 * A study folder's names (tune/run.ts writes them, report/tune.ts reads them), in a file that
 * loads nothing else, so the report draws a study without loading the training stack.
 *
 *   <out>/study.pglite/           the embedded store (none with --storage postgres://...)
 *   <out>/trials/0003/            trial 3's model directory, as train writes it
 *   <out>/trials/0003.checkpoint/ its checkpoint while it runs (removed when it is pruned)
 *   <out>/trials.csv              every trial: number, state, value, epochs, parameters
 *   <out>/trials.json             the same whole (each epoch's value too) with the study's spec
 *   <out>/best.json               the best trial's flags: `svhn train --config <out>/best.json`
 */
import { join } from 'node:path';

export const BEST_JSON = 'best.json';
export const TRIALS_CSV = 'trials.csv';
export const TRIALS_JSON = 'trials.json';
export const EMBEDDED_STORE_DIR = 'study.pglite';

export function trialDir(studyDir: string, number: number): string {
  return join(studyDir, 'trials', String(number).padStart(4, '0'));
}
