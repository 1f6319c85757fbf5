/**
 * `svhn read` driven through the real CLI (bin/svhn.js runs dist/: build first) in a temp
 * folder: the errors that come before any photo is read. Reading itself is tested in
 * test/read with a test-double reader; an end-to-end run with a trained reader comes with it.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { saveColourModel } from '../predict/helpers.js';
import { writeReaderModel } from '../serve/reader.js';
import { svhnAsync, type CliRun } from '../helpers.js';

/** Async, so the vitest worker's event loop keeps answering its RPCs while a run takes its time. */
const svhn = (args: string[], cwd: string) => svhnAsync(args, { cwd, timeoutMs: 60_000 });

/** One line on stderr, `svhn: error: ...` matching `message`, nothing on stdout, no stack. */
function expectOneLineError(r: CliRun, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
}

describe('svhn read: argument and model errors', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-cli-read-'));
    await saveColourModel(join(dir, 'digit-model')); // a digit classifier, as test/cli/predict makes one
    await mkdir(join(dir, 'empty-model'));
    // a reader as svhn saved it before the 2-px cells: its detector outputs a 12 x 24 grid
    await writeReaderModel(join(dir, 'old-reader'), {
      seed: 1,
      classifierDir: join(dir, 'digit-model'),
      detector: () => {
        const input = tf.input({ shape: [48, 96, 3] });
        return tf.model({ inputs: input, outputs: tf.layers.conv2d({ filters: 5, kernelSize: 4, strides: 4 }).apply(input) as tf.SymbolicTensor });
      },
    });
    await mkdir(join(dir, 'photos'));
    await writeFile(join(dir, 'photos', 'a.png'), await sharp({ create: { width: 120, height: 60, channels: 3, background: '#556677' } }).png().toBuffer());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without --model: one line naming the flag, exit 2', async () => {
    expectOneLineError(await svhn(['read', 'photos'], dir), 2, /^svhn: error: required option '--model <dir>' not specified$/);
  });

  it('a bad --format or --min-confidence: one line naming the flag, exit 2', async () => {
    expectOneLineError(await svhn(['read', 'photos', '--model', 'digit-model', '--format', 'xml'], dir), 2, /^svhn: error: option '--format <format>' argument 'xml' is invalid\. Allowed choices are csv, jsonl\.$/);
    for (const bad of ['1.5', '-0.1', 'abc']) {
      expectOneLineError(await svhn(['read', 'photos', '--model', 'digit-model', '--min-confidence', bad], dir), 2, new RegExp(`^svhn: error: option '--min-confidence <p>' argument '${bad.replace('.', '\\.')}' is invalid\\. expected a number from 0 to 1`));
    }
    const shard = await svhn(['read', 'photos', '--model', 'digit-model', '--shard', '2/2'], dir);
    expectOneLineError(shard, 2, /^svhn: error: option '--shard <I\/N>' argument '2\/2' is invalid\./);
  });

  it('a cache: input (32x32 crops, not photos): one line saying so, exit 2', async () => {
    expectOneLineError(await svhn(['read', 'cache:test', '--model', 'digit-model'], dir), 2, /^svhn: error: INPUT cache:test: svhn read takes photos, not the preprocess cache's 32x32 digit crops; .*svhn predict reads cache:test$/);
  });

  it('a missing photo: one line naming it, exit 1', async () => {
    expectOneLineError(await svhn(['read', 'nope.png', '--model', 'digit-model'], dir), 1, /^svhn: error: INPUT nope\.png: no such file or directory; pass photo files or folders of them$/);
  });

  it('--draw inside the model directory, or an input folder: refused before anything is written, exit 2', async () => {
    expectOneLineError(await svhn(['read', 'photos', '--model', 'digit-model', '--draw', 'digit-model/drawn'], dir), 2, /^svhn: error: --draw digit-model\/drawn: expected a folder outside the model directory digit-model/);
    expect(await readdir(join(dir, 'digit-model'))).not.toContain('drawn');
    expectOneLineError(await svhn(['read', 'photos', '--model', 'digit-model', '--draw', 'photos'], dir), 2, /^svhn: error: --draw photos: expected a folder outside the input folder photos/);
  });

  it('a model directory that is not a reader (a digit classifier, an empty folder, an older svhn\'s reader, none): one error line, no stack, nothing on stdout', async () => {
    for (const [model, message] of [
      ['digit-model', /^svhn: error: --model digit-model: expected a reader model, got a digit classifier; train one with `svhn train --model reader`$/],
      ['empty-model', /^svhn: error: --model empty-model: /],
      ['old-reader', /^svhn: error: --model old-reader: the detector outputs \[12, 24, 5\], this svhn reads \[24, 48, 5\] \(a reader from an older svhn\); train it again with `svhn train --model reader`$/],
      ['no-model', /^svhn: error: --model no-model: no such model directory/],
    ] as const) {
      const r = await svhn(['read', 'photos', '--model', model, '--backend', 'cpu', '--out', 'rows.csv', '--log-format', 'json'], dir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe('');
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('svhn: error:'));
      expect(errors, r.stderr).toHaveLength(1);
      expect(errors[0]).toMatch(message);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(errors[0]); // the error ends the run; only log lines (the backend's) come before it
      expect(await readdir(dir)).not.toContain('rows.csv');
    }
  });
});
