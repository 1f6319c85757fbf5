/** Training history: one HistoryRecord per epoch, saved as history.json and history.csv. */
import type { HistoryRecord } from '../models/modelDir.js';

export type { HistoryRecord };

export const HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'seconds', 'imagesPerSec'] as const;

/** CSV with a header row; numbers at full precision so the file round-trips. */
export function historyToCsv(history: HistoryRecord[]): string {
  const rows = history.map((r) => HISTORY_COLUMNS.map((c) => String(r[c])).join(','));
  return [HISTORY_COLUMNS.join(','), ...rows].join('\n') + '\n';
}
