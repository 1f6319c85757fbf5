/**
 * A helper thread of a convolution team (convTeam.ts): the SIMD module (simd.ts, simd/*.c)
 * instantiated on the threaded wasm build's shared memory, taking tiles of the calling
 * thread's convolutions until the process ends. No tfjs is loaded here.
 */
import { workerData } from 'node:worker_threads';
import { serveConvTiles } from './convTeam.js';
import { simdKernelsOn } from './simd.js';

const { memory, control } = workerData as { memory: { buffer: ArrayBufferLike }; control: SharedArrayBuffer };
const simd = simdKernelsOn(memory);
if (simd) serveConvTiles(new Int32Array(control), memory, simd);
