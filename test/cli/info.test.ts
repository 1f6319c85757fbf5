/**
 * `svhn info DIR` through the real CLI (bin/svhn.js runs dist/: build with `npx tsc -p .`):
 * the layer table, --json, and one line with a non-zero exit for bad folders.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeTinyModel } from '../evaluate/fixtures.js';
import { svhnAsync, type CliRun } from '../helpers.js';

let tmp: string;
const svhn = (args: string[]) => svhnAsync(args, { cwd: tmp });
/** stderr without the JSON log lines (the backend choice): what a failure says. */
const said = (r: CliRun) => r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-info-'));
  await writeTinyModel(join(tmp, 'models/tiny'), { synthetic: true });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn info', () => {
  it('prints the layer table, totals, FLOPs, input, data and metrics', async () => {
    const r = await svhn(['info', 'models/tiny']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Model: tiny (tiny-dense) in models/tiny');
    expect(lines).toContainEqual(expect.stringMatching(/^Layer \(type\) +Output shape +Param # +FLOPs$/));
    // tfjs names unnamed layers flatten_Flatten1, dense_Dense1, ...
    expect(lines).toContainEqual(expect.stringMatching(/^flatten\S* \(Flatten\) +\(None, 3072\) +0$/));
    expect(lines).toContainEqual(expect.stringMatching(/^dense\S* \(Dense\) +\(None, 10\) +30,730 +61,440$/));
    expect(r.stdout).toContain('Total params: 30,730\nTrainable params: 30,730\nNon-trainable params: 0\n');
    expect(r.stdout).toContain('FLOPs per image: 61,440 (61.44 kFLOPs; multiply-adds of Conv2D, DepthwiseConv2D and Dense kernels, 2 FLOPs each');
    expect(r.stdout).toContain('Input: 32x32 RGB, NHWC [batch, 32, 32, 3], float32 pixels scaled to [0, 1] (uint8 / 255)');
    expect(r.stdout).toContain(`Data: SYNTHETIC (svhn's offline sample, not SVHN); dataset manifest sha256 ${'0'.repeat(64)}`);
    expect(r.stdout).toContain('Validation: accuracy 0.5000, loss 1.5000\nTest: not evaluated');
  });

  it('--json prints one object with the same numbers', async () => {
    const r = await svhn(['info', 'models/tiny', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({
      dir: 'models/tiny',
      name: 'tiny',
      params: { total: 30_730, trainable: 30_730, nonTrainable: 0 },
      flopsPerImage: 61_440,
      input: { shape: [null, 32, 32, 3] },
      data: { synthetic: true, parent: null },
      metrics: { validation: { acc: 0.5, loss: 1.5 }, test: null },
    });
    expect(info.layers.map((l: { type: string; outputShape: unknown }) => [l.type, l.outputShape])).toEqual([
      ['Flatten', [null, 3072]],
      ['Dense', [null, 10]],
    ]);
  });

  it('escapes a control character in the folder name in the text output', async () => {
    const odd = 'models/a\x1b[31mb';
    await writeTinyModel(join(tmp, odd));
    const r = await svhn(['info', odd]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\x1b');
  });

  it('a missing folder and a folder without model.json: one line naming it, exit 1', async () => {
    const missing = await svhn(['info', 'models/none']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(said(missing)).toEqual(['svhn: error: svhn info models/none: no such model directory; train one with `svhn train --model optimized` (it writes models/optimized)']);

    await mkdir(join(tmp, 'models/empty'), { recursive: true });
    await writeFile(join(tmp, 'models/empty/metadata.json'), '{}');
    const empty = await svhn(['info', 'models/empty']);
    expect(empty.code).toBe(1);
    const lines = said(empty);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe('svhn: error: svhn info models/empty: model directory is incomplete: cannot read model models/empty/model.json (ENOENT); pass a directory written by `svhn train`, e.g. models/optimized');
  });

  it('a damaged model.json: one line naming the file, exit 1', async () => {
    await writeTinyModel(join(tmp, 'models/damaged'));
    await writeFile(join(tmp, 'models/damaged/model.json'), '{"modelTopology": ');
    const r = await svhn(['info', 'models/damaged']);
    expect(r.code).toBe(1);
    const lines = said(r);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^svhn: error: .*models\/damaged\/model\.json/);
  });
});
