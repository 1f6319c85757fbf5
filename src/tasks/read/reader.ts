/**
 * PLACEHOLDER so `svhn read` compiles before the reader model lands: the exports are the agreed
 * API, the body is not the reader. loadReader refuses every directory in one line: one that is
 * not a model directory, a digit model (metadata.json without task 'reader'), and, until the
 * real loader replaces this file, a reader's too.
 */
import { SvhnError } from '../../errors.js';
import { assertModelDir, readModelMetadata } from '../../models/io.js';
import type { Reading, RgbPhoto } from './reading.js';

export interface Reader {
  name: string; // the model directory's basename
  metadata: { synthetic: boolean; [k: string]: unknown };
  read(photo: RgbPhoto): Promise<Reading>; // one photo, any size
  dispose(): void;
}

export async function loadReader(dir: string, opts: { flag?: '--model' } = {}): Promise<Reader> {
  const flag = opts.flag ?? '--model';
  assertModelDir(dir, flag);
  const metadata = (await readModelMetadata(dir, { flag })) as unknown as Record<string, unknown>;
  const task = typeof metadata.task === 'string' ? metadata.task : 'classifier';
  if (task !== 'reader') {
    throw new SvhnError('BAD_MODEL', `${flag} ${dir}: expected a reader model, got a ${task === 'classifier' ? 'digit classifier' : `'${task}' model`}`, {
      suggestion: 'train one with `svhn train --model reader`',
    });
  }
  throw new SvhnError('BAD_MODEL', `${flag} ${dir}: this build cannot load reader models yet`);
}
