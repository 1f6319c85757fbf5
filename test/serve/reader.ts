/**
 * A reader model directory for the serve tests, made in a second without training: the
 * detector as buildModel('reader') builds it (untrained, seeded), saved as `svhn train` saves
 * it, a metadata.json with task 'read', and a digit model copied into classifier/. Its
 * readings mean nothing, but they are deterministic, which is all the parity tests need.
 *
 * `centreBias` is added to the centre logit's bias (the prior's -2.19: sigmoid 0.1, under the
 * 0.3 threshold, so an untrained reader finds nothing):
 *   SILENT (-30: sigmoid 1e-13): no centre passes any threshold and every photo reads as "no
 *     number", the honest way to test that path without a competent reader;
 *   LOUD (+4: most cells pass): many peaks, so boxes, crops and the classifier all run.
 */
export const SILENT = -30;
export const LOUD = 4;

import * as tf from '@tensorflow/tfjs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { saveLayersModel } from '../../src/models/io.js';
import { buildModel, countParams } from '../../src/models/registry.js';

/** `detector`: another detector in its place (a reader as an older svhn saved it). */
export async function writeReaderModel(dir: string, opts: { seed: number; classifierDir: string; centreBias?: number; detector?: () => tf.LayersModel }): Promise<void> {
  await mkdir(join(dir, 'classifier'), { recursive: true });
  const model = opts.detector ? opts.detector() : buildModel('reader', { seed: opts.seed });
  if (opts.centreBias) {
    const head = model.layers[model.layers.length - 1]!;
    const [kernel, bias] = head.getWeights();
    const shifted = tf.tidy(() => bias!.add(tf.tensor1d([opts.centreBias!, 0, 0, 0, 0])));
    head.setWeights([kernel!, shifted]);
    shifted.dispose();
  }
  await saveLayersModel(model, dir);
  const params = countParams(model);
  model.dispose();
  const metadata = {
    name: 'reader-test',
    architecture: 'reader',
    task: 'read',
    inputShape: [48, 96, 3],
    numClasses: 10,
    params,
    synthetic: true,
    dataManifestSha256: '',
    seed: opts.seed,
    backend: 'cpu',
    threads: 1,
    versions: {},
    hyperparameters: { epochs: 0, batchSize: 1, lr: 0, patience: 0, augment: false, limit: null, valLimit: null, extra: false },
    epochsRun: 0,
    bestEpoch: 0,
    stoppedEarly: false,
    validation: { loss: 0, acc: 0 },
    wallTimeSec: 0,
    trainImagesPerSec: 0,
    createdAt: new Date(0).toISOString(),
  };
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(metadata, null, 2));
  for (const f of ['model.json', 'weights.bin', 'metadata.json']) await copyFile(join(opts.classifierDir, f), join(dir, 'classifier', f));
}
