/**
 * The direct convolution on every thread of the threaded wasm build. There the backend's heap
 * is a shared WebAssembly.Memory, but its thread pool runs only XNNPACK's own operators: the
 * SIMD loops of conv2d.ts ran on the calling thread alone, so the threaded build left them
 * for XNNPACK. A team adds `threads - 1` helper threads (convWorker.ts, worker_threads), each
 * with the same SIMD module instantiated on the same memory, and splits each convolution's
 * tiles (convTiles.ts), and those of the zero padding it reads, between them and the calling
 * thread.
 *
 * Protocol, over a small SharedArrayBuffer of Int32 words (no messages on the hot path):
 *   - the caller writes the job into slot seq % 2, sets DONE = 0, opens CLAIM = (seq, tile 0)
 *     and stores seq in WAKE (Atomics.notify wakes the helpers);
 *   - every thread claims tile after tile with a compare-and-swap on CLAIM, which holds the
 *     job's seq beside the next tile, and adds 1 to DONE after each; a helper that wakes late,
 *     or reads a slot the caller has since rewritten, finds another seq in CLAIM and claims
 *     nothing (a slot is rewritten only two jobs later, after CLAIM has left its seq);
 *   - the caller, out of tiles, waits until DONE counts them all.
 * So a helper that the OS does not schedule (a busy machine) costs nothing but its share: the
 * caller takes its tiles; it waits only for tiles a helper has started. A helper that throws
 * sets FAILED, and the caller's convolution throws one line; later ones run on the caller alone.
 */
import { existsSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { jobTiles, JOB_WORDS, readJob, runTile, writeJob, type TileJob } from './convTiles.js';
import type { SimdKernels } from './simd.js';

// Control words, then two job slots of JOB_WORDS.
const CLAIM = 0; // seq << TILE_BITS | next tile
const DONE = 1; // tiles of the open job finished
const WAKE = 2; // seq of the latest job
const FAILED = 3; // 1 once a helper has thrown
const CONTROL_WORDS = 4;
const SLOTS = 2;
const TILE_BITS = 19;
/** Tiles a job may have (a batch of 256 at 32x32x16 has 1,024); more run on the caller alone. */
export const MAX_TEAM_TILES = (1 << TILE_BITS) - 1;
const SEQS = 1 << (31 - TILE_BITS); // seq in 1..SEQS-1, so CLAIM stays a positive int32

const slotOf = (control: Int32Array, seq: number): Int32Array =>
  control.subarray(CONTROL_WORDS + (seq % SLOTS) * JOB_WORDS, CONTROL_WORDS + (seq % SLOTS + 1) * JOB_WORDS);

/** Claims and runs tiles of job `seq` until none are left or another job has opened. */
function claimTiles(control: Int32Array, seq: number, total: number, run: (t: number) => void): void {
  for (;;) {
    const cur = Atomics.load(control, CLAIM);
    const t = cur & MAX_TEAM_TILES;
    if (cur >>> TILE_BITS !== seq || t >= total) return;
    if (Atomics.compareExchange(control, CLAIM, cur, cur + 1) !== cur) continue;
    run(t);
    if (Atomics.add(control, DONE, 1) + 1 === total) Atomics.notify(control, DONE);
  }
}

/** A helper thread's life (convWorker.ts): sleep until a job opens, take its tiles, repeat. */
export function serveConvTiles(control: Int32Array, memory: { buffer: ArrayBufferLike }, simd: SimdKernels): never {
  let seen = 0;
  for (;;) {
    Atomics.wait(control, WAKE, seen);
    seen = Atomics.load(control, WAKE);
    // The slot was written before WAKE was stored; if it has been rewritten since, CLAIM's seq says so.
    const job = readJob(slotOf(control, seen));
    const heap = heapView(memory);
    try {
      claimTiles(control, seen, jobTiles(job), (t) => runTile(simd, heap, job, t));
    } catch (e) {
      Atomics.store(control, FAILED, 1);
      Atomics.notify(control, DONE);
      throw e;
    }
  }
}

export class ConvTeam {
  private seq = 0;
  private failed = false;
  /** Tiles run so far, and how many of them the calling thread ran (the helpers ran the rest). */
  readonly tiles = { all: 0, caller: 0 };

  constructor(private readonly control: Int32Array, private readonly memory: { buffer: ArrayBufferLike }) {}

  /** Runs every tile of `job`, the calling thread with the helpers; returns when all are written. */
  run(simd: SimdKernels, job: TileJob): void {
    const total = jobTiles(job);
    const heap = heapView(this.memory);
    this.tiles.all += total;
    if (this.failed || total > MAX_TEAM_TILES) {
      for (let t = 0; t < total; t++) runTile(simd, heap, job, t);
      this.tiles.caller += total;
      return;
    }
    const c = this.control;
    this.seq = (this.seq % (SEQS - 1)) + 1;
    const seq = this.seq;
    writeJob(job, slotOf(c, seq));
    Atomics.store(c, DONE, 0);
    Atomics.store(c, CLAIM, seq << TILE_BITS);
    Atomics.store(c, WAKE, seq);
    Atomics.notify(c, WAKE);
    try {
      claimTiles(c, seq, total, (t) => {
        runTile(simd, heap, job, t);
        this.tiles.caller++;
      });
    } catch (e) {
      Atomics.store(c, CLAIM, (seq << TILE_BITS) | MAX_TEAM_TILES); // no helper starts another tile of it
      throw e;
    }
    // Out of tiles: wait for those the helpers are still writing.
    for (let done = Atomics.load(c, DONE); done < total; done = Atomics.load(c, DONE)) {
      if (Atomics.load(c, FAILED)) {
        this.failed = true;
        throw new Error('the convolution helper thread failed (later convolutions run on the calling thread alone)');
      }
      Atomics.wait(c, DONE, done, 1000);
    }
  }
}

/**
 * A float32 view of the whole heap, made on first use within a job (padding's tiles use it;
 * nothing is allocated during a job, so the heap cannot grow under it).
 */
function heapView(memory: { buffer: ArrayBufferLike }): () => Float32Array {
  let view: Float32Array | undefined;
  return () => (view ??= new Float32Array(memory.buffer));
}

/** dist/backend/kernels/convWorker.js, also when this module runs from src/ under a TS loader (tests). */
function workerFile(): string {
  const file = fileURLToPath(new URL('./convWorker.js', import.meta.url));
  return existsSync(file) ? file : file.replace(`${sep}src${sep}`, `${sep}dist${sep}`);
}

const teams = new WeakMap<object, ConvTeam | null>();

/**
 * The team for a shared wasm memory with `threads` threads in all (the caller and
 * threads - 1 helpers, started on first use), or undefined where there is none to start: one
 * thread, or no compiled helper (run npm run build). The helpers are unref'd: they never keep
 * the process alive.
 */
export function convTeam(memory: object, threads: number): ConvTeam | undefined {
  let team = teams.get(memory);
  if (team === undefined) {
    team = null;
    const file = workerFile();
    if (threads > 1 && existsSync(file)) {
      const control = new Int32Array(new SharedArrayBuffer(4 * (CONTROL_WORDS + SLOTS * JOB_WORDS)));
      control[CLAIM] = MAX_TEAM_TILES; // seq 0, closed
      for (let i = 1; i < threads; i++) {
        const worker = new Worker(file, { workerData: { memory, control: control.buffer } });
        worker.on('error', () => undefined); // a helper that dies takes no more tiles; the caller does them
        worker.unref();
      }
      team = new ConvTeam(control, memory as { buffer: ArrayBufferLike });
    }
    teams.set(memory, team);
  }
  return team ?? undefined;
}
