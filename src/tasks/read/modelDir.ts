/**
 * A reader's model directory: the detector as a stock tfjs layers model (model.json,
 * weights.bin, like every model), its metadata with `task: 'read'`, and in `classifier/` a
 * copy of the digit model that reads each box it finds, so the directory stands alone (serve
 * and the browser load both from it).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SvhnError } from '../../errors.js';
import { assertModelDir, readModelMetadata } from '../../models/io.js';
import { METADATA_JSON, MODEL_JSON, READER_CLASSIFIER_DIR, WEIGHTS_BIN } from '../../models/modelDir.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { readRegularFile } from '../../util/files.js';
import { makeDirs } from '../../util/mkdirs.js';

/** The digit model a reader classifies its boxes with, as metadata.json records it. */
export interface ClassifierRecord {
  /** Its folder inside the reader's directory. */
  dir: typeof READER_CLASSIFIER_DIR;
  /** Where it was copied from, its name and architecture. */
  source: string;
  name: string;
  architecture: string;
  synthetic: boolean;
  weightsSha256: string;
}

/** The classifier's files, read and checked before any training (a reader without one cannot read). */
export interface ClassifierFiles {
  record: ClassifierRecord;
  files: Map<string, Buffer>;
}

/** Reads --classifier DIR: a digit model directory (32x32x3 in, 10 out), refused in one line otherwise. */
export async function readClassifierFiles(dir: string): Promise<ClassifierFiles> {
  assertModelDir(dir, '--classifier'); // a missing folder says so, as --model and --init do
  const metadata = await readModelMetadata(dir, { flag: '--classifier' });
  if ((metadata.task ?? 'classify') !== 'classify') {
    throw new SvhnError('BAD_FLAG', `--classifier ${dir}: is a ${metadata.task} model; expected a digit model (svhn train --model optimized)`);
  }
  const shape = metadata.inputShape ?? [];
  if (shape.join('x') !== '32x32x3' || metadata.numClasses !== 10) {
    throw new SvhnError('BAD_FLAG', `--classifier ${dir}: takes [${shape.join(', ')}] with ${metadata.numClasses} classes; expected 32x32x3 digits, 10 classes`);
  }
  const files = new Map<string, Buffer>();
  for (const name of [MODEL_JSON, WEIGHTS_BIN, METADATA_JSON]) files.set(name, await readRegularFile(join(dir, name)));
  return {
    record: {
      dir: READER_CLASSIFIER_DIR,
      source: dir,
      name: metadata.name,
      architecture: metadata.architecture,
      synthetic: Boolean(metadata.synthetic),
      weightsSha256: createHash('sha256').update(files.get(WEIGHTS_BIN)!).digest('hex'),
    },
    files,
  };
}

/** Writes the classifier's copy into a reader directory being built (`dir`: its temporary). */
export async function writeClassifierCopy(dir: string, c: ClassifierFiles): Promise<void> {
  const into = join(dir, READER_CLASSIFIER_DIR);
  await makeDirs(into);
  for (const [name, bytes] of c.files) await writeFileAtomic(join(into, name), bytes);
}
