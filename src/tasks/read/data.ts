/**
 * The reader's training data: the photo cache (`svhn preprocess --format full`,
 * data/cache/photoCache.ts), train and val splits of letterboxed photos with their box
 * records; --limit / --val-limit take a seeded random subset (photos have no class to
 * stratify by).
 */
import type { ImageSet } from '../../data/cache/batches.js';
import { gatherImages } from '../../data/cache/batches.js';
import { Rng } from '../../util/rng.js';
import { READ_LAYOUT } from '../layout.js';

export interface PhotoTrainingData {
  train: ImageSet;
  val: ImageSet;
  manifestSha256: string;
  synthetic: boolean;
}

export async function loadPhotoTrainingData(o: { dataDir: string; limit: number | null; valLimit: number | null; seed: number }): Promise<PhotoTrainingData> {
  const { openPhotoCache, readPhotoSplit } = await import('../../data/cache/photoCache.js');
  const cache = await openPhotoCache(o.dataDir, { verify: true });
  const subsample = (set: ImageSet, n: number | null): ImageSet => {
    if (n === null || n >= set.count) return set;
    const order = new Rng(o.seed).shuffle(Uint32Array.from({ length: set.count }, (_, i) => i));
    const chosen = order.subarray(0, n).sort();
    return gatherImages(set, chosen, READ_LAYOUT);
  };
  const train = await readPhotoSplit(cache, 'train');
  const val = await readPhotoSplit(cache, 'val');
  return {
    train: subsample({ count: train.count, images: train.images, labels: train.labels }, o.limit),
    val: subsample({ count: val.count, images: val.images, labels: val.labels }, o.valLimit),
    manifestSha256: cache.manifestSha256,
    synthetic: cache.manifest.synthetic,
  };
}
