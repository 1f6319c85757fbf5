/**
 * The page's reader in headless Chromium (Debian's package; skipped where absent), driven by
 * puppeteer-core, with untrained readers made in a second (test/serve/reader.ts; the colour
 * model as their classifier):
 *
 *   parity   the page's pipeline (page/reader.js, which imports the compiled tasks/read modules)
 *            against Node's loadReader: the detector's output for the SAME letterboxed pixels
 *            within 1e-4, and the whole reading of a photo.
 *   webcam   Chromium's fake camera playing a video of a rendered number: the reader loop reads
 *            the whole frame, draws over it, counts its readings a second, and holds its tensor
 *            count flat.
 *   none     the plain fake camera (Chromium's test pattern) with the SILENT reader: the page says
 *            "no number". This proves the page's no-number path (the reading, the label, the
 *            overlay); it does not prove that a trained reader sees no number in that pattern.
 *   upload   a photo uploaded: drawn with each reader's boxes and number, "no number" for the
 *            silent reader, "unsure" under the control's threshold.
 *
 * The untrained readers' numbers mean nothing; these tests hold the page to what the server
 * answers, not to reading house numbers well.
 */
import * as tfn from '@tensorflow/tfjs'; // `tfn` in Node: `tf` inside page.evaluate is the page's global
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { decodePhoto } from '../../src/data/images/photo.js';
import { scalePixels } from '../../src/data/cache/batches.js';
import { loadLayersModel } from '../../src/models/io.js';
import { foldBatchNorms } from '../../src/models/inference.js';
import { letterboxPhoto } from '../../src/tasks/read/letterbox.js';
import { loadReader } from '../../src/tasks/read/reader.js';
import type { Reading } from '../../src/tasks/read/reading.js';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers.js';
import { PROTOTYPES, saveColourModel } from '../predict/helpers.js';
import { startServe, type RunningServer } from './helpers.js';
import { LOUD, SILENT, writeReaderModel } from './reader.js';
import { numberFrame, writeRgbVideo } from './y4m.js';

let tmp: string;
let server: RunningServer;
/** Screenshots go here when set (to look at them), else into the temporary folder. */
const shots = () => process.env.SVHN_TEST_SHOTS ?? tmp;

type Browser = import('puppeteer-core').Browser;
type Page = import('puppeteer-core').Page;

/** `video`: a y4m file for the fake camera; absent, Chromium's own test pattern. */
async function launch(video?: string): Promise<Browser> {
  const puppeteer = (await import('puppeteer-core')).default;
  return puppeteer.launch({
    executablePath: CHROMIUM!,
    headless: true,
    userDataDir: await mkdtemp(join(tmp, 'profile-')),
    args: [...CHROMIUM_FLAGS, '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', ...(video ? [`--use-file-for-fake-video-capture=${video}`] : [])],
  });
}

async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  await page.setViewport({ width: 1100, height: 800 });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return { page, errors };
}

/** A photo of coloured blocks (the colour model's prototypes) on grey. */
function blocks(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3, 90);
  const colours = [PROTOTYPES[1]!, PROTOTYPES[4]!, PROTOTYPES[7]!];
  for (let y = Math.floor(height * 0.2); y < Math.floor(height * 0.8); y++) {
    for (let x = Math.floor(width * 0.1); x < Math.floor(width * 0.9); x++) rgb.set(colours[Math.max(0, Math.min(2, Math.floor(((x / width - 0.1) / 0.8) * 3)))]!, (y * width + x) * 3);
  }
  return rgb;
}
const png = (rgb: Buffer, width: number, height: number) => sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();

/** Starts the camera with the model `model` chosen and waits for `n` readings. */
async function startCamera(page: Page, model: string, n: number): Promise<void> {
  await page.select('#cam-model', model);
  await page.click('#cam-toggle');
  await page.waitForFunction((k) => Number(document.getElementById('live')!.dataset.readings ?? 0) >= k, { timeout: 60_000, polling: 50 }, n);
}

async function stopCamera(page: Page): Promise<void> {
  await page.click('#cam-toggle');
  await new Promise((r) => setTimeout(r, 500)); // the reading in flight finishes
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-serve-page-read-'));
  await saveColourModel(join(tmp, 'models/colour'));
  await writeReaderModel(join(tmp, 'models/loud'), { seed: 7, classifierDir: join(tmp, 'models/colour'), centreBias: LOUD });
  await writeReaderModel(join(tmp, 'models/silent'), { seed: 7, classifierDir: join(tmp, 'models/colour'), centreBias: SILENT });
  // 2 s of "25" at 10 frames/s, looped by Chromium.
  const frame = numberFrame('25', 320, 240);
  await writeRgbVideo(join(tmp, 'number.y4m'), { width: 320, height: 240, fps: 10, frames: Array.from({ length: 20 }, () => frame) });
  await writeFile(join(tmp, 'photo.png'), await png(blocks(240, 90), 240, 90));
  server = await startServe(['--model', 'models/colour', '--model', 'models/loud', '--model', 'models/silent', '--backend', 'wasm', '--threads', '1'], tmp);
});
afterAll(async () => {
  if (server) await server.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!CHROMIUM)('svhn serve: the page reads whole house numbers in headless Chromium', () => {
  it("parity: the page's detector and whole reading equal Node's loadReader; no tensor left behind", async () => {
    const dir = join(tmp, 'models/loud');
    // (1) The SAME letterboxed pixels (sharp's letterbox of a 320x240 photo) through both detectors.
    const decoded = await decodePhoto(await png(blocks(320, 240), 320, 240));
    const { pixels } = await letterboxPhoto(decoded.photo);
    const detector = foldBatchNorms(await loadLayersModel(dir)); // as loadReader loads it
    const input = new Float32Array(pixels.length);
    scalePixels(pixels, input);
    const nodeOut = tfn.tidy(() => (detector.predict(tfn.tensor4d(input, [1, 48, 96, 3])) as tfn.Tensor).dataSync() as Float32Array);
    detector.dispose();

    // (2) A 96x48 photo: its letterbox is the photo itself (scale 1, no padding), so both sides
    // give the detector the same pixels and must find the same boxes; only the crops' resize
    // differs (sharp's cubic against the canvas's smoothing), which moves the colour model's
    // probabilities a little, not its digits.
    const small = blocks(96, 48);
    const smallPng = await png(small, 96, 48);
    const reader = await loadReader(dir);
    const nodeReading = await reader.read((await decodePhoto(smallPng)).photo);
    const widePng = await png(blocks(240, 90), 240, 90);
    const nodeWide = await reader.read((await decodePhoto(widePng)).photo);
    reader.dispose();

    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser);
      // A string, not a function: vitest would rewrite a function's import() for Node.
      const inPage = (await page.evaluate(`(async () => {
        const m = await import('/assets/reader.js');
        const r = await m.loadReader('loud');
        const out = Array.from(await m.detect(r, new Uint8Array(${JSON.stringify(Array.from(pixels))})));
        const img = new Image();
        img.src = ${JSON.stringify(`data:image/png;base64,${smallPng.toString('base64')}`)};
        await img.decode();
        await m.readSource(r, img, 96, 48); // the first reading sets up the scratch canvases
        const before = tf.memory().numTensors;
        let reading;
        for (let i = 0; i < 20; i++) reading = await m.readSource(r, img, 96, 48);
        const wideImg = new Image();
        wideImg.src = ${JSON.stringify(`data:image/png;base64,${widePng.toString('base64')}`)};
        await wideImg.decode();
        const wide = await m.readSource(r, wideImg, 240, 90);
        // the page's letterbox of the 240x90 photo (its 48x96 input canvas), RGB / 255
        const rgba = r.input.getContext('2d').getImageData(0, 0, 96, 48).data;
        const wideInput = [];
        for (let p = 0; p < 96 * 48; p++) wideInput.push(rgba[4 * p] / 255, rgba[4 * p + 1] / 255, rgba[4 * p + 2] / 255);
        return { out, reading, wide, wideInput, before, after: tf.memory().numTensors, backend: tf.getBackend() };
      })()`)) as { out: number[]; reading: Reading; wide: Reading; wideInput: number[]; before: number; after: number; backend: string };
      expect(inPage.backend).toBe('wasm');
      let worst = 0;
      inPage.out.forEach((v: number, i: number) => (worst = Math.max(worst, Math.abs(v - nodeOut[i]!))));
      expect(worst, 'detector outputs, same pixels').toBeLessThan(1e-4);

      const pageReading = inPage.reading as Reading;
      expect(nodeReading.digits.length, 'the loud reader finds boxes').toBeGreaterThan(0);
      expect(pageReading.number).toBe(nodeReading.number);
      pageReading.digits.forEach((d, i) => {
        d.box.forEach((v, j) => expect(Math.abs(v - nodeReading.digits[i]!.box[j]!), `box ${i}`).toBeLessThan(1e-3));
        expect(Math.abs(d.confidence - nodeReading.digits[i]!.confidence), `confidence ${i}`).toBeLessThan(0.05);
      });
      // A 240x90 photo is resized into the letterbox by sharp's lanczos3 in Node and by the
      // canvas's smoothing here, so the detector sees pixels a few levels apart; an untrained
      // reader's near-tied peaks then fall either way, and its numbers are no measure of parity.
      // What is compared is that resize: the page's letterbox against sharp's, pixel by pixel.
      const nodeLetterbox = await letterboxPhoto((await decodePhoto(widePng)).photo);
      const nodeInput = new Float32Array(nodeLetterbox.pixels.length);
      scalePixels(nodeLetterbox.pixels, nodeInput);
      let sum = 0;
      inPage.wideInput.forEach((v, i) => (sum += Math.abs(v - nodeInput[i]!)));
      const meanLevels = (255 * sum) / nodeInput.length;
      console.log(`parity: detector outputs within ${worst.toExponential(1)}; 96x48 photo: ${pageReading.number} both sides; 240x90 photo: letterboxes ${meanLevels.toFixed(2)} grey levels apart on average (page ${inPage.wide.number}, Node ${nodeWide.number})`);
      expect(inPage.wideInput.length).toBe(nodeInput.length);
      expect(meanLevels, 'mean |page - sharp| of the letterbox, grey levels').toBeLessThan(4);
      for (const d of inPage.wide.digits) expect(d.box[0] >= 0 && d.box[1] >= 0 && d.box[2] <= 240 && d.box[3] <= 90 && d.box[0] <= d.box[2] && d.box[1] <= d.box[3], JSON.stringify(d.box)).toBe(true);
      expect(inPage.after, 'tensors after 20 readings').toBe(inPage.before);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 180_000);

  it('webcam: reads the whole frame of a video of a number at 10 or more readings a second, draws over it, and keeps its tensors flat', async () => {
    const browser = await launch(join(tmp, 'number.y4m'));
    try {
      const { page, errors } = await openPage(browser);
      await page.click('#tab-webcam');
      await startCamera(page, 'loud', 5);
      // Readings a second over 5 s of the running loop (after the models loaded and warmed up).
      const { rate, ms } = await page.evaluate(async () => {
        const live = document.getElementById('live')!;
        const r0 = Number(live.dataset.readings);
        const t0 = performance.now();
        const times: number[] = [];
        while (performance.now() - t0 < 5000) {
          await new Promise((r) => setTimeout(r, 40));
          times.push(Number(live.dataset.readingMs));
        }
        times.sort((a, b) => a - b);
        return { rate: (Number(live.dataset.readings) - r0) / ((performance.now() - t0) / 1000), ms: times[Math.floor(times.length / 2)]! };
      });
      // The loop waits out READER_INTERVAL_MS (40 ms: at most 25 a second); `ms` is a reading's own time.
      console.log(`page reader loop: ${rate.toFixed(1)} readings/s, median ${ms.toFixed(1)} ms a reading (headless Chromium, tfjs ${await page.evaluate(() => tf.getBackend())})`);
      expect(rate).toBeGreaterThanOrEqual(10);
      const shown = await page.evaluate(() => {
        const live = document.getElementById('live')!;
        const overlay = document.getElementById('overlay') as HTMLCanvasElement;
        const px = overlay.getContext('2d')!.getImageData(0, 0, overlay.width, overlay.height).data;
        let drawn = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) drawn++;
        return { source: live.dataset.source, number: live.dataset.number, reading: JSON.parse(live.dataset.reading!), size: [overlay.width, overlay.height], drawn, box: getComputedStyle(document.querySelector('.cam .box')!).display };
      });
      await page.screenshot({ path: join(shots(), 'serve-read-webcam.png') });
      expect(shown).toMatchObject({ source: 'browser', size: [320, 240], box: 'none' });
      expect(shown.reading.digits.length).toBeGreaterThan(0);
      expect(shown.number).toBe(shown.reading.number); // the control is at 0: never unsure
      expect(shown.drawn, 'boxes and the number drawn over the video').toBeGreaterThan(100);
      // Boxes are in the frame's pixels, clipped to it (a box in the letterbox's grey bars clips to an empty one: reader.ts does the same).
      for (const { box } of shown.reading.digits) expect(box[0] >= 0 && box[1] >= 0 && box[2] <= 320 && box[3] <= 240, JSON.stringify(box)).toBe(true);

      // Tensors: the count with the loop stopped, before and after 30 more readings.
      await stopCamera(page);
      const before = await page.evaluate(() => tf.memory().numTensors);
      const n = await page.evaluate(() => Number(document.getElementById('live')!.dataset.readings));
      await page.click('#cam-toggle'); // the count restarts with the camera
      await page.waitForFunction(() => Number(document.getElementById('live')!.dataset.readings) >= 30, { timeout: 60_000, polling: 50 });
      await stopCamera(page);
      expect(n).toBeGreaterThan(0);
      expect(await page.evaluate(() => tf.memory().numTensors)).toBe(before);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 180_000);

  it('webcam: says "no number" on the plain test pattern with a reader that finds no centre', async () => {
    // SILENT: the centre bias is -30, so no cell passes the threshold whatever the frame. This
    // checks the page's no-number path end to end; it says nothing about what a trained reader sees.
    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser);
      await page.click('#tab-webcam');
      await startCamera(page, 'silent', 3);
      const shown = await page.evaluate(() => {
        const live = document.getElementById('live')!;
        return { number: live.dataset.number, text: live.querySelector('.number')?.textContent, reading: JSON.parse(live.dataset.reading!) };
      });
      expect(shown).toEqual({ number: 'no number', text: 'no number', reading: { number: '', confidence: expect.closeTo(1, 9), digits: [] } });
      // Switched to the server: the whole frame goes to POST /v1/read, with the same answer.
      await page.click('#on-server');
      await page.waitForFunction(() => document.getElementById('live')!.dataset.source === 'server', { timeout: 30_000, polling: 50 });
      expect(await page.evaluate(() => document.getElementById('live')!.dataset.number)).toBe('no number');
      await stopCamera(page);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('upload: draws each reader\'s boxes and number over the photo; "no number"; "unsure" under the control', async () => {
    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser);
      const input = await page.$('#pick');
      await input!.uploadFile(join(tmp, 'photo.png'));
      await page.waitForFunction(() => document.querySelectorAll('.reading').length === 2, { timeout: 30_000 });
      const cards = () =>
        page.evaluate(() =>
          [...document.querySelectorAll('.reading')].map((c) => {
            const card = c as HTMLElement;
            const canvas = card.querySelector('canvas') as HTMLCanvasElement;
            return { model: card.dataset.model, number: card.dataset.number, row: JSON.parse(card.dataset.row!), size: [canvas.width, canvas.height] };
          }),
        );
      const first = await cards();
      const api = await fetch(`${server.url}v1/read?model=loud`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await png(blocks(240, 90), 240, 90) });
      const apiRow = ((await api.json()) as { models: Array<{ rows: Array<{ best: string }> }> }).models[0]!.rows[0]!;
      // newest first: the silent reader's card was prepended last
      expect(first.map((c) => [c.model, c.size])).toEqual([['silent', [240, 90]], ['loud', [240, 90]]]);
      expect(first[0]!.number).toBe('no number');
      expect(first[1]!.number).toBe(apiRow.best);
      expect(first[1]!.row.digits.length).toBeGreaterThan(0);
      // "unsure below 100%": the loud reader's number is held back; no number stays "no number".
      await page.$eval('#min-confidence', (e) => ((e as HTMLInputElement).value = '100'));
      await input!.uploadFile(join(tmp, 'photo.png'));
      await page.waitForFunction(() => document.querySelectorAll('.reading').length === 4, { timeout: 30_000 });
      expect((await cards()).slice(0, 2).map((c) => c.number)).toEqual(['no number', 'unsure']);
      await page.screenshot({ path: join(shots(), 'serve-read-upload.png') });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
