/**
 * The forward convolutions on the threaded wasm build (backend/kernels/convTeam.ts): the
 * calling thread and a helper thread share each convolution's tiles on the shared heap. The
 * results match the cpu backend's as the single-threaded build's do (relDiff 1e-5), for
 * plain, bias, bias + ReLU and residual epilogues, jobs back to back; and the helper does
 * take tiles.
 * (That 2 threads predict exactly what 1 thread does: test/cli/threads.test.ts.)
 *
 * The threaded build starts from dist/ (its pthread worker and the team's helper are compiled
 * files): run after `npm run build`, as `npm test` does. This file's process runs it alone.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConvTeam } from '../../src/backend/kernels/convTeam.js';
import { conv2dBiasAddRelu } from '../../src/models/inference.js';
import { onBoth, randomValues, relDiff } from './helpers.js';

const DIST = resolve(import.meta.dirname, '../../dist/backend');
type Shape4 = [number, number, number, number];
const t4 = (seed: number, shape: Shape4) => tf.tensor4d(randomValues(seed, shape.reduce((a, b) => a * b, 1)), shape);

let team: ConvTeam | undefined;
let problem: string | undefined;

beforeAll(async () => {
  const index = await import(`${DIST}/index.js`) as typeof import('../../src/backend/index.js');
  problem = existsSync(`${DIST}/kernels/convWorker.js`) ? index.threadedWasmProblem() : 'dist/ is not built';
  if (problem) return;
  const info = await index.initBackend('wasm', { threads: 2 });
  expect(info.threads).toBe(2);
  const { convTeam } = await import(`${DIST}/kernels/convTeam.js`) as typeof import('../../src/backend/kernels/convTeam.js');
  const memory = (tf.backend() as unknown as { wasm: { wasmMemory: object } }).wasm.wasmMemory;
  team = convTeam(memory, 2);
});

const cases: Array<{ x: Shape4; k: [number, number]; co: number; s: number; pad: 'valid' | 'same' }> = [
  { x: [32, 32, 32, 16], k: [3, 3], co: 16, s: 1, pad: 'same' }, // the resnet's stage 1 at predict's batch: 128 tiles
  { x: [32, 16, 16, 16], k: [3, 3], co: 32, s: 2, pad: 'same' }, // stride 2
  { x: [32, 8, 8, 64], k: [3, 3], co: 64, s: 1, pad: 'same' }, // whole images per tile
  { x: [16, 32, 32, 3], k: [3, 3], co: 32, s: 1, pad: 'valid' }, // the notebook models' layer 1
  { x: [3, 10, 9, 5], k: [3, 3], co: 20, s: 1, pad: 'same' }, // fewer tiles than threads' worth
];

describe('convolutions shared by the calling thread and a helper (threaded build)', () => {
  it('starts the team', () => {
    if (problem) return console.warn(`skipped: the threaded build cannot start here (${problem})`);
    expect(team).toBeDefined();
  });

  for (const [i, c] of cases.entries()) {
    it(`matches cpu with every epilogue: x ${c.x.join('x')}, ${c.k.join('x')}x${c.co}, stride ${c.s}, ${c.pad}`, async () => {
      if (problem) return;
      const filterShape: Shape4 = [...c.k, c.x[3], c.co];
      const outShape = tf.backend_util.computeConv2DInfo(c.x, filterShape, c.s, 1, c.pad).outShape as Shape4;
      const { cpu, wasm } = await onBoth(() => {
        const x = t4(1400 + i, c.x);
        const filter = t4(1420 + i, filterShape);
        const bias = tf.tensor1d(randomValues(1440 + i, c.co));
        const args = { x, filter, strides: c.s, pad: c.pad } as const;
        // Back to back, as a model runs them: four jobs, their results side by side.
        return tf.concat([
          tf.fused.conv2d(args),
          tf.fused.conv2d({ ...args, bias }),
          tf.fused.conv2d({ ...args, bias, activation: 'relu' }),
          conv2dBiasAddRelu(x, filter, bias, t4(1460 + i, outShape), [c.s, c.s], c.pad),
        ]);
      });
      expect(wasm.shape).toEqual(cpu.shape);
      expect(relDiff(wasm.values, cpu.values)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('the helper takes tiles (within 60 s on a busy machine)', async () => {
    if (problem) return;
    const x = t4(1500, [32, 32, 32, 16]);
    const filter = t4(1501, [3, 3, 16, 16]);
    const start = { ...team!.tiles };
    const deadline = Date.now() + 60_000;
    while (team!.tiles.all - start.all === team!.tiles.caller - start.caller && Date.now() < deadline) {
      tf.tidy(() => tf.fused.conv2d({ x, filter, strides: 1, pad: 'same' }).dataSync());
      await new Promise((r) => setImmediate(r)); // lets the helper's start-up run
    }
    tf.dispose([x, filter]);
    expect(team!.tiles.caller - start.caller).toBeLessThan(team!.tiles.all - start.all);
  });
});
