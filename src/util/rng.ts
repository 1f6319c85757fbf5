/**
 * Seeded pseudo-random numbers (mulberry32). Everything random in svhn draws from one of
 * these so that a seed reproduces a run bit for bit: splits, shuffles, augmentation,
 * synthetic images, dropout masks and initialisers. The state is one uint32, so it can be
 * saved in a checkpoint and restored exactly.
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform uint32. */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Moves the stream on by n draws in O(1) (mulberry32's state is a counter): as n calls of nextU32(). */
  skip(n: number): this {
    this.s = (this.s + Math.imul(n >>> 0, 0x6d2b79f5)) >>> 0;
    return this;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A derived generator, so separate streams (shuffle vs augment) do not disturb each other. */
  fork(): Rng {
    return new Rng(this.nextU32());
  }

  get state(): number {
    return this.s;
  }

  set state(s: number) {
    this.s = s >>> 0;
  }
}
