/**
 * The committed wasm modules (src/backend/kernels/simd/*.wasm) against their C source: each
 * exports exactly the loops simd.ts declares, and where clang-19 and wasm-ld-19 are installed
 * (Debian: apt-get install clang-19 lld-19) scripts/build-kernels.js rebuilds them from the
 * .c files and the bytes must be the committed ones. The rebuild is skipped without that
 * toolchain, or with another release than the one the modules were built with.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableRelaxedSimd, type SimdKernels } from '../../src/backend/kernels/simd.js';
// @ts-expect-error: a plain JS script, no declarations
import { buildKernels, CLANG, CLANG_VERSION, installedClangVersion, VARIANTS, WASM_LD } from '../../scripts/build-kernels.js';

const MODULE_DIR = fileURLToPath(new URL('../../src/backend/kernels/simd/', import.meta.url));

const EXPORTS: Array<keyof SimdKernels> = [
  'pool2x2Row', 'bnGradRows', 'sumRows', 'reluGrad', 'squareGrad', 'addRun', 'affineRows', 'gatherRuns',
  'filterGrad16x2', 'filterGrad16x1', 'filterGrad4x2', 'filterGrad4x1', 'sumSqRows', 'addAffineRows',
  'inputGrad16x2', 'inputGrad4x2', 'convRows16x2', 'convRows4x2', 'gemm16x2', 'gemm4x4', 'biasReluRows',
  'reluBiasGradRows', 'pool2x2ReluRow', 'anyNaNRuns', 'adamUpdate', 'adamUpdate2',
];

type Variant = { file: string; fma: boolean; shared: boolean };
const variants = VARIANTS as Variant[];

describe('the committed wasm kernels', () => {
  enableRelaxedSimd(); // as simd.ts does before its first module

  it.each(variants)('$file imports the backend memory (shared: $shared) and exports every loop of SimdKernels', ({ file, shared }) => {
    const module = new WebAssembly.Module(readFileSync(join(MODULE_DIR, file)));
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(module).map((e) => e.name).sort()).toEqual([...EXPORTS].sort());
    const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 65536, shared: true } : { initial: 1 });
    expect(() => new WebAssembly.Instance(module, { env: { memory } })).not.toThrow();
  });
});

describe('the committed wasm kernels are their C source, rebuilt', () => {
  const version: string | undefined = installedClangVersion();
  const hasLinker = spawnSync(WASM_LD, ['--version'], { stdio: 'ignore' }).status === 0;
  const skipReason = !version || !hasLinker
    ? `${CLANG} and ${WASM_LD} are not both installed (Debian: apt-get install clang-19 lld-19)`
    : version !== CLANG_VERSION
      ? `${CLANG} is ${version}; the committed modules were built with ${CLANG_VERSION}`
      : undefined;
  let out = '';

  beforeAll(async () => {
    if (skipReason) return;
    out = mkdtempSync(join(tmpdir(), 'svhn-kernels-test-'));
    await buildKernels(out); // asynchronous: the compiler runs while the worker stays responsive
  }, 120_000);
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it.for(variants)('$file: the same bytes as `npm run build:kernels` makes', ({ file }, ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const committed = readFileSync(join(MODULE_DIR, file));
    const rebuilt = readFileSync(join(out, file));
    // Equal buffers; on a mismatch the message names the fix.
    expect(Buffer.compare(rebuilt, committed), `${file} differs from its source: run \`npm run build:kernels\` and commit the modules`).toBe(0);
  });
});
