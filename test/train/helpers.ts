/**
 * Test helpers for the training stage: a tiny preprocess cache written by hand following
 * src/data/cache/cacheFormat.ts, and a tiny architecture (conv + BatchNorm + seeded dropout +
 * dense, the same moving parts as the real models) that trains in milliseconds on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_BYTES } from '../../src/config.js';
import { CACHE_FORMAT, CACHE_SUBDIR, CACHE_VERSION, MANIFEST_FILE, type DatasetManifest, type SplitEntry } from '../../src/data/cache/cacheFormat.js';
import { batchNorm, conv2d, dense, LayerSeeds, SeededDropout } from '../../src/models/layers.js';
import { MODEL_BUILDERS } from '../../src/models/registry.js';
import { Rng } from '../../src/util/rng.js';

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Images whose mean colour depends on the digit, plus noise: learnable, not trivial. */
export function makeImages(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const y = i % 10;
    labels[i] = y;
    for (let k = 0; k < IMAGE_BYTES; k++) {
      const base = ((y * 25 + (k % 3) * 40) % 256) * (k % 96 < 48 ? 1 : 0.5);
      images[i * IMAGE_BYTES + k] = Math.max(0, Math.min(255, Math.round(base + rng.uniform(-40, 40))));
    }
  }
  return { images, labels };
}

export async function writeTinyCache(
  dataDir: string,
  counts: { train: number; val: number; extra?: number },
  opts: { seed?: number; synthetic?: boolean } = {},
): Promise<void> {
  const dir = join(dataDir, CACHE_SUBDIR);
  await mkdir(dir, { recursive: true });
  const splits: DatasetManifest['splits'] = {};
  let s = opts.seed ?? 7;
  for (const [split, count] of Object.entries(counts) as ['train' | 'val' | 'extra', number | undefined][]) {
    if (count === undefined) continue;
    const { images, labels } = makeImages(count, s++);
    const entry: SplitEntry = {
      count,
      shape: [count, 32, 32, 3],
      imagesFile: `${split}.images.u8`,
      labelsFile: `${split}.labels.u8`,
      classCounts: Array.from({ length: 10 }, (_, d) => labels.filter((l) => l === d).length),
      sha256: { images: hex(images), labels: hex(labels) },
    };
    await writeFile(join(dir, entry.imagesFile), images);
    await writeFile(join(dir, entry.labelsFile), labels);
    splits[split] = entry;
  }
  const manifest: DatasetManifest = {
    format: CACHE_FORMAT,
    version: CACHE_VERSION,
    createdAt: new Date(0).toISOString(),
    synthetic: opts.synthetic ?? true,
    key: 'test',
    options: { valFraction: 0.2, seed: 42, limit: null, valLimit: null, extra: counts.extra !== undefined },
    sources: {},
    splits,
  };
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
}

/** Registers 'tiny' in the model registry (a third architecture is one builder + one entry). */
export function registerTinyModel(): void {
  MODEL_BUILDERS['tiny'] = ({ seed }) => {
    const seeds = new LayerSeeds(seed);
    const model = tf.sequential({ name: 'tiny' });
    // Pool first (32x32 -> 8x8) so the cpu backend's slow convolution has little to do.
    model.add(tf.layers.maxPooling2d({ name: 'max_pooling2d_1', poolSize: 4, inputShape: [32, 32, 3] }));
    model.add(conv2d(seeds, 'conv2d_1', 4));
    model.add(batchNorm('batch_normalization_1'));
    model.add(tf.layers.flatten({ name: 'flatten' }));
    model.add(new SeededDropout({ name: 'dropout_1', rate: 0.3, seed: seeds.next() }));
    model.add(dense(seeds, 'dense_1', 10, 'softmax'));
    return model;
  };
}
