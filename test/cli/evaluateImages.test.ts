/**
 * `svhn evaluate --images DIR / --labels FILE.csv` through the real CLI: the colour model
 * (test/predict/helpers.ts) reads each fixture image as its digit, so every number in the
 * outputs is known in advance.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { svhnAsync } from '../helpers.js';
import { saveColourModel } from '../predict/helpers.js';
import { writeTinyModel } from '../evaluate/fixtures.js';
import { writeDigitFolder, writeLabelsCsv, type FixtureFile } from '../data/images/labelledHelpers.js';

let tmp: string;
let files: FixtureFile[];
const COUNTS = [3, 2, 2, 2, 2, 2, 2, 2, 2, 4]; // 23 images
const svhn = (args: string[]) => svhnAsync([...args, '--backend', 'cpu', '--log-format', 'json'], { cwd: tmp });
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('svhn: error'));

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-eval-img-'));
  files = await writeDigitFolder(join(tmp, 'digits'), COUNTS, 21);
  await writeFile(join(tmp, 'digits', '2', 'scan.pdf'), '%PDF-1.4');
  await saveColourModel(join(tmp, 'models/colour'));
  await writeTinyModel(join(tmp, 'models/tiny'), { name: 'tiny', seed: 4 });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn evaluate --images / --labels', () => {
  it('measures a model on a folder without a cache: accuracy, confusion matrix and report, in <model>/evaluation-images', async () => {
    const r = await svhn(['evaluate', '--model', 'models/colour', '--images', 'digits']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`labelled folder ${join(tmp, 'digits')}: 23 images, 1 file skipped`);
    expect(r.stdout).toMatch(/accuracy 1\.0000/);
    expect(r.stdout).toMatch(/\n {4}accuracy {27}1\.00 {8}23\n/);
    expect(r.stderr).toMatch(/skipped digits\/2\/scan\.pdf: not an image file name/);
    const dir = join(tmp, 'models/colour/evaluation-images');
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
    expect(report.accuracy).toBe(1);
    expect(report.confusionMatrix.counts.map((row: number[], d: number) => row[d])).toEqual(COUNTS);
    expect(report.data).toMatchObject({ split: 'labelled', count: 23, manifestSha256: null, source: { kind: 'folder', path: join(tmp, 'digits') } });
    expect(report.data.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.data.source.skipped).toEqual([{ file: 'digits/2/scan.pdf', label: 2, reason: expect.stringMatching(/^not an image file name/) }]);
    expect(report.predictions.map((p: { file: string; true: number }) => [p.file, p.true])).toEqual(files.map((f) => [join('digits', f.name), f.label]));
    for (const f of ['confusion.csv', 'confusion.png', 'f1.png', 'samples.png']) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(existsSync(join(tmp, 'models/colour/evaluation'))).toBe(false); // the test split's evaluation is left alone
  });

  it('reads a CSV: a wrong label shows up where it should, digits may be missing, two models are compared', async () => {
    // Every image of digits 0..4, one 3 labelled 8 by mistake.
    const rows = files.filter((f) => f.label <= 4).map((f): [string, number] => [`digits/${f.name}`, f.label]);
    const wrong = rows.findIndex(([, l]) => l === 3);
    rows[wrong] = [rows[wrong]![0], 8];
    await writeLabelsCsv(join(tmp, 'some.csv'), rows);
    const r = await svhn(['evaluate', '--model', 'models/colour', '--model', 'models/tiny', '--labels', 'some.csv', '--json', '--out', 'ev']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--labels some\.csv: no images for digit\(s\) 5, 6, 7, 9; their rows of the report are empty/);
    const s = JSON.parse(r.stdout);
    expect(s.split).toBe('labelled');
    expect(s.images).toEqual({ kind: 'csv', path: 'some.csv' });
    const colour = s.models.find((m: { name: string }) => m.name === 'colour-test');
    expect(colour.images).toBe(11);
    expect(colour.accuracy).toBeCloseTo(10 / 11, 12);
    expect(colour.confusionMatrix[8][3]).toBe(1); // true (as labelled) 8, predicted 3
    expect(colour.confusionMatrix[3][3]).toBe(1);
    expect(s.best).toBeDefined();
    for (const name of ['colour', 'tiny']) expect(existsSync(join(tmp, 'ev', name, 'report.json')), name).toBe(true);
  });

  it("marks the user's folder as theirs, not SYNTHETIC, even for a model trained on the synthetic sample", async () => {
    await writeTinyModel(join(tmp, 'models/synth'), { name: 'synth', seed: 5, synthetic: true });
    const r = await svhn(['evaluate', '--model', 'models/colour', '--model', 'models/synth', '--images', 'digits', '--out', 'ev-mine']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^comparison on digits\n/m); // was "comparison on digits (SYNTHETIC data)"
    expect(r.stdout).not.toContain('SYNTHETIC data)');
    expect(r.stdout).not.toMatch(/\*\*\* SYNTHETIC/);
    expect(r.stdout).toMatch(/^synth \(trained on SYNTHETIC\) /m); // its comparison row
    expect(r.stdout).toContain('model trained on SYNTHETIC data (svhn\'s offline sample), evaluated on your images');
    const report = JSON.parse(await readFile(join(tmp, 'ev-mine/synth/report.json'), 'utf8'));
    expect(report).toMatchObject({ synthetic: false, model: { synthetic: true } });
    expect(report.SYNTHETIC).toBeUndefined();
    expect(existsSync(join(tmp, 'ev-mine/synth/SYNTHETIC.txt'))).toBe(false);
    const json = JSON.parse((await svhn(['evaluate', '--model', 'models/synth', '--images', 'digits', '--json', '--out', 'ev-mine-json'])).stdout);
    expect(json.synthetic).toBe(false);
    expect(json.SYNTHETIC).toBeUndefined();
    expect(json.models[0]).toMatchObject({ synthetic: false, modelSynthetic: true });
  });

  it('answers bad input with one line and a non-zero exit', async () => {
    await writeLabelsCsv(join(tmp, 'bad.csv'), [['digits/0/00.png', 0], ['digits/1/00.jpg', 'one']]);
    await writeLabelsCsv(join(tmp, 'twice.csv'), [['digits/0/00.png', 0], ['digits/../digits/0/00.png', 0]]);
    await mkdir(join(tmp, 'empty'));
    await mkdir(join(tmp, 'hollow', '3', 'sub'), { recursive: true });
    await mkdir(join(tmp, 'hollow', '5'));
    await mkdir(join(tmp, 'unreadable', '4'), { recursive: true });
    await writeFile(join(tmp, 'unreadable', '4', 'notes.txt'), 'four');
    const cases: Array<[string[], string, number]> = [
      [['--images', 'empty'], 'svhn: error: --images empty: no digit folders: expected subfolders 0..9 holding the images', 1],
      [['--images', 'hollow'], 'svhn: error: --images hollow: no files in its digit folders (3, 5): expected images in hollow/<digit>', 1],
      [['--images', 'unreadable'], 'svhn: error: --images unreadable: no readable images: all 1 file(s) were skipped (first unreadable/4/notes.txt: not an image file name (.txt;', 1],
      [['--images', 'digits', '--strict'], 'svhn: error: digits/2/scan.pdf: not an image file name', 1],
      [['--labels', 'bad.csv'], `svhn: error: bad.csv line 3: label 'one' for digits/1/00.jpg: expected a digit 0..9`, 1],
      [['--labels', 'twice.csv'], 'svhn: error: twice.csv line 3: digits/../digits/0/00.png is listed twice (first on line 2)', 1],
      [['--images', 'digits', '--split', 'val'], `svhn: error: option '--images <dir>' cannot be used with option '--split <split>'`, 2],
      [['--images', 'nowhere'], 'svhn: error: --images nowhere: no such folder', 1],
    ];
    const runs = await Promise.all(cases.map(([args]) => svhn(['evaluate', '--model', 'models/colour', ...args, '--out', 'never'])));
    runs.forEach((r, i) => {
      const [args, message, code] = cases[i]!;
      expect(errorLines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(errorLines(r.stderr)[0], args.join(' ')).toContain(message);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stdout).toBe('');
    });
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('refuses a FIFO given as --labels or --images, or listed in a CSV, instead of waiting on it', async () => {
    execFileSync('mkfifo', [join(tmp, 'pipe.csv'), join(tmp, 'digits', '1', 'pipe.png')]);
    await writeLabelsCsv(join(tmp, 'piped.csv'), [['digits/0/00.png', 0], ['digits/1/pipe.png', 1]]);
    const cases: Array<[string[], string]> = [
      [['--labels', 'pipe.csv'], 'svhn: error: --labels pipe.csv: expected a CSV file of path,label rows, got a FIFO'],
      [['--images', 'pipe.csv'], 'svhn: error: --images pipe.csv: expected a folder with subfolders 0..9, got a FIFO'],
      [['--labels', 'piped.csv', '--strict'], 'digits/1/pipe.png (piped.csv line 3): cannot read: expected a regular file, got a FIFO'],
    ];
    const runs = await Promise.all(
      cases.map(([args]) =>
        svhnAsync(['evaluate', '--model', 'models/colour', ...args, '--out', 'never-fifo', '--backend', 'cpu', '--log-format', 'json'], { cwd: tmp, timeoutMs: 30_000 }),
      ),
    );
    runs.forEach((r, i) => {
      const [args, message] = cases[i]!;
      expect(r.code, args.join(' ')).toBe(1);
      expect(errorLines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(errorLines(r.stderr)[0], args.join(' ')).toContain(message);
    });
    expect(existsSync(join(tmp, 'never-fifo'))).toBe(false);
    await rm(join(tmp, 'digits', '1', 'pipe.png'));
  });
  it('refuses an --errors file over the images it reads, a model\'s own files, or a file its CSV lists, leaving them alone', async () => {
    const image = join(tmp, 'digits', files[0]!.name);
    const before = await readFile(image);
    const curves = await readFile(join(tmp, 'models/colour/model.json'));
    await writeLabelsCsv(join(tmp, 'listed.csv'), [['digits/0/00.png', 0], ['elsewhere.png', 1]]);
    await writeFile(join(tmp, 'elsewhere.png'), before);
    const cases: Array<[string[], string]> = [
      [['--images', 'digits', '--errors', `digits/${files[0]!.name}`], `--errors digits/${files[0]!.name}: expected a file outside the images of --images digits; write to another folder`],
      [['--images', 'digits', '--errors', 'digits/new.png'], '--errors digits/new.png: expected a file outside the images of --images digits; write to another folder'],
      [['--images', 'digits', '--errors', 'models/colour/model.png'], '--errors models/colour/model.png: expected a file outside the model directory models/colour; write to another folder'],
      [['--labels', 'listed.csv', '--errors', 'elsewhere.png'], '--errors elsewhere.png: expected a file outside the images of --labels listed.csv (it lists '],
    ];
    for (const [flags, message] of cases) {
      const r = await svhn(['evaluate', '--model', 'models/colour', ...flags]);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr), flags.join(' ')).toHaveLength(1);
      expect(errorLines(r.stderr)[0], flags.join(' ')).toContain(`svhn: error: ${message}`);
    }
    expect(await readFile(image)).toEqual(before);
    expect(await readFile(join(tmp, 'elsewhere.png'))).toEqual(before);
    expect(await readFile(join(tmp, 'models/colour/model.json'))).toEqual(curves);
  });
});
