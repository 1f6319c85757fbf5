/**
 * Choosing the engine: tfjs-node ('tensorflow') where it installed, else the wasm backend
 * with svhn's own training kernels (./wasmKernels.ts), else the pure-JS cpu backend.
 * `auto` tries them in that order and says which one it picked.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BackendChoice } from '../config.js';
import { SvhnError } from '../errors.js';
import { getLogger } from '../log.js';
import { wasmValidates } from './kernels/simd.js';

export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  name: BackendName;
  threads: number;
  /** Why auto chose it, or what failed before it. */
  notes: string[];
}

export interface BackendOptions {
  /**
   * Threads for the wasm backend: more than 1 starts its threaded build. Default: all cores,
   * or 1 (with a note) where the threaded build cannot start; an explicit count that cannot
   * start is an error.
   */
  threads?: number;
  /** Training: each data-parallel replica runs this backend on one thread; the log says so, not "1 thread" alone. */
  perReplica?: boolean;
}

/** A module importing a shared memory: valid only where WebAssembly threads are. */
const SHARED_MEMORY_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x02, 0x09, 0x01, 0x01, 0x6d, 0x01, 0x6d, 0x02, 0x03, 0x01, 0x01, // import "m"."m": memory, shared, 1..1 pages
]);

/** Why the threaded wasm build cannot start in this process, or undefined when it can. */
export function threadedWasmProblem(): string | undefined {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics === 'undefined') return 'this runtime has no SharedArrayBuffer';
  if (!wasmValidates(SHARED_MEMORY_PROBE)) return 'this runtime has no WebAssembly threads';
  const worker = fileURLToPath(new URL('./wasmThreadWorker.js', import.meta.url));
  if (!existsSync(worker)) return `${worker} is missing (run npm run build)`;
  return undefined;
}

async function tryTensorflow(): Promise<boolean> {
  try {
    // Optional dependency: absent where libtensorflow could not be downloaded at install time.
    await import('@tensorflow/tfjs-node' as string);
    return tf.findBackend('tensorflow') !== null && (await tf.setBackend('tensorflow'));
  } catch {
    return false;
  }
}

/** The wasm backend with svhn's kernels (its threaded build for threads > 1); throws what failed. */
async function setWasm(threads: number): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const { registerWasmTrainingKernels } = await import('./wasmKernels.js');
  registerWasmTrainingKernels({ threads });
  return threads > 1 ? setWasmThreaded(wasm, threads) : tf.setBackend('wasm');
}

async function tryWasm(threads: number): Promise<boolean> {
  try {
    return await setWasm(threads);
  } catch (e) {
    if (e instanceof SvhnError) throw e; // --threads N asked for the threaded build: say so, don't fall back to cpu
    getLogger().debug({ err: e }, 'wasm backend failed to load');
    return false;
  }
}

/**
 * The threaded-SIMD wasm build in Node (opt-in with --threads N > 1). tfjs-backend-wasm
 * hard-codes multithreading off under Node, hands Emscripten a blob: URL for its pthread
 * worker (Node's Worker cannot load one: ./wasmThreadWorker.ts stands in), and caps its pool
 * at half the logical cores; the pool's workers must be unref'd or the process never exits.
 * Measured on 2 cores: optimized training ~470 -> ~635 img/s, inference ~1,980 -> ~3,220,
 * weights bit-identical to the single-threaded build.
 */
async function setWasmThreaded(wasm: typeof import('@tensorflow/tfjs-backend-wasm'), threads: number): Promise<boolean> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const worker = fileURLToPath(new URL('./wasmThreadWorker.js', import.meta.url));
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  URL.createObjectURL = (b: Blob) => (b.type === 'application/javascript' ? worker : createObjectURL(b));
  os.cpus = () => Array.from({ length: 2 * threads }, () => cpus()[0]!);
  try {
    if (!(await tf.setBackend('wasm'))) {
      throw new SvhnError('BACKEND', `--threads ${threads}: the threaded wasm build did not start`, { suggestion: 'run with --threads 1' });
    }
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
  }
  const { PThread } = (tf.backend() as unknown as { wasm: { PThread: { unusedWorkers: Array<{ unref(): void }>; runningWorkers: Array<{ unref(): void }> } } }).wasm;
  for (const w of [...PThread.unusedWorkers, ...PThread.runningWorkers]) w.unref();
  return true;
}

async function tryCpu(): Promise<boolean> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) return false;
  // The cpu backend's first write prints a multi-line "install tfjs-node" banner to stderr;
  // svhn logs the backend choice itself, so take that first write with the banner muted.
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    tf.tensor1d([0]).dispose();
  } finally {
    console.warn = warn;
  }
  return true;
}

let active: BackendInfo | undefined;

/** Sets the tfjs backend once per process; later calls must ask for the same one. */
export async function initBackend(choice: BackendChoice, opts: BackendOptions = {}): Promise<BackendInfo> {
  if (active && (choice === 'auto' || choice === active.name)) return active;
  const notes: string[] = [];
  let threads = opts.threads ?? os.availableParallelism();
  const problem = threads > 1 && choice !== 'tensorflow' && choice !== 'cpu' ? threadedWasmProblem() : undefined;
  if (problem) {
    if (opts.threads !== undefined) {
      throw new SvhnError('BACKEND', `--threads ${threads}: the threaded wasm build cannot start: ${problem}`, { suggestion: 'run with --threads 1' });
    }
    notes.push(`1 thread: ${problem}`);
    threads = 1;
  }
  const order: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  for (const name of order) {
    const ok = name === 'tensorflow' ? await tryTensorflow() : name === 'wasm' ? await tryWasm(threads) : await tryCpu();
    if (ok) {
      await tf.ready();
      // What actually runs: in Node the wasm backend loads its single-threaded build.
      const used = name === 'cpu' ? 1 : name === 'wasm' ? (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount() : threads;
      active = { name, threads: used, notes };
      getLogger().info(
        { backend: name, threads: active.threads, notes },
        `backend: ${name} (${opts.perReplica ? `${active.threads} thread per training replica` : `${active.threads} thread${active.threads === 1 ? '' : 's'}`})${notes.length ? `; ${notes.join('; ')}` : ''}`,
      );
      return active;
    }
    notes.push(name === 'tensorflow' ? '@tensorflow/tfjs-node is not installed or did not load' : `${name} backend did not load`);
  }
  throw new SvhnError('BACKEND', `--backend ${choice}: ${notes.join('; ')}`, {
    suggestion: choice === 'tensorflow' ? 'use --backend auto (wasm or cpu) where tfjs-node cannot install' : undefined,
  });
}

/**
 * A training replica's backend (train/replicaWorker.ts): the backend the main thread chose,
 * single-threaded, in this worker's own tfjs, without logging.
 */
export async function initWorkerBackend(name: BackendName): Promise<void> {
  // wasm's own error (say, a missing module) is the useful one here: setWasm lets it through.
  const ok = name === 'wasm' ? await setWasm(1) : name === 'cpu' ? await tryCpu() : await tryTensorflow();
  if (!ok) throw new Error(`the ${name} backend did not load in a worker thread`);
  await tf.ready();
}

export function activeBackend(): BackendInfo | undefined {
  return active;
}
