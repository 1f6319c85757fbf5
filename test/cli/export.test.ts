/**
 * `svhn export` through the real CLI (bin/svhn.js runs dist/: build first): the file beside
 * the model directory with its proof in the --json summary and the text output, and one
 * line with a non-zero exit for a missing or incomplete model, a reader, an output inside
 * the model directory, an existing output without --force and an unknown format.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { writeTinyModel } from '../evaluate/fixtures.js';
import { svhnAsync, type CliRun } from '../helpers.js';

let tmp: string;
const svhn = (args: string[]) => svhnAsync([...args, '--backend', 'cpu', '--threads', '1'], { cwd: tmp });
/** stderr without the JSON log lines: what a failure says. */
const said = (r: CliRun) => r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-export-'));
  await writeTinyModel(join(tmp, 'models/tiny'), { synthetic: true });
  await mkdir(join(tmp, 'models/reader'), { recursive: true });
  await writeFile(join(tmp, 'models/reader/metadata.json'), JSON.stringify({ name: 'reader', architecture: 'reader', task: 'read' }));
  await mkdir(join(tmp, 'empty'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn export', () => {
  it('--json: writes models/tiny.onnx beside the directory and reports the proof', async () => {
    const before = (await readdir(join(tmp, 'models/tiny'))).sort();
    const r = await svhn(['export', '--model', 'models/tiny', '--format', 'onnx', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      format: 'onnx', out: join(tmp, 'models/tiny.onnx'), model: 'models/tiny', architecture: 'tiny-dense', temperature: 1,
      args: { opset: 13, input: 'input', output: 'probabilities' }, runtime: 'onnxruntime-web (wasm)', images: 64, tolerance: 1e-5, agree: 64, backend: 'cpu',
    });
    expect(summary.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(existsSync(join(tmp, 'models/tiny.onnx'))).toBe(true);
    expect((await readdir(join(tmp, 'models/tiny'))).sort()).toEqual(before); // the model directory untouched
    expect((await readdir(join(tmp, 'models'))).sort()).toEqual(['reader', 'tiny', 'tiny.onnx']); // no temporary or lock left
  });

  it('an existing file is refused without --force and replaced with it', async () => {
    const refused = await svhn(['export', '--model', 'models/tiny', '--format', 'onnx']);
    expect(refused.code).toBe(2);
    expect(said(refused)).toEqual([`svhn: error: the default output ${join(tmp, 'models/tiny.onnx')}: already exists; pass --force to replace it, or --out another file`]);
    const r = await svhn(['export', '--model', 'models/tiny', '--format', 'onnx', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^wrote ${join(tmp, 'models/tiny.onnx')} \\(onnx, \\d+ KiB, tiny-dense\\)\\n`));
    expect(r.stdout).toMatch(/proof: onnxruntime-web \(wasm\) against svhn predict \(cpu\) on 64 images: max \|diff\| \d\.\d\de-\d+ <= 0\.00001, same digit on 64 of 64\n$/);
  });

  it('one line and a non-zero exit for what cannot be exported', async () => {
    const cases: Array<[string[], number, string]> = [
      [['--model', 'models/none'], 1, 'svhn: error: --model models/none: no such model directory; train one with `svhn train --model optimized` (it writes models/optimized)'],
      [['--model', 'empty'], 1, `svhn: error: --model empty: model directory is incomplete: cannot read metadata ${join('empty', 'metadata.json')} (ENOENT); train one with \`svhn train --model optimized\` or pass --model DIR`],
      [['--model', 'models/reader'], 1, 'svhn: error: --model models/reader: is a reader of whole photos; readers are not exportable yet, only digit models; export the digit model it reads boxes with: --model models/reader/classifier'],
      [['--model', 'models/tiny', '--out', 'models/tiny/model.onnx'], 2, "svhn: error: --out models/tiny/model.onnx: expected a file outside the model directory models/tiny, which holds only the model's own files; write to another folder"],
    ];
    for (const [args, code, line] of cases) {
      const r = await svhn(['export', '--format', 'onnx', ...args]);
      expect(r.code, r.stderr).toBe(code);
      expect(said(r)).toEqual([line]);
    }
    const bad = await svhn(['export', '--model', 'models/tiny', '--format', 'tflite']);
    expect(bad.code).toBe(2);
    expect(said(bad)).toEqual(["svhn: error: option '--format <name>' argument 'tflite' is invalid. expected one of onnx, got 'tflite'"]);
    expect(existsSync(join(tmp, 'models/tiny/model.onnx'))).toBe(false);
  });
});
