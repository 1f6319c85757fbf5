/**
 * A running mean weighted by batch size (STYLE lesson 7): add each batch's mean with its size,
 * so a short last batch counts for its images only (pytorch/examples sums, then divides by N).
 */
export class MeanAccumulator {
  private sum = 0;
  private n = 0;

  /** Adds a batch whose per-item mean is `mean` over `count` items. */
  add(mean: number, count: number): void {
    if (count <= 0) return;
    this.sum += mean * count;
    this.n += count;
  }

  /** Adds a batch by its sum over `count` items (exact when the caller already summed). */
  addSum(sum: number, count: number): void {
    if (count <= 0) return;
    this.sum += sum;
    this.n += count;
  }

  get count(): number {
    return this.n;
  }

  /** The mean over every item added; NaN before any. */
  result(): number {
    return this.n === 0 ? Number.NaN : this.sum / this.n;
  }
}
