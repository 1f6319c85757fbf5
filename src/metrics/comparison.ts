/**
 * The side-by-side comparison of several evaluated models (the notebook's table of accuracy,
 * macro F1 and weighted F1), with loss, size and speed; the best value of each column marked.
 */
import { formatFixed } from './classification.js';

export interface ModelSummary {
  name: string;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  loss: number;
  params: number;
  imagesPerSec: number;
  synthetic: boolean; // evaluated on synthetic data
  /** Trained on the synthetic sample, evaluated on other data (absent: false). */
  modelSynthetic?: boolean;
}

export type ComparedColumn = 'accuracy' | 'macroF1' | 'weightedF1' | 'loss' | 'params' | 'imagesPerSec';

export interface Comparison {
  rows: ModelSummary[];
  /** Row index of the best value per column: highest, except loss and params (lowest). */
  bestByColumn: Record<ComparedColumn, number>;
  /** The best model overall: highest accuracy, then lowest loss. */
  best: number;
}

const LOWER_IS_BETTER: ReadonlySet<ComparedColumn> = new Set(['loss', 'params']);
const COLUMNS: ComparedColumn[] = ['accuracy', 'macroF1', 'weightedF1', 'loss', 'params', 'imagesPerSec'];

export function compareModels(rows: ModelSummary[]): Comparison {
  const bestIndex = (col: ComparedColumn) => {
    let best = 0;
    rows.forEach((r, i) => {
      const a = r[col];
      const b = rows[best]![col];
      if (LOWER_IS_BETTER.has(col) ? a < b : a > b) best = i;
    });
    return best;
  };
  const bestByColumn = Object.fromEntries(COLUMNS.map((c) => [c, bestIndex(c)])) as Record<ComparedColumn, number>;
  let best = 0;
  rows.forEach((r, i) => {
    const b = rows[best]!;
    if (r.accuracy > b.accuracy || (r.accuracy === b.accuracy && r.loss < b.loss)) best = i;
  });
  return { rows, bestByColumn, best };
}

/** Cell texts per row, in COLUMNS order, for text and HTML tables alike. */
export function comparisonCells(c: Comparison): { headers: string[]; cells: string[][] } {
  const headers = ['model', 'accuracy', 'macro F1', 'weighted F1', 'loss', 'parameters', 'images/s'];
  const cells = c.rows.map((r) => [
    r.name + (r.synthetic ? ' (SYNTHETIC)' : r.modelSynthetic ? ' (trained on SYNTHETIC)' : ''),
    formatFixed(r.accuracy, 4),
    formatFixed(r.macroF1, 4),
    formatFixed(r.weightedF1, 4),
    formatFixed(r.loss, 4),
    r.params.toLocaleString('en-US'),
    formatFixed(r.imagesPerSec, 0),
  ]);
  return { headers, cells };
}

/**
 * Aligned text table; `*` after the best value of each column and "<- best" after the best
 * model (highest accuracy).
 */
export function formatComparison(c: Comparison): string {
  const { headers, cells } = comparisonCells(c);
  const marked = cells.map((row, i) =>
    row.map((cell, j) => (j === 0 || c.rows.length < 2 ? cell : cell + (c.bestByColumn[COLUMNS[j - 1]!] === i ? '*' : ' '))),
  );
  const widths = headers.map((h, j) => Math.max(h.length, ...marked.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  ');
  const out = [line(headers), widths.map((w) => '-'.repeat(w)).join('  ')];
  marked.forEach((r, i) => out.push(line(r) + (c.rows.length > 1 && i === c.best ? '  <- best' : '')));
  if (c.rows.length > 1) out.push('* best in its column (lowest for loss and parameters)');
  return out.join('\n') + '\n';
}
