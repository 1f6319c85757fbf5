/**
 * What `svhn train --out DIR` (and `svhn demo --out DIR`) may replace. The model directory is
 * swapped in whole at the end of a run (util/atomic.ts buildDirAtomic), so whatever DIR held
 * goes. Allowed: nothing there, an empty folder, or, with --force, an earlier model (its files
 * and its evaluations, nothing else). A folder holding anything else (a data folder, the
 * cache, a user's pictures) is refused, --force or not; so is a file. `svhn demo` replaces a
 * model that an earlier demo made without --force: `npm start` runs again as often as asked.
 */
import { join } from 'node:path';
import { SvhnError, ioError } from '../errors.js';
import { EVALUATION_DIRS, EVALUATION_FILES, METADATA_JSON, MODEL_DIR_FILES, MODEL_JSON, READER_CLASSIFIER_DIR, WEIGHTS_BIN } from '../models/modelDir.js';
import { firstAndCount, replaceTarget } from '../util/dirs.js';
import { readJsonFile } from '../util/json.js';

/** The command that made a model (metadata.json `madeBy`; absent in models made before it was recorded). */
export type MadeBy = 'train' | 'demo' | 'tune';

export interface OutDirPolicy {
  /** --force: replace an earlier model. */
  force: boolean;
  /** The command writing the model. */
  madeBy: MadeBy;
}

async function entriesOf(dir: string): Promise<string[] | 'missing' | 'not-dir'> {
  try {
    const t = await replaceTarget(dir);
    return t.kind === 'dir' ? t.entries : t.kind;
  } catch (e) {
    throw ioError(dir, 'read', e);
  }
}

/** Paths under dir (relative, '/'-joined) that are not a model's or its evaluations' own. */
async function foreignEntries(dir: string, entries: string[]): Promise<string[]> {
  const modelFiles = new Set<string>(MODEL_DIR_FILES);
  const evaluationDirs = new Set<string>(Object.values(EVALUATION_DIRS));
  const evaluationFiles = new Set<string>(EVALUATION_FILES);
  const foreign: string[] = [];
  for (const name of entries) {
    if (modelFiles.has(name)) continue;
    if (name === READER_CLASSIFIER_DIR) {
      // a reader's copy of its digit classifier: model files only
      const inner = await entriesOf(join(dir, name));
      if (inner === 'not-dir') foreign.push(name);
      else if (inner !== 'missing') foreign.push(...inner.filter((f) => !modelFiles.has(f)).map((f) => `${name}/${f}`));
      continue;
    }
    if (evaluationDirs.has(name)) {
      const inner = await entriesOf(join(dir, name));
      if (inner === 'not-dir') foreign.push(name);
      else if (inner !== 'missing') foreign.push(...inner.filter((f) => !evaluationFiles.has(f)).map((f) => `${name}/${f}`));
      continue;
    }
    foreign.push(name);
  }
  return foreign;
}

/** Who made the model in dir: its metadata's madeBy, or undefined (unreadable, or older than the field). */
async function madeByOf(dir: string): Promise<MadeBy | undefined> {
  try {
    const m = (await readJsonFile(join(dir, METADATA_JSON), { code: 'BAD_MODEL' })) as { madeBy?: unknown };
    return m.madeBy === 'train' || m.madeBy === 'demo' || m.madeBy === 'tune' ? m.madeBy : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses an outDir whose contents a finished run would destroy (see the file comment).
 * Called before any work and again just before the swap (the folder may have changed in a
 * long run).
 */
export async function assertModelOutReplaceable(outDir: string, policy: OutDirPolicy): Promise<void> {
  const entries = await entriesOf(outDir);
  if (entries === 'missing') return;
  if (entries === 'not-dir') {
    throw new SvhnError('BAD_FLAG', `--out ${outDir}: expected a directory for the model, got a file`, { suggestion: 'pass another --out' });
  }
  if (entries.length === 0) return;
  const foreign = await foreignEntries(outDir, entries);
  if (foreign.length) {
    throw new SvhnError('BAD_FLAG', `--out ${outDir}: expected a new directory or an earlier model (it is replaced whole), got one holding ${firstAndCount(foreign)}`, {
      suggestion: 'pass another --out, or move those files out first',
    });
  }
  if (policy.force) return;
  const finished = [MODEL_JSON, WEIGHTS_BIN, METADATA_JSON].every((f) => entries.includes(f));
  // demo and tune replace their own runs' models (npm start again; a trial taken over)
  if (finished && policy.madeBy !== 'train' && (await madeByOf(outDir)) === policy.madeBy) return;
  throw new SvhnError('BAD_FLAG', `--out ${outDir}: holds ${finished ? 'a trained model' : 'part of a model'}, which this run would replace`, {
    suggestion: 'pass --force to replace it, or another --out',
  });
}
