/**
 * Uploaded images -> rows, through predict's own path: decodeImage (the resize-and-pad of
 * `svhn predict`), then predictItems (batching, x / 255, top-k) and jsonRow (JSONL's
 * rounding). So a file sent to the API gets the row `svhn predict --format jsonl` writes for
 * it, apart from `input`, which is the uploaded name.
 *
 * Each image is decoded once and the pixels go to every model asked for.
 */
import sharp from 'sharp';
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from '../config.js';
import { decodeImage } from '../data/images/decode.js';
import type { InputItem } from '../predict/inputs.js';
import { jsonRow } from '../predict/output.js';
import { DECODE_CONCURRENCY, predictItems } from '../predict/predict.js';
import { mapOrdered } from '../util/mapOrdered.js';
import type { ServedClassifier } from './models.js';

export interface Upload {
  name: string; // the multipart file name, or "body" for a raw image body
  bytes: Buffer;
}

export interface UploadPredictOptions {
  topK: number;
  /** Rows under this top probability abstain (`predicted` null, `best` kept); 0: never. */
  minConfidence?: number;
  batchSize: number;
  maxPixels: number;
  /** Also return each decoded 32x32 input as a PNG data URL (the page shows what the model saw). */
  withInputs: boolean;
}

export type JsonRow = ReturnType<typeof jsonRow>;

export interface PredictResponse {
  models: Array<{ model: string; rows: JsonRow[] }>;
  /** With withInputs: the 32x32 image each model saw, per upload (null where decoding failed). */
  inputs?: Array<string | null>;
}

export interface UploadPrediction {
  response: PredictResponse;
  failed: number; // uploads that did not decode
}

async function pngDataUrl(image: Uint8Array): Promise<string> {
  const png = await sharp(image, { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: IMAGE_CHANNELS } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

export async function predictUploads(uploads: Upload[], models: ServedClassifier[], opts: UploadPredictOptions): Promise<UploadPrediction> {
  const decodeOne = async (u: Upload): Promise<InputItem> => {
    try {
      return { kind: 'pixels', id: u.name, image: await decodeImage(u.bytes, { maxPixels: opts.maxPixels }), label: null };
    } catch (e) {
      return { kind: 'error', id: u.name, error: e instanceof Error ? e.message : String(e) };
    }
  };
  const items: InputItem[] = [];
  for await (const item of mapOrdered(uploads, decodeOne, DECODE_CONCURRENCY)) items.push(item);

  const response: PredictResponse = { models: [] };
  for (const m of models) {
    const rows: JsonRow[] = [];
    for await (const { row } of predictItems(items, { model: m.model, batchSize: opts.batchSize, topK: opts.topK, minConfidence: opts.minConfidence })) rows.push(jsonRow(row));
    response.models.push({ model: m.name, rows });
  }
  if (opts.withInputs) response.inputs = await Promise.all(items.map((it) => (it.kind === 'pixels' ? pngDataUrl(it.image) : null)));
  return { response, failed: items.filter((it) => it.kind === 'error').length };
}
