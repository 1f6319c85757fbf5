/**
 * Uploaded photos -> reading rows, through `svhn read`'s own path: decodePhoto (the photo at
 * its size, a longer side over MAX_PHOTO_SIDE scaled down), the reader, the boxes back in the
 * original photo's pixels (toOriginalPixels) and readingRow / failedRow. So a photo sent to
 * /v1/read gets the row `svhn read --format jsonl` writes for it, apart from `input`, which
 * is the uploaded name.
 *
 * Each photo is decoded once and its pixels go to every reader asked for. A decoded photo is
 * up to 1600x1600x3 (7.7 MB), so photos stream through: at most READ_DECODE_CONCURRENCY are
 * held decoded at a time, whatever the number of files.
 */
import { decodePhoto, type DecodedPhoto } from '../data/images/photo.js';
import { READ_DECODE_CONCURRENCY, toOriginalPixels } from '../read/read.js';
import { failedRow, readingRow, type ReadRow } from '../read/rows.js';
import { SvhnError } from '../errors.js';
import { mapOrdered } from '../util/mapOrdered.js';
import type { ServedReader } from './models.js';
import type { Upload } from './predict.js';

export interface UploadReadOptions {
  /** Numbers under this confidence abstain (`number` null, `best` kept); 0: never. */
  minConfidence: number;
  maxPixels: number;
}

export interface ReadResponse {
  models: Array<{ model: string; rows: ReadRow[] }>;
}

export interface UploadReading {
  response: ReadResponse;
  failed: number; // uploads that did not decode
}

type Decoded = { name: string; decoded: DecodedPhoto } | { name: string; error: string };

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function readUploads(uploads: Upload[], readers: ServedReader[], opts: UploadReadOptions): Promise<UploadReading> {
  const decodeOne = async (u: Upload): Promise<Decoded> => {
    try {
      return { name: u.name, decoded: await decodePhoto(u.bytes, { maxPixels: opts.maxPixels }) };
    } catch (e) {
      return { name: u.name, error: message(e) };
    }
  };
  const response: ReadResponse = { models: readers.map((m) => ({ model: m.name, rows: [] })) };
  let failed = 0;
  for await (const p of mapOrdered(uploads, decodeOne, READ_DECODE_CONCURRENCY)) {
    if ('error' in p) failed++;
    for (const [i, m] of readers.entries()) response.models[i]!.rows.push('error' in p ? failedRow(p.name, p.error) : await readOne(m, p.name, p.decoded, opts.minConfidence));
  }
  return { response, failed };
}

async function readOne(m: ServedReader, name: string, decoded: DecodedPhoto, minConfidence: number): Promise<ReadRow> {
  try {
    return readingRow(name, toOriginalPixels(await m.reader.read(decoded.photo), decoded), minConfidence);
  } catch (e) {
    // As `svhn read`: a photo the reader refuses is that photo's error; anything else is the server's (500).
    if (e instanceof SvhnError && e.code === 'BAD_INPUT') return failedRow(name, e.message);
    throw e;
  }
}
