/** Bounded-concurrency async map that keeps order: predict's decoding and labelled image sets use it. */

/**
 * Maps `source` through async `fn` with at most `concurrency` calls in flight, yielding
 * results in source order. A slow item holds back later results (order is the contract),
 * never more than `concurrency` of them.
 */
export async function* mapOrdered<T, R>(source: AsyncIterable<T> | Iterable<T>, fn: (item: T) => Promise<R>, concurrency: number): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  for await (const item of source) {
    const p = fn(item);
    p.catch(() => undefined); // awaited below, in order; this only silences the early-rejection warning
    window.push(p);
    if (window.length >= concurrency) yield await window.shift()!;
  }
  while (window.length > 0) yield await window.shift()!;
}
