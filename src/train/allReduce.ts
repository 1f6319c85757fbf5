/**
 * A sum over replicas for values computed in the middle of a step (BatchNorm's per-channel
 * sums): each replica writes its values into its slot of a SharedArrayBuffer, waits at a
 * barrier (Atomics.wait: the replicas run in lockstep, each on its own thread, the main
 * thread included), then adds every slot in replica order, so all get bit-identical results.
 *
 * Layout (Int32 header, then float64 slots): [arrived, generation, participants, aborted],
 * then 2 x replicas x maxValues slots; rounds alternate between the two halves by the
 * generation's parity, so a fast replica writing round g+1 never overwrites a slot a slow
 * one is still reading from round g.
 */
const ARRIVED = 0;
const GENERATION = 1;
const PARTICIPANTS = 2;
const ABORTED = 3;
const HEADER_BYTES = 16;

export class SharedAllReduce {
  private readonly header: Int32Array;
  private readonly slots: Float64Array;

  /** `maxValues`: the most values one call sums (2 x the widest BatchNorm). */
  static allocate(replicas: number, maxValues: number): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_BYTES + 2 * replicas * maxValues * 8);
  }

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly replicas: number,
    readonly index: number,
    readonly maxValues: number,
    private readonly timeoutMs = 120_000,
  ) {
    this.header = new Int32Array(buffer, 0, 4);
    this.slots = new Float64Array(buffer, HEADER_BYTES, 2 * replicas * maxValues);
  }

  /** Main thread, before a step: how many replicas (0..n-1) take part in it. */
  setParticipants(n: number): void {
    Atomics.store(this.header, PARTICIPANTS, n);
  }

  /** Wakes every waiting replica with an error (a replica failed mid-step). */
  abort(): void {
    Atomics.store(this.header, ABORTED, 1);
    Atomics.add(this.header, GENERATION, 1);
    Atomics.notify(this.header, GENERATION);
  }

  allReduce(values: Float64Array): Float64Array {
    const n = values.length;
    if (n > this.maxValues) throw new Error(`allReduce: ${n} values, room for ${this.maxValues}`);
    const participants = Atomics.load(this.header, PARTICIPANTS);
    const generation = Atomics.load(this.header, GENERATION);
    const half = (generation & 1) * this.replicas * this.maxValues;
    this.slots.set(values, half + this.index * this.maxValues);
    if (Atomics.add(this.header, ARRIVED, 1) + 1 === participants) {
      Atomics.store(this.header, ARRIVED, 0);
      Atomics.add(this.header, GENERATION, 1);
      Atomics.notify(this.header, GENERATION);
    } else {
      while (Atomics.load(this.header, GENERATION) === generation) {
        if (Atomics.wait(this.header, GENERATION, generation, this.timeoutMs) === 'timed-out') {
          throw new Error(`replica ${this.index + 1}: no answer from the other replicas in ${this.timeoutMs / 1000} s`);
        }
      }
    }
    if (Atomics.load(this.header, ABORTED)) throw new Error('another replica failed');
    const out = new Float64Array(n);
    for (let r = 0; r < participants; r++) {
      const at = half + r * this.maxValues;
      for (let i = 0; i < n; i++) out[i] += this.slots[at + i]!;
    }
    return out;
  }
}
