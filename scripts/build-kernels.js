#!/usr/bin/env node
// Compiles the wasm SIMD kernels (src/backend/kernels/simd/*.c) into the modules that
// src/backend/kernels/simd.ts loads, and writes them beside the source:
//
//   kernels.wasm             f32x4 multiply then add          memory imported as is
//   kernels-shared.wasm      the same                         shared memory (threaded build)
//   kernels-fma.wasm         relaxed SIMD's fused multiply-add
//   kernels-fma-shared.wasm  the same, shared memory
//
// The modules are committed: `npm install` needs no compiler. Rebuild them after changing
// a .c or .h file: `npm run build:kernels` (clang-19 and lld-19, Debian's `apt-get install
// clang-19 lld-19`). The output is deterministic (no paths, names or timestamps in it), and
// test/backend/kernelsBuild.test.ts rebuilds it to check it matches the committed bytes.
//
// usage: node scripts/build-kernels.js [--out DIR]   (default: src/backend/kernels/simd)
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIR = join(ROOT, 'src/backend/kernels/simd');
export const CLANG = 'clang-19';
export const WASM_LD = 'wasm-ld-19';
/** The release the committed modules were built with (Debian 12's clang-19 and lld-19); another may emit other bytes. */
export const CLANG_VERSION = '19.1.7';

const COMPILE = [
  '--target=wasm32', '-std=c11', '-O2',
  // The loops as written: their pointer steps (loop strength reduction rewrote the convolution
  // loops' two x pointers into base + shared index, 2-5% slower without FMA), and their order
  // (the default scheduler hoisted all of a gemm step's B loads: 13 live vectors, ~3% slower).
  '-mllvm', '-disable-lsr', '-mllvm', '-pre-RA-sched=source',
  // wasm SIMD; atomics and bulk memory only so the objects may link against a shared memory
  '-msimd128', '-matomics', '-mbulk-memory',
  // no libc; the loops are vectorised by hand, so no auto-vectorised copies of them
  '-ffreestanding', '-fno-vectorize', '-fno-slp-vectorize',
  // Exactness: no contraction of a * b + c into a fused multiply-add (nor any fast-math).
  '-ffp-contract=off',
  // A loop that needs the stack fails the build: the module has no stack on the backend's heap.
  '-Wall', '-Wextra', '-Werror', '-Wframe-larger-than=0',
];
const FMA = ['-mrelaxed-simd', '-DSVHN_FMA=1'];

const LINK = [
  '--no-entry', '--strip-all',
  // The backend's memory, imported as env.memory with a minimum of one page.
  '--import-memory', '--initial-memory=65536', '-z', 'stack-size=0',
];
const SHARED = ['--shared-memory', '--max-memory=4294967296'];

export const VARIANTS = [
  { file: 'kernels.wasm', fma: false, shared: false },
  { file: 'kernels-shared.wasm', fma: false, shared: true },
  { file: 'kernels-fma.wasm', fma: true, shared: false },
  { file: 'kernels-fma-shared.wasm', fma: true, shared: true },
];

/**
 * Builds every variant into outDir. Runs from the repository root, so no absolute path
 * reaches the objects; the tools run one at a time, asynchronously (a test awaits it).
 */
export async function buildKernels(outDir = SOURCE_DIR) {
  const sources = readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.c')).sort();
  const work = mkdtempSync(join(tmpdir(), 'svhn-kernels-'));
  const run = async (tool, args) => {
    try {
      await promisify(execFile)(tool, args, { cwd: ROOT });
    } catch (e) {
      throw new Error(`${tool} failed:\n${e.stderr || e.message}`);
    }
  };
  try {
    for (const fma of [false, true]) {
      const objects = [];
      for (const source of sources) {
        const object = join(work, `${source.replace(/\.c$/, '')}${fma ? '-fma' : ''}.o`);
        await run(CLANG, [...COMPILE, ...(fma ? FMA : []), '-c', relative(ROOT, join(SOURCE_DIR, source)), '-o', object]);
        objects.push(object);
      }
      for (const variant of VARIANTS.filter((v) => v.fma === fma)) {
        const out = resolve(outDir, variant.file);
        await run(WASM_LD, [...LINK, ...(variant.shared ? SHARED : []), ...objects, '-o', out]);
        chmodSync(out, 0o644); // wasm-ld marks it executable; git would record that
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** clang-19's release ("19.1.7"), or undefined where it is not installed. */
export function installedClangVersion() {
  try {
    return /clang version (\d+\.\d+\.\d+)/.exec(execFileSync(CLANG, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const outDir = at > 0 ? resolve(process.argv[at + 1]) : SOURCE_DIR;
  const version = installedClangVersion();
  if (!version) {
    console.error(`build-kernels: ${CLANG} is not installed (Debian: apt-get install clang-19 lld-19)`);
    process.exit(1);
  }
  if (version !== CLANG_VERSION) {
    console.error(`build-kernels: ${CLANG} is ${version}, the committed modules were built with ${CLANG_VERSION}: `
      + 'their bytes may differ; set CLANG_VERSION to it if you commit these');
  }
  try {
    await buildKernels(outDir);
  } catch (e) {
    console.error(`build-kernels: ${e.message}`);
    process.exit(1);
  }
  for (const { file } of VARIANTS) console.log(relative(process.cwd(), join(outDir, file)));
}
