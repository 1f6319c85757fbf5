/**
 * The page of `svhn serve` in headless Chromium (Debian's package; skipped where absent),
 * driven by puppeteer-core: an uploaded image is read and shown; the webcam, Chromium's fake
 * camera playing a video of digits this test writes, is read live in the page by tfjs (the
 * saved models load in stock tfjs, no svhn layer classes) and, with the switch, on the
 * server; the in-page answers equal the server's for the same 32x32 input; no console error
 * and no CSP violation on the way.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_FLAGS } from '../helpers.js';
import { PROTOTYPES, solidRgb } from '../predict/helpers.js';
import { startServe, writeServeModels, type RunningServer } from './helpers.js';
import { writeDigitVideo } from './y4m.js';

let tmp: string;
let server: RunningServer;
/** Screenshots go here when set (to look at them), else into the temporary folder. */
const shots = () => process.env.SVHN_TEST_SHOTS ?? tmp;

type Browser = import('puppeteer-core').Browser;
type Page = import('puppeteer-core').Page;

async function launch(video: string): Promise<Browser> {
  const puppeteer = (await import('puppeteer-core')).default;
  return puppeteer.launch({
    executablePath: CHROMIUM!,
    headless: true,
    userDataDir: await mkdtemp(join(tmp, 'profile-')),
    args: [
      ...CHROMIUM_FLAGS,
      '--use-fake-ui-for-media-stream', // camera permission granted
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${video}`,
    ],
  });
}

/** Opens the page and collects what would show in the console as an error (CSP violations included). */
async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) errors.push(`external request: ${r.url()}`);
  });
  await page.setViewport({ width: 1100, height: 800 });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return { page, errors };
}

/** The digit the live panel shows for a model, and where it was read. */
const liveDigit = (page: Page, model: string) =>
  page.evaluate((m) => {
    const live = document.getElementById('live')!;
    return { digit: live.querySelector(`.answer[data-model="${m}"] .digit`)?.textContent ?? null, source: live.dataset.source };
  }, model);

async function waitForLive(page: Page, model: string, digit: string, source: string): Promise<void> {
  await page.waitForFunction(
    (m, d, s) => {
      const live = document.getElementById('live')!;
      return live.dataset.source === s && live.querySelector(`.answer[data-model="${m}"] .digit`)?.textContent === d;
    },
    { timeout: 30_000, polling: 50 },
    model,
    digit,
    source,
  );
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  tmp = await mkdtemp(join(tmpdir(), 'svhn-serve-page-'));
  await writeServeModels(tmp);
  // 2 s of a red 2, then 2 s of a yellow 5, at 10 frames/s, looped by Chromium.
  await writeDigitVideo(join(tmp, 'digits.y4m'), { width: 320, height: 240, fps: 10, digits: [2, 5], framesEach: 20 });
  await mkdir(join(tmp, 'upload'));
  const split = Buffer.alloc(32 * 32 * 3);
  for (let i = 0; i < 32 * 32; i++) split.set(i % 32 < 16 ? PROTOTYPES[2]! : PROTOTYPES[3]!, i * 3);
  await writeFile(join(tmp, 'upload', 'split.png'), await sharp(split, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer());
  await writeFile(join(tmp, 'upload', 'seven.png'), await sharp(solidRgb(7, 48, 30), { raw: { width: 48, height: 30, channels: 3 } }).png().toBuffer());
  server = await startServe(['--model', 'models/colour', '--model', 'models/optimized', '--backend', 'wasm', '--threads', '1'], tmp);
});
afterAll(async () => {
  if (server) await server.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!CHROMIUM)('svhn serve: the page in headless Chromium', () => {
  it('reads an uploaded image: the 32x32 input and every model\'s digit', async () => {
    const browser = await launch(join(tmp, 'digits.y4m'));
    try {
      const { page, errors } = await openPage(browser);
      const input = await page.$('#pick');
      await input!.uploadFile(join(tmp, 'upload', 'seven.png'));
      await page.waitForSelector('.result', { timeout: 30_000 });
      const shown = await page.evaluate(() => ({
        digit: document.querySelector('.result .answer[data-model="colour"] .digit')?.textContent,
        models: [...document.querySelectorAll('.result .answer')].map((a) => (a as HTMLElement).dataset.model),
        input: (document.querySelector('.result .input img') as HTMLImageElement | null)?.naturalWidth,
        name: document.querySelector('.result .name')?.textContent,
      }));
      expect(shown).toEqual({ digit: '7', models: ['colour', 'optimized'], input: 32, name: 'seven.png' });
      // "unsure below 60%": a red/green split (about 50% for the colour model) says unsure instead of a digit; the seven still says 7.
      await page.$eval('#min-confidence', (e) => ((e as HTMLInputElement).value = '60'));
      await input!.uploadFile(join(tmp, 'upload', 'split.png'), join(tmp, 'upload', 'seven.png'));
      await page.waitForFunction(() => document.querySelectorAll('.result').length === 3, { timeout: 30_000 });
      const colourDigits = await page.evaluate(() => [...document.querySelectorAll('.result .answer[data-model="colour"] .digit')].map((d) => [d.textContent, (d as HTMLElement).title]));
      // newest first: seven, split, then the first upload
      expect(colourDigits).toEqual([['7', ''], ['unsure', expect.stringMatching(/^best guess \d at (4\d|5\d)\.\d%$/)], ['7', '']]);
      const png = await page.screenshot({ path: join(shots(), 'serve-upload.png') });
      expect((await sharp(png).stats()).channels[0]!.stdev).toBeGreaterThan(20); // not blank
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('reads the webcam live in the page (stock tfjs) and, switched, on the server; both agree with the API', async () => {
    const browser = await launch(join(tmp, 'digits.y4m'));
    try {
      const { page, errors } = await openPage(browser);
      await page.click('#tab-webcam');
      await page.click('#cam-toggle');
      // In the page: the video's digits, in turn.
      await waitForLive(page, 'colour', '2', 'browser');
      await waitForLive(page, 'colour', '5', 'browser');
      await page.screenshot({ path: join(shots(), 'serve-webcam.png') });
      expect(await page.evaluate(() => typeof tf === 'object' && tf.getBackend())).toBeTruthy();

      // The same 32x32 input, read in the page and by the API: the same digits and probabilities.
      const { rows, png } = await page.evaluate(() => {
        const live = document.getElementById('live')!;
        return { rows: live.dataset.rows!, png: (live.querySelector('canvas') as HTMLCanvasElement).toDataURL('image/png') };
      });
      const inPage = JSON.parse(rows) as Array<{ model: string; row: { top: Array<{ digit: number; prob: number }> } }>;
      const res = await fetch(`${server.url}v1/predict?top_k=3`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.from(png.split(',')[1]!, 'base64') });
      const api = (await res.json()) as { models: Array<{ model: string; rows: Array<{ top: Array<{ digit: number; prob: number }> }> }> };
      expect(inPage.map((r) => r.model)).toEqual(['colour', 'optimized']);
      for (const [i, { model, row }] of inPage.entries()) {
        const server = api.models[i]!;
        expect(server.model).toBe(model);
        expect(row.top.map((t) => t.digit), model).toEqual(server.rows[0]!.top.map((t) => t.digit));
        row.top.forEach((t, k) => expect(t.prob, model).toBeCloseTo(server.rows[0]!.top[k]!.prob, 4));
      }

      // Switched to the server: frames go to POST /v1/predict.
      await page.click('#on-server');
      await waitForLive(page, 'colour', '2', 'server');
      await waitForLive(page, 'colour', '5', 'server');
      expect((await liveDigit(page, 'optimized')).digit).toMatch(/^\d$/);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
    expect(server.stderr()).toMatch(/"url":"\/v1\/models\/optimized\/weights\.bin","status":200/); // the page fetched the weights
  }, 180_000);
});
