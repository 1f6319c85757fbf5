/**
 * The confusion matrix, accumulated batch by batch (STYLE lesson 7): rows are the true digit,
 * columns the predicted one, as sklearn.metrics.confusion_matrix(y_true, y_pred,
 * labels=range(10)).
 */
import { NUM_CLASSES } from '../config.js';
import { SvhnError } from '../errors.js';

/** counts[t][p] = how many images of true class t were predicted as p. */
export type ConfusionMatrix = number[][];

export class ConfusionAccumulator {
  readonly numClasses: number;
  // Flat row-major counts; Float64 so sums beyond 2^32 images stay exact.
  private readonly counts: Float64Array;

  constructor(numClasses: number = NUM_CLASSES) {
    this.numClasses = numClasses;
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds one batch of (true, predicted) label pairs. */
  update(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): void {
    if (yTrue.length !== yPred.length) {
      throw new SvhnError('BAD_INPUT', `confusion matrix: expected as many predictions as labels, got ${yPred.length} and ${yTrue.length}`);
    }
    const k = this.numClasses;
    for (let i = 0; i < yTrue.length; i++) {
      const t = yTrue[i]!;
      const p = yPred[i]!;
      if (!(t >= 0 && t < k && p >= 0 && p < k) || !Number.isInteger(t) || !Number.isInteger(p)) {
        throw new SvhnError('BAD_INPUT', `confusion matrix: expected labels 0..${k - 1}, got true ${t}, predicted ${p} at index ${i}`);
      }
      this.counts[t * k + p]! += 1;
    }
  }

  result(): ConfusionMatrix {
    const k = this.numClasses;
    return Array.from({ length: k }, (_, t) => Array.from(this.counts.subarray(t * k, (t + 1) * k)));
  }
}

/** One-shot: the confusion matrix of two label arrays. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number = NUM_CLASSES): ConfusionMatrix {
  const acc = new ConfusionAccumulator(numClasses);
  acc.update(yTrue, yPred);
  return acc.result();
}

/**
 * The matrix as an aligned text table, row and column headers being the digits:
 *
 *   true\pred     0     1 ...
 *           0  1720     3 ...
 */
export function formatConfusionMatrix(m: ConfusionMatrix): string {
  const k = m.length;
  const corner = 'true\\pred';
  const cell = Math.max(4, ...m.flat().map((v) => String(v).length), String(k - 1).length);
  const lines = [corner + Array.from({ length: k }, (_, p) => ' ' + String(p).padStart(cell + 1)).join('')];
  for (let t = 0; t < k; t++) {
    lines.push(String(t).padStart(corner.length) + m[t]!.map((v) => ' ' + String(v).padStart(cell + 1)).join(''));
  }
  return lines.join('\n') + '\n';
}

/** CSV with a header row: true,pred_0,...,pred_9 then one row per true digit. */
export function confusionMatrixCsv(m: ConfusionMatrix): string {
  const k = m.length;
  const header = ['true', ...Array.from({ length: k }, (_, p) => `pred_${p}`)].join(',');
  return [header, ...m.map((row, t) => [t, ...row].join(','))].join('\n') + '\n';
}
