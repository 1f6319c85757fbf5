/**
 * Fine-tuning (`svhn train --init MODEL_DIR`): a run that starts from a trained model's
 * weights, BatchNorm statistics included, instead of fresh initialisers. The parent is named
 * by its path and pinned by hashes (weights.bin, metadata.json) and by the data it was trained
 * on (its dataset manifest hash): the checkpoint and the new metadata.json carry that record,
 * so a resumed fine-tune checks it continues from the same parent.
 */
import type * as tf from '@tensorflow/tfjs';
import { join, resolve } from 'node:path';
import { SvhnError, ioError } from '../errors.js';
import { assertModelDir, loadLayersModel, readModelMetadata } from '../models/io.js';
import { METADATA_JSON, WEIGHTS_BIN, type ParentModel } from '../models/modelDir.js';
import { sha256 } from '../util/atomic.js';
import { readRegularFile } from '../util/files.js';
import { captureWeights, restoreWeights } from './weights.js';

function assertParentDir(dir: string): void {
  try {
    assertModelDir(dir);
  } catch (e) {
    throw new SvhnError('BAD_MODEL', `--init ${dir}: no such model directory`, { suggestion: 'pass a directory written by `svhn train`, e.g. models/optimized', cause: e });
  }
}

async function hashOf(path: string): Promise<string> {
  try {
    return sha256(await readRegularFile(path));
  } catch (e) {
    throw new SvhnError('BAD_MODEL', `--init: ${ioError(path, 'read', e).message}`, { cause: e });
  }
}

/**
 * Reads and pins the parent, and checks that `architecture` is the parent's (a fine-tune
 * keeps the architecture: its weights must fit).
 */
export async function describeParent(dir: string, architecture: string): Promise<ParentModel> {
  assertParentDir(dir);
  const metadata = await readModelMetadata(dir, { flag: '--init' });
  if (metadata.architecture !== architecture) {
    throw new SvhnError('BAD_FLAG', `--model ${architecture}: --init ${dir} is a ${metadata.architecture} model, and a fine-tune keeps the architecture`, {
      suggestion: `drop --model (it defaults to the parent's) or pass --model ${metadata.architecture}`,
    });
  }
  return {
    dir: resolve(dir),
    name: metadata.name,
    architecture: String(metadata.architecture),
    weightsSha256: await hashOf(join(dir, WEIGHTS_BIN)),
    metadataSha256: await hashOf(join(dir, METADATA_JSON)),
    dataManifestSha256: metadata.dataManifestSha256,
    synthetic: Boolean(metadata.synthetic),
  };
}

/**
 * A resumed run continues the fine-tune its checkpoint started, from the same parent: the
 * same --init (or a copy of it), whose weights have not changed since.
 */
export function checkResumedParent(saved: ParentModel | undefined, parent: ParentModel | null, ckptDir: string): void {
  if (saved && !parent) {
    throw new SvhnError('BAD_INPUT', `--resume: the checkpoint in ${ckptDir} fine-tunes ${saved.dir}`, { suggestion: `pass --init ${saved.dir} and the other flags of that run` });
  }
  if (!saved && parent) {
    throw new SvhnError('BAD_INPUT', `--resume: the checkpoint in ${ckptDir} trains from scratch, this run has --init ${parent.dir}`, { suggestion: 'drop --init to resume it' });
  }
  if (saved && parent && saved.weightsSha256 !== parent.weightsSha256 && saved.dir !== parent.dir) {
    throw new SvhnError('BAD_INPUT', `--resume: --init ${parent.dir} differs from the parent of the checkpoint in ${ckptDir}, ${saved.dir} (weights.bin sha256 ${parent.weightsSha256.slice(0, 12)}... vs ${saved.weightsSha256.slice(0, 12)}...)`, {
      suggestion: `pass --init ${saved.dir} to resume it, or train without --resume to fine-tune ${parent.dir}`,
    });
  }
  if (saved && parent && saved.weightsSha256 !== parent.weightsSha256) {
    throw new SvhnError('BAD_INPUT', `--resume: --init ${parent.dir} has changed since the checkpoint (weights.bin sha256 ${saved.weightsSha256.slice(0, 12)}... then, ${parent.weightsSha256.slice(0, 12)}... now)`, {
      suggestion: 'train without --resume to fine-tune the new weights',
    });
  }
}

/** The architecture a model directory holds (for --model's default under --init). */
export async function parentArchitecture(dir: string): Promise<string> {
  assertParentDir(dir);
  return String((await readModelMetadata(dir, { flag: '--init' })).architecture);
}

/**
 * Copies the parent's weights into `model`, a freshly built model of the same architecture:
 * same number of weights, same names and shapes, in the same order (or a BAD_MODEL error
 * naming the first that differs). The parent's tensors are disposed here.
 */
export async function copyParentWeights(parent: ParentModel, model: tf.LayersModel): Promise<void> {
  const saved = await loadLayersModel(parent.dir, { flag: '--init' });
  let snapshot;
  try {
    snapshot = captureWeights(saved); // JS copies: nothing left to dispose once `saved` is
  } finally {
    saved.dispose();
  }
  const want = model.weights;
  if (snapshot.length !== want.length) {
    throw new SvhnError('BAD_MODEL', `--init ${parent.dir}: has ${snapshot.length} weight arrays, a ${parent.architecture} model ${want.length}`);
  }
  snapshot.forEach((s, i) => {
    const w = want[i]!;
    if (s.name !== w.originalName || s.shape.join('x') !== w.shape.join('x')) {
      throw new SvhnError('BAD_MODEL', `--init ${parent.dir}: weight ${i} is ${s.name} ${s.shape.join('x')}, expected ${w.originalName} ${w.shape.join('x')} for ${parent.architecture}`);
    }
  });
  restoreWeights(model, snapshot);
}
