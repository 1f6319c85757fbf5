/**
 * Tiny stand-ins for the real pipeline's files: a preprocess cache written by hand per
 * src/data/cache/cacheFormat.ts and a model directory per src/models/modelDir.ts (a small dense
 * network saved with saveLayersModel), so evaluate and report tests need no training.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_BYTES } from '../../src/config.js';
import { CACHE_FORMAT, CACHE_SUBDIR, CACHE_VERSION, MANIFEST_FILE, type DatasetManifest, type SplitEntry } from '../../src/data/cache/cacheFormat.js';
import { saveLayersModel } from '../../src/models/io.js';
import { HISTORY_JSON, METADATA_JSON, type HistoryRecord, type ModelMetadata } from '../../src/models/modelDir.js';
import { sha256 } from '../../src/util/atomic.js';
import { Rng } from '../../src/util/rng.js';

export interface CacheSpec {
  splits: Partial<Record<'train' | 'val' | 'test', number>>; // image counts
  synthetic?: boolean;
  seed?: number;
}

/** Writes <dataDir>/cache with random images whose mean brightness encodes the label. */
export async function writeTinyCache(dataDir: string, spec: CacheSpec): Promise<void> {
  const dir = join(dataDir, CACHE_SUBDIR);
  await mkdir(dir, { recursive: true });
  const rng = new Rng(spec.seed ?? 1);
  const splits: DatasetManifest['splits'] = {};
  for (const [split, count] of Object.entries(spec.splits) as [string, number][]) {
    const images = new Uint8Array(count * IMAGE_BYTES);
    const labels = new Uint8Array(count);
    const classCounts = new Array(10).fill(0) as number[];
    for (let i = 0; i < count; i++) {
      const label = i < 10 ? i : rng.int(10);
      labels[i] = label;
      classCounts[label]!++;
      for (let k = 0; k < IMAGE_BYTES; k++) images[i * IMAGE_BYTES + k] = Math.min(255, label * 25 + rng.int(30));
    }
    const entry: SplitEntry = {
      count,
      shape: [count, 32, 32, 3],
      imagesFile: `${split}.images.u8`,
      labelsFile: `${split}.labels.u8`,
      classCounts,
      sha256: { images: sha256(images), labels: sha256(labels) },
    };
    await writeFile(join(dir, entry.imagesFile), images);
    await writeFile(join(dir, entry.labelsFile), labels);
    splits[split as 'test'] = entry;
  }
  const manifest: DatasetManifest = {
    format: CACHE_FORMAT,
    version: CACHE_VERSION,
    createdAt: new Date().toISOString(),
    synthetic: spec.synthetic ?? false,
    key: 'test-fixture',
    options: { valFraction: 0.2, seed: 42, limit: null, valLimit: null, extra: false },
    sources: {},
    splits,
  };
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
}

export interface ModelSpec {
  name?: string;
  inputShape?: [number, number, number];
  synthetic?: boolean;
  seed?: number;
  history?: boolean;
}

/** Writes a model directory: a flatten + dense softmax net, metadata.json and history.json. */
export async function writeTinyModel(dir: string, spec: ModelSpec = {}): Promise<void> {
  const inputShape = spec.inputShape ?? [32, 32, 3];
  const seed = spec.seed ?? 3;
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
    ],
  });
  await mkdir(dir, { recursive: true });
  await saveLayersModel(model, dir);
  const params = model.countParams();
  model.dispose();
  const name = spec.name ?? 'tiny';
  const metadata: ModelMetadata = {
    name,
    architecture: 'tiny-dense',
    inputShape,
    numClasses: 10,
    params: { total: params, trainable: params, nonTrainable: 0 },
    synthetic: spec.synthetic ?? false,
    dataManifestSha256: '0'.repeat(64),
    seed,
    backend: 'cpu',
    threads: 1,
    versions: { tfjs: tf.version_core },
    hyperparameters: { epochs: 3, batchSize: 64, lr: 1e-3, patience: 3, augment: false, limit: null, valLimit: null, extra: false },
    epochsRun: 3,
    bestEpoch: 3,
    stoppedEarly: false,
    validation: { loss: 1.5, acc: 0.5 },
    wallTimeSec: 1,
    trainImagesPerSec: 100,
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(dir, METADATA_JSON), JSON.stringify(metadata, null, 2));
  if (spec.history ?? true) {
    const history: HistoryRecord[] = [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 2 / epoch,
      acc: 0.3 * epoch,
      val_loss: 2.1 / epoch,
      val_acc: 0.28 * epoch,
      seconds: 1,
      imagesPerSec: 100,
    }));
    await writeFile(join(dir, HISTORY_JSON), JSON.stringify(history));
  }
}
