/**
 * The side-by-side comparison of several evaluated models (the notebook's table of accuracy,
 * macro F1 and weighted F1), with loss, size and speed; the best value of each column marked.
 */
import { formatFixed } from './classification.js';
import { formatInterval, mcnemarExact, type AccuracyInterval } from './intervals.js';

export interface ModelSummary {
  name: string;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  loss: number;
  params: number;
  imagesPerSec: number;
  /** Wilson 95% interval of the accuracy (absent in evaluations from an older svhn). */
  accuracyInterval?: AccuracyInterval;
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
  /** Exact McNemar test of each pair, when the models were scored on the same images. */
  pairs?: McNemarPair[];
}

/** Two models on the same images: who gets which right, and the two-sided exact p-value. */
export interface McNemarPair {
  a: string;
  b: string;
  aRightBWrong: number;
  aWrongBRight: number;
  p: number;
}

/**
 * Every pair (i < j) of models scored on the same images, in the same order: counts of the
 * images only one of them gets right, and mcnemarExact of those counts.
 */
export function mcnemarPairs(models: { name: string; predicted: ArrayLike<number> }[], labels: ArrayLike<number>): McNemarPair[] {
  const pairs: McNemarPair[] = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      const [A, B] = [models[i]!, models[j]!];
      let b = 0;
      let c = 0;
      for (let k = 0; k < labels.length; k++) {
        const aRight = A.predicted[k] === labels[k];
        const bRight = B.predicted[k] === labels[k];
        if (aRight && !bRight) b++;
        else if (bRight && !aRight) c++;
      }
      pairs.push({ a: A.name, b: B.name, aRightBWrong: b, aWrongBRight: c, p: mcnemarExact(b, c) });
    }
  }
  return pairs;
}

/** "a vs b: 12 only a right, 5 only b right, McNemar exact p = 0.1435" */
export function formatMcNemarPair(p: McNemarPair): string {
  const pv = p.p === 0 ? '< 1e-300' : p.p < 1e-4 ? `= ${p.p.toExponential(1)}` : `= ${p.p.toFixed(4)}`;
  return `${p.a} vs ${p.b}: ${p.aRightBWrong} only ${p.a} right, ${p.aWrongBRight} only ${p.b} right, McNemar exact p ${pv}`;
}

const LOWER_IS_BETTER: ReadonlySet<ComparedColumn> = new Set(['loss', 'params']);
const COLUMNS: ComparedColumn[] = ['accuracy', 'macroF1', 'weightedF1', 'loss', 'params', 'imagesPerSec'];

export function compareModels(rows: ModelSummary[], pairs?: McNemarPair[]): Comparison {
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
  return { rows, bestByColumn, best, ...(pairs ? { pairs } : {}) };
}

/**
 * Cell texts per row, in COLUMNS order, for text and HTML tables alike; `intervals` holds each
 * row's accuracy interval ("0.806-0.868", '' when unknown), shown with the accuracy.
 */
export function comparisonCells(c: Comparison): { headers: string[]; cells: string[][]; intervals: string[] } {
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
  const intervals = c.rows.map((r) => (r.accuracyInterval ? formatInterval(r.accuracyInterval) : ''));
  return { headers, cells, intervals };
}

/**
 * Aligned text table; `*` after the best value of each column and "<- best" after the best
 * model (highest accuracy).
 */
export function formatComparison(c: Comparison): string {
  const { headers: plain, cells: bare, intervals } = comparisonCells(c);
  const withCi = intervals.some((x) => x);
  const headers = withCi ? plain.map((h, j) => (j === 1 ? 'accuracy (95% CI)' : h)) : plain;
  const cells = bare.map((row, i) => (withCi ? row.map((cell, j) => (j === 1 ? `${cell} (${intervals[i] || '?'})` : cell)) : row));
  const marked = cells.map((row, i) =>
    row.map((cell, j) => (j === 0 || c.rows.length < 2 ? cell : cell + (c.bestByColumn[COLUMNS[j - 1]!] === i ? '*' : ' '))),
  );
  const widths = headers.map((h, j) => Math.max(h.length, ...marked.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  ');
  const out = [line(headers), widths.map((w) => '-'.repeat(w)).join('  ')];
  marked.forEach((r, i) => out.push(line(r) + (c.rows.length > 1 && i === c.best ? '  <- best' : '')));
  if (c.rows.length > 1) out.push('* best in its column (lowest for loss and parameters)');
  if (withCi) out.push('95% CI: Wilson interval of the accuracy');
  if (c.pairs?.length) out.push('', 'pairs on the same images (exact McNemar test; a small p: the accuracies differ beyond chance)', ...c.pairs.map(formatMcNemarPair));
  return out.join('\n') + '\n';
}
