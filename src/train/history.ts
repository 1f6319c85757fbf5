/** Training history: one HistoryRecord per epoch, saved as history.json and history.csv. */
import type { HistoryRecord } from '../models/modelDir.js';
import { ratePerSec } from '../progress.js';

export type { HistoryRecord };

/** lr trails: a reader of the older seven columns still finds them where they were. */
export const HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'seconds', 'imagesPerSec', 'lr'] as const;

/** CSV with a header row; numbers at full precision so the file round-trips; a field a record lacks (lr, before it was recorded) is empty. */
export function historyToCsv(history: HistoryRecord[]): string {
  const rows = history.map((r) => HISTORY_COLUMNS.map((c) => (r[c] === undefined ? '' : String(r[c]))).join(','));
  return [HISTORY_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

/**
 * Training throughput, one definition everywhere (the progress display, history's imagesPerSec,
 * metadata's trainImagesPerSec, train's summary): training images / seconds of the training
 * passes (augmentation and steps), validation excluded.
 */
export function imagesPerSec(images: number, seconds: number): number {
  return ratePerSec(images, seconds);
}

/** A run's throughput from its history: all epochs' images over all epochs' training seconds. */
export function runImagesPerSec(history: HistoryRecord[], imagesPerEpoch: number): number {
  return imagesPerSec(history.length * imagesPerEpoch, history.reduce((sum, r) => sum + r.seconds, 0));
}
