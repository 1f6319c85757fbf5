/**
 * The pthread worker for tfjs-backend-wasm's threaded-SIMD build in Node. The backend hands
 * Emscripten a blob: URL for its worker, which Node's Worker cannot load; index.ts points it
 * here instead. This file runs the package's own worker script (wasmWorkerContents) and, when
 * the main thread sends 'load' with the glue script as a Blob (which importScripts cannot
 * take in Node), substitutes the glue's file path.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const GLUE = '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd';
const { wasmWorkerContents } = require(`${GLUE}.worker.js`) as { wasmWorkerContents: string };
// The contents are a JS source string with literal newlines escaped as in the package's build.
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, fileURLToPath(import.meta.url));

type LoadMessage = { data?: { cmd?: string; urlOrBlob?: unknown } };
const scope = globalThis as unknown as { onmessage: (e: LoadMessage) => void };
const emscriptenOnMessage = scope.onmessage;
scope.onmessage = (e) => {
  if (e.data?.cmd === 'load') e.data.urlOrBlob = require.resolve(`${GLUE}.js`);
  emscriptenOnMessage(e);
};
