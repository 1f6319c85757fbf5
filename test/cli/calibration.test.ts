/**
 * A calibrated model through the real CLI (dist/: build first): predict's probabilities are
 * softmax(log p / T) of the raw ones, --no-calibration gives the raw ones, --min-confidence
 * abstains on the calibrated confidence; evaluate and serve apply the same temperature.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { softmaxWithTemperature } from '../../src/metrics/calibration.js';
import { saveColourModel, solidRgb } from '../predict/helpers.js';
import { svhnAsync } from '../helpers.js';
import { startServe } from '../serve/helpers.js';

const T = 3;
const svhn = (args: string[], cwd: string) => svhnAsync(args, { cwd, timeoutMs: 60_000 });

interface Row { input: string; predicted: number | null; confidence: number; top: Array<{ digit: number; prob: number }>; abstained: boolean }
const rowsOf = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Row).sort((a, b) => a.input.localeCompare(b.input));
/** A row's ten probabilities in digit order. */
const probsOf = (r: Row) => Array.from({ length: 10 }, (_, d) => r.top.find((t) => t.digit === d)!.prob);

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'svhn-cli-calib-'));
  await saveColourModel(join(dir, 'model'));
  const meta = JSON.parse(await readFile(join(dir, 'model/metadata.json'), 'utf8'));
  meta.calibration = { temperature: T, fittedOn: 'val', images: 10, nllBefore: 1, nllAfter: 0.5, eceBefore: 0.3, eceAfter: 0.1 };
  await writeFile(join(dir, 'model/metadata.json'), JSON.stringify(meta));
  await mkdir(join(dir, 'imgs'));
  for (const d of [0, 3, 7]) {
    // A solid digit colour, darkened toward grey so the model is not certain.
    const px = Buffer.from(solidRgb(d, 12, 12).map((v) => Math.round(0.6 * v + 0.4 * 128)));
    const png = await sharp(px, { raw: { width: 12, height: 12, channels: 3 } }).png().toBuffer();
    await writeFile(join(dir, 'imgs', `${d}.png`), png);
    // The same images as a labelled folder for evaluate (DIR/<digit>/...), one labelled wrong.
    await mkdir(join(dir, 'labelled', String(d === 7 ? 1 : d)), { recursive: true });
    await writeFile(join(dir, 'labelled', String(d === 7 ? 1 : d), `${d}.png`), png);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('svhn predict with a calibrated model', () => {
  it('answers softmax(log p / T) of the raw probabilities; --no-calibration the raw ones', async () => {
    const args = ['predict', 'imgs', '--model', 'model', '--format', 'jsonl', '--top-k', '10', '--backend', 'cpu'];
    const cal = await svhn(args, dir);
    const raw = await svhn([...args, '--no-calibration'], dir);
    expect(cal.code, cal.stderr).toBe(0);
    expect(raw.code, raw.stderr).toBe(0);
    expect(cal.stderr).toContain("calibrated with the model's temperature 3.000");
    const calRows = rowsOf(cal.stdout);
    const rawRows = rowsOf(raw.stdout);
    expect(calRows).toHaveLength(3);
    let compared = 0;
    calRows.forEach((c, i) => {
      const r = rawRows[i]!;
      expect(c.input).toBe(r.input);
      expect(c.predicted).toBe(r.predicted); // T > 0 keeps the order
      // softmax(log p / T) makes q proportional to p^(1/T). JSONL rounds to 6 decimals, which
      // p^(1/T) magnifies for tiny p (and they weigh in the normalisation): the whole rows are
      // compared at full precision in test/train/calibrate.test.ts. Here: the ratios of the
      // likelier digits (raw p >= 0.01) to the best one, and the row still sums to 1.
      const p = probsOf(r);
      const q = probsOf(c);
      const best = r.predicted!;
      compared += p.filter((pd) => pd >= 0.01).length - 1;
      p.forEach((pd, d) => pd >= 0.01 && expect(q[d]! / q[best]!, `digit ${d}`).toBeCloseTo((pd / p[best]!) ** (1 / T), 3));
      expect(q.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(softmaxWithTemperature(p, T, { classes: 10 })[best]).toBeCloseTo(c.confidence, 2);
      expect(c.confidence).toBeLessThan(r.confidence); // T > 1 flattens
    });
    expect(compared).toBeGreaterThan(0); // some runner-up digits were compared, not only the best
  });

  it('abstains on the calibrated confidence', async () => {
    const raw = rowsOf((await svhn(['predict', 'imgs', '--model', 'model', '--format', 'jsonl', '--no-calibration', '--backend', 'cpu'], dir)).stdout);
    const cal = rowsOf((await svhn(['predict', 'imgs', '--model', 'model', '--format', 'jsonl', '--backend', 'cpu'], dir)).stdout);
    // Between a row's calibrated and raw confidence: calibrated it abstains, raw it answers.
    const threshold = Number(((cal[0]!.confidence + raw[0]!.confidence) / 2).toFixed(4));
    const withMin = (extra: string[]) => svhn(['predict', 'imgs/0.png', '--model', 'model', '--format', 'jsonl', '--min-confidence', String(threshold), '--backend', 'cpu', ...extra], dir);
    const a = rowsOf((await withMin([])).stdout)[0]!;
    const b = rowsOf((await withMin(['--no-calibration'])).stdout)[0]!;
    expect(a).toMatchObject({ abstained: true, predicted: null });
    expect(b).toMatchObject({ abstained: false, predicted: raw[0]!.predicted });
  });

  it('evaluate: applies the temperature, or not with --no-calibration; the raw ECE is the same either way', async () => {
    const args = ['evaluate', '--model', 'model', '--images', 'labelled', '--json', '--backend', 'cpu'];
    const cal = await svhn([...args, '--out', 'ev-cal'], dir);
    const raw = await svhn([...args, '--out', 'ev-raw', '--no-calibration'], dir);
    expect(cal.code, cal.stderr).toBe(0);
    expect(raw.code, raw.stderr).toBe(0);
    const c = JSON.parse(cal.stdout).models[0].calibration;
    const r = JSON.parse(raw.stdout).models[0].calibration;
    expect(c.temperature).toBe(T);
    expect(r.temperature).toBe(1);
    expect(r.eceRaw).toBe(c.eceRaw);
    expect(r.ece).toBe(r.eceRaw);
    expect(c.ece).not.toBe(c.eceRaw);
    const report = JSON.parse(await readFile(join(dir, 'ev-cal', 'report.json'), 'utf8'));
    expect(report.calibration).toMatchObject({ temperature: T, ece: c.ece, eceRaw: c.eceRaw });
    expect(report.files['reliability.png']).toBeDefined();
  });

  it('serve: the API answers the calibrated rows predict writes, and lists the temperature', async () => {
    const predicted = rowsOf((await svhn(['predict', 'imgs/3.png', '--model', 'model', '--format', 'jsonl', '--top-k', '10', '--backend', 'cpu'], dir)).stdout)[0]!;
    const server = await startServe(['--model', 'model', '--backend', 'cpu'], dir);
    try {
      const form = new FormData();
      form.append('file', new Blob([await readFile(join(dir, 'imgs/3.png'))]), 'imgs/3.png');
      const res = await fetch(`${server.url}v1/predict?top_k=10`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      const row = (await res.json()).models[0].rows[0];
      expect(row.top).toEqual(predicted.top);
      expect(row.confidence).toBe(predicted.confidence);
      const models = await (await fetch(`${server.url}v1/models`)).json();
      expect(models.models[0].metadata.calibration.temperature).toBe(T);
    } finally {
      await server.stop();
    }
  });
});
