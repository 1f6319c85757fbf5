/**
 * A helper thread of a convolution team (convTeam.ts): the SIMD module of simd.ts
 * instantiated on the threaded wasm build's shared memory, taking tiles of the calling
 * thread's convolutions until the process ends. No tfjs is loaded here.
 */
import { workerData } from 'node:worker_threads';
import { serveConvTiles } from './convTeam.js';
import type { WasmBackendLike } from './heap.js';
import { simdKernels } from './simd.js';

const { memory, control } = workerData as { memory: { buffer: ArrayBufferLike }; control: SharedArrayBuffer };
// simdKernels reads the memory where the threaded build keeps it (backend.wasm.wasmMemory).
const simd = simdKernels({ wasm: { wasmMemory: memory } } as unknown as WasmBackendLike);
if (simd) serveConvTiles(new Int32Array(control), memory, simd);
