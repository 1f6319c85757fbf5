/**
 * Labelled image fixtures made in the test itself: digit folders and CSVs of small images in
 * the colour-model's prototype colours (test/predict/helpers.ts), so the colour model reads
 * each one as its digit, with a little seeded noise and odd sizes so decoding, resizing and
 * padding all have work to do.
 */
import sharp from 'sharp';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Rng } from '../../../src/util/rng.js';
import { PROTOTYPES } from '../../predict/helpers.js';

export type FixtureFormat = 'png' | 'jpeg' | 'webp';

/** A w x h image of `digit`'s prototype colour, each pixel moved by up to +-noise, encoded as `format`. */
export async function digitImage(digit: number, opts: { width: number; height: number; seed: number; format?: FixtureFormat; noise?: number }): Promise<Buffer> {
  const { width, height } = opts;
  const rng = new Rng(opts.seed);
  const noise = opts.noise ?? 12;
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.max(0, Math.min(255, PROTOTYPES[digit]![c]! + Math.round(rng.uniform(-noise, noise))));
  }
  const img = sharp(raw, { raw: { width, height, channels: 3 } });
  const format = opts.format ?? 'png';
  return format === 'png' ? img.png().toBuffer() : format === 'jpeg' ? img.jpeg({ quality: 95 }).toBuffer() : img.webp({ lossless: true }).toBuffer();
}

export interface FixtureFile {
  name: string; // relative to the folder
  label: number;
}

/**
 * Writes root/<digit>/<nn>.<ext>: perDigit[d] images of digit d (a number: that many each),
 * sizes 18..41 x 24..47, formats cycling png, jpeg, webp. Returns the files in listing order.
 */
export async function writeDigitFolder(root: string, perDigit: number | number[], seed = 1): Promise<FixtureFile[]> {
  const counts = typeof perDigit === 'number' ? new Array<number>(10).fill(perDigit) : perDigit;
  const rng = new Rng(seed);
  const files: FixtureFile[] = [];
  const formats: FixtureFormat[] = ['png', 'jpeg', 'webp'];
  for (let d = 0; d < 10; d++) {
    await mkdir(join(root, String(d)), { recursive: true });
    for (let i = 0; i < counts[d]!; i++) {
      const format = formats[(d + i) % formats.length]!;
      const name = `${d}/${String(i).padStart(2, '0')}.${format === 'jpeg' ? 'jpg' : format}`;
      const bytes = await digitImage(d, { width: 18 + rng.int(24), height: 24 + rng.int(24), seed: rng.nextU32(), format });
      await writeFile(join(root, name), bytes);
      files.push({ name, label: d });
    }
  }
  return files;
}

/** Writes a CSV of path,label rows (with a `file,label` header unless told otherwise). */
export async function writeLabelsCsv(path: string, rows: Array<[string, number | string]>, header = true): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const lines = [...(header ? ['file,label'] : []), ...rows.map(([f, l]) => `${f},${l}`)];
  await writeFile(path, lines.join('\n') + '\n');
}
