/**
 * sklearn.metrics.classification_report(y_true, y_pred, labels=range(10)), computed from the
 * confusion matrix: the same definitions, the same values as zero_division="warn" (its
 * warnings in svhn's own words), the same floating-point operations in the same order, and
 * the same text layout.
 *
 *   precision_c = tp_c / predicted_c      0 with a warning when digit c is never predicted
 *   recall_c    = tp_c / support_c        0 with a warning when digit c has no true samples
 *   f1_c        = 2 tp_c / (support_c + predicted_c)   (sklearn >= 1.3's form; 0 with a
 *                 warning when both are 0)
 *   accuracy    = sum tp / N              (sklearn's micro average with every label given)
 *   macro avg   = unweighted mean over all ten digits, digits without support included as 0s
 *   weighted avg= mean weighted by support
 */
import type { ConfusionMatrix } from './confusion.js';

export interface ClassScores {
  label: number; // the digit
  precision: number;
  recall: number;
  f1: number;
  support: number; // true samples of this digit
}

export interface AverageScores {
  precision: number;
  recall: number;
  f1: number;
  support: number; // all samples
}

export interface ClassificationReport {
  perClass: ClassScores[];
  accuracy: number;
  macroAvg: AverageScores;
  weightedAvg: AverageScores;
  total: number;
  /** Where sklearn raises UndefinedMetricWarning: one line a metric, naming the digits and the 0.0 reported. */
  warnings: string[];
}

/**
 * numpy's float64 sum (pairwise_sum in numpy/core/src/umath/loops_utils.h): for up to 128
 * values, eight running partial sums combined as a tree, then the remainder added in order.
 * Summing in this order makes our averages bit-identical to np.average's.
 */
export function numpySum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => a[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, start, n2) + numpySum(a, start + n2, n - n2);
}

/**
 * What svhn does where a score is ill-defined (sklearn's UndefinedMetricWarning, without its
 * advice to pass `zero_division`, which svhn has no flag for): the score is reported as 0.0,
 * as sklearn's default does, and the averages take it as 0.0.
 */
function undefinedWarning(metric: string, why: string, labels: number[]): string {
  const which = labels.length === 1 ? `digit ${labels[0]}` : `digits ${labels.join(', ')}`;
  const them = labels.length === 1 ? String(labels[0]) : 'any of them';
  return `${metric} of ${which} is ill-defined: no image ${why} ${them}; reported as 0.0`;
}

export interface ReportOptions {
  /**
   * 'counts' (default): f1 = 2tp / (support + predicted), as sklearn >= 1.3 computes it.
   * 'ratio': f1 = 2PR / (P + R), sklearn <= 1.2's float64 operations (equal in exact
   * arithmetic; an ulp apart at times, which can flip a printed digit at an exact tie such as
   * 0.375). Kept so the check against an older installed sklearn can be exact.
   */
  f1Form?: 'counts' | 'ratio';
}

/** The report of a confusion matrix (rows true, columns predicted). */
export function classificationReport(m: ConfusionMatrix, opts: ReportOptions = {}): ClassificationReport {
  const k = m.length;
  const tp = m.map((row, c) => row[c]!);
  const support = m.map((row) => numpySum(row));
  const predicted = Array.from({ length: k }, (_, c) => numpySum(m.map((row) => row[c]!)));
  // sklearn's _prf_divide: where the denominator is 0 the score is 0 and the label is named.
  const divide = (num: number[], den: number[], zeroLabels: number[]) =>
    num.map((x, c) => {
      if (den[c] === 0) {
        zeroLabels.push(c);
        return 0;
      }
      return x / den[c]!;
    });
  const noPred: number[] = [];
  const noTrue: number[] = [];
  const neither: number[] = [];
  const precision = divide(tp, predicted, noPred);
  const recall = divide(tp, support, noTrue);
  let f1 = divide(tp.map((x) => 2 * x), support.map((s, c) => s + predicted[c]!), neither);
  if (opts.f1Form === 'ratio') f1 = precision.map((p, c) => (2 * p * recall[c]!) / (p + recall[c]! === 0 ? 1 : p + recall[c]!));

  const warnings: string[] = [];
  if (noPred.length) warnings.push(undefinedWarning('precision', 'was predicted as', noPred));
  if (noTrue.length) warnings.push(undefinedWarning('recall', 'is labelled as', noTrue));
  if (neither.length) warnings.push(undefinedWarning('f1-score', 'is labelled or predicted as', neither));

  const total = numpySum(support);
  const correct = numpySum(tp);
  const mean = (v: number[]) => numpySum(v) / v.length;
  // np.average(v, weights=support) = sum(v * support) / sum(support); all zeros when N = 0.
  const weighted = (v: number[]) => (total === 0 ? 0 : numpySum(v.map((x, c) => x * support[c]!)) / total);
  return {
    perClass: tp.map((_, c) => ({ label: c, precision: precision[c]!, recall: recall[c]!, f1: f1[c]!, support: support[c]! })),
    accuracy: total === 0 ? 0 : correct / total,
    macroAvg: { precision: mean(precision), recall: mean(recall), f1: mean(f1), support: total },
    weightedAvg: { precision: weighted(precision), recall: weighted(recall), f1: weighted(f1), support: total },
    total,
    warnings,
  };
}

/**
 * Python's format(x, '.{digits}f'): correctly rounded, ties to even. JS's toFixed rounds
 * exact ties up (0.125 -> "0.13" where Python prints "0.12"), so exact ties are detected on
 * the double's exact decimal expansion (toFixed(100)) and rounded to even.
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  const up = x.toFixed(digits);
  if (Math.abs(x) >= 1e21) return up; // toFixed falls back to exponent form; never a score
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(tail)) return up; // not a tie: toFixed is already correctly rounded
  const kept = exact.slice(0, dot + 1 + digits).replace(/\.$/, '');
  const lastDigit = Number(kept.replace('.', '').slice(-1));
  if (lastDigit % 2 === 0) return (x < 0 ? '-' : '') + kept; // round down to the even digit
  return up;
}

/** The text of sklearn's classification_report (digits=2 by default), ending in a newline. */
export function formatClassificationReport(r: ClassificationReport, opts: { digits?: number; targetNames?: string[] } = {}): string {
  const digits = opts.digits ?? 2;
  const names = opts.targetNames ?? r.perClass.map((c) => String(c.label));
  const width = Math.max(...names.map((n) => n.length), 'weighted avg'.length, digits);
  const f = (x: number) => formatFixed(x, digits).padStart(9);
  const name = (s: string) => s.padStart(width);
  const int = (x: number) => String(x).padStart(9);
  const headers = ['precision', 'recall', 'f1-score', 'support'];
  let out = name('') + ' ' + headers.map((h) => ' ' + h.padStart(9)).join('') + '\n\n';
  // sklearn's row_fmt: "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
  const row = (heading: string, cells: string[]) => name(heading) + ' ' + cells.map((x) => ' ' + x).join('') + '\n';
  r.perClass.forEach((c, i) => {
    out += row(names[i]!, [f(c.precision), f(c.recall), f(c.f1), int(c.support)]);
  });
  out += '\n';
  // Python's "{:>9.2}" of an empty string is nine spaces.
  out += row('accuracy', [' '.repeat(9), ' '.repeat(9), f(r.accuracy), int(r.total)]);
  out += row('macro avg', [f(r.macroAvg.precision), f(r.macroAvg.recall), f(r.macroAvg.f1), int(r.macroAvg.support)]);
  out += row('weighted avg', [f(r.weightedAvg.precision), f(r.weightedAvg.recall), f(r.weightedAvg.f1), int(r.weightedAvg.support)]);
  return out;
}

/** sklearn's classification_report(..., output_dict=True) shape, for report.json. */
export function classificationReportDict(r: ClassificationReport): Record<string, number | Record<string, number>> {
  const scores = (s: { precision: number; recall: number; f1: number; support: number }) => ({
    precision: s.precision,
    recall: s.recall,
    'f1-score': s.f1,
    support: s.support,
  });
  return {
    ...Object.fromEntries(r.perClass.map((c) => [String(c.label), scores(c)])),
    accuracy: r.accuracy,
    'macro avg': scores(r.macroAvg),
    'weighted avg': scores(r.weightedAvg),
  };
}
