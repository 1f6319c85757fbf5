/**
 * The reading stage: input items in, one row per photo out, in input order.
 *
 *   items --(read + decode at the photo's size, `decodeConcurrency` files in flight)--> RgbPhoto
 *         --(reader.read, one photo at a time)--> Reading --(boxes to original pixels)--> row
 *
 * Memory is bounded by decodeConcurrency decoded photos (each at most 1600x1600x3, 7.7 MB:
 * data/images/photo.ts) plus their file bytes when --draw keeps them, whatever the number of inputs.
 */
import { SvhnError } from '../errors.js';
import { decodePhoto, scaleBoxToOriginal, type DecodedPhoto } from '../data/images/photo.js';
import { readImageFile } from '../data/images/decode.js';
import type { InputItem } from '../predict/inputs.js';
import type { Reader } from '../tasks/read/reader.js';
import type { Reading } from '../tasks/read/reading.js';
import { mapOrdered } from '../util/mapOrdered.js';
import { failedRow, readingRow, type ReadRow } from './rows.js';

/**
 * Photos read and decoded at once. The reader works on the JS thread one photo at a time;
 * decodes queued meanwhile keep libuv's threads busy. Few, because a photo is up to 7.7 MB
 * decoded (a 32x32 crop, predict's 32 in flight, is 3 KB).
 */
export const READ_DECODE_CONCURRENCY = 4;

export interface ReadPhotosOptions {
  reader: Reader;
  /** Numbers whose confidence is below this abstain (0..1; 0: never). */
  minConfidence: number;
  decodeConcurrency?: number;
  /** Longest side decoded (default data/images/photo.ts MAX_PHOTO_SIDE). */
  maxSide?: number;
  /** Keep each photo's file bytes beside its row (for --draw). */
  keepBytes?: boolean;
}

/** A row, plus the photo's file bytes when asked for (null for a failed photo). */
export interface ReadItem {
  row: ReadRow;
  bytes: Uint8Array | null;
}

type Loaded = { item: InputItem; decoded: DecodedPhoto; bytes: Uint8Array } | { item: InputItem; error: string };

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A reading of the decoded (maybe scaled-down) photo, with its boxes in the original photo's pixels. */
export function toOriginalPixels(reading: Reading, decoded: DecodedPhoto): Reading {
  return { ...reading, digits: reading.digits.map((d) => ({ ...d, box: scaleBoxToOriginal(d.box, decoded) })) };
}

/** Rows for every item, in input order. A photo that cannot be read or decoded is a row with an error. */
export async function* readPhotos(items: AsyncIterable<InputItem> | Iterable<InputItem>, opts: ReadPhotosOptions): AsyncGenerator<ReadItem> {
  const load = async (item: InputItem): Promise<Loaded> => {
    if (item.kind === 'error') return { item, error: item.error };
    if (item.kind === 'pixels') return { item, error: 'not a photo: a 32x32 digit crop (svhn read takes photo files and folders)' };
    try {
      const bytes = await readImageFile(item.path);
      return { item, decoded: await decodePhoto(bytes, { maxSide: opts.maxSide }), bytes };
    } catch (e) {
      return { item, error: message(e) };
    }
  };
  for await (const loaded of mapOrdered(items, load, opts.decodeConcurrency ?? READ_DECODE_CONCURRENCY)) {
    if ('error' in loaded) {
      yield { row: failedRow(loaded.item.id, loaded.error), bytes: null };
      continue;
    }
    let reading: Reading;
    try {
      reading = await opts.reader.read(loaded.decoded.photo);
    } catch (e) {
      // A photo the reader refuses is that photo's error; anything else (a broken model) ends the run.
      if (e instanceof SvhnError && e.code === 'BAD_INPUT') {
        yield { row: failedRow(loaded.item.id, e.message), bytes: null };
        continue;
      }
      throw e;
    }
    const row = readingRow(loaded.item.id, toOriginalPixels(reading, loaded.decoded), opts.minConfidence);
    yield { row, bytes: opts.keepBytes ? loaded.bytes : null };
  }
}
