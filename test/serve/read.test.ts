/**
 * POST /v1/read in-process (fastify's inject) with real reader model directories made in a
 * second (test/serve/reader.ts: an untrained detector, the colour model as its classifier):
 * the rows are `svhn read`'s rows for the same photo, and equal what loadReader(dir).read
 * answers for it; readers and digit models each refuse the other's route, naming the model.
 * An untrained reader's numbers mean nothing; what is checked is that serve adds nothing and
 * loses nothing between the photo and the reader.
 */
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { decodePhoto } from '../../src/data/images/photo.js';
import { toOriginalPixels } from '../../src/read/read.js';
import { readingRow } from '../../src/read/rows.js';
import { disposeModels, loadServedModels, type ServedModel } from '../../src/serve/models.js';
import { buildServer, type ServerOptions } from '../../src/serve/server.js';
import { loadReader, type Reader } from '../../src/tasks/read/reader.js';
import { PROTOTYPES, saveColourModel } from '../predict/helpers.js';
import { multipart } from './multipart.js';
import { LOUD, SILENT, writeReaderModel } from './reader.js';

let tmp: string;
let models: ServedModel[];
let app: FastifyInstance;
let direct: Reader;

const OPTIONS: Omit<ServerOptions, 'models'> = {
  version: 'test',
  bodyLimitBytes: 256 * 1024,
  maxFiles: 4,
  maxPixels: 200_000,
  topK: 3,
  batchSize: 256,
  requestTimeoutMs: 5000,
  headersTimeoutMs: 5000,
  keepAliveTimeoutMs: 1000,
};

/** A photo of coloured blocks (the colour model's prototypes) on grey: width x height PNG. */
async function blocksPng(width: number, height: number): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3, 90);
  const colours = [PROTOTYPES[1]!, PROTOTYPES[4]!, PROTOTYPES[7]!];
  for (let y = Math.floor(height * 0.2); y < Math.floor(height * 0.8); y++) {
    for (let x = Math.floor(width * 0.1); x < Math.floor(width * 0.9); x++) rgb.set(colours[Math.max(0, Math.min(2, Math.floor(((x / width - 0.1) / 0.8) * 3)))]!, (y * width + x) * 3);
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

async function postRead(parts: Parameters<typeof multipart>[0], query = '') {
  const { body, contentType } = multipart(parts);
  const res = await app.inject({ method: 'POST', url: `/v1/read${query}`, payload: body, headers: { 'content-type': contentType } });
  return { status: res.statusCode, body: res.json() as Record<string, any> };
}

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-serve-read-'));
  await saveColourModel(join(tmp, 'colour'));
  await writeReaderModel(join(tmp, 'loud'), { seed: 7, classifierDir: join(tmp, 'colour'), centreBias: LOUD });
  await writeReaderModel(join(tmp, 'silent'), { seed: 7, classifierDir: join(tmp, 'colour'), centreBias: SILENT });
  models = await loadServedModels([join(tmp, 'colour'), join(tmp, 'loud'), join(tmp, 'silent')]);
  app = await buildServer({ ...OPTIONS, models });
  await app.ready();
  direct = await loadReader(join(tmp, 'loud'));
});
afterAll(async () => {
  await app?.close();
  disposeModels(models ?? []);
  direct?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('svhn serve: POST /v1/read', () => {
  it('lists readers beside digit models, each with its task, and serves both of a reader\'s models', async () => {
    const list = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { models: Array<{ name: string; task: string; metadata: { task?: string } }> };
    expect(list.models.map((m) => [m.name, m.task])).toEqual([['colour', 'classify'], ['loud', 'read'], ['silent', 'read']]);
    expect(list.models[1]!.metadata.task).toBe('read');
    const detector = (await app.inject({ method: 'GET', url: '/v1/models/loud/model.json' })).json() as { modelTopology: { config: { layers: unknown[] } } };
    expect(detector.modelTopology.config.layers.length).toBeGreaterThan(20);
    const classifier = await app.inject({ method: 'GET', url: '/v1/models/loud/classifier/weights.bin' });
    expect(classifier.statusCode).toBe(200);
    expect(classifier.rawPayload.length).toBe((3 * 10 + 10) * 4); // the colour model's weights
    expect((await app.inject({ method: 'GET', url: '/v1/models/colour/classifier/model.json' })).json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it("answers svhn read's rows, equal to loadReader(dir).read on the same photo", async () => {
    const photos = [await blocksPng(96, 48), await blocksPng(240, 90)];
    const { status, body } = await postRead(photos.map((data, i) => ({ filename: `p${i}.png`, type: 'image/png', data })), '?model=loud');
    expect(status).toBe(200);
    expect(body.models.map((m: { model: string }) => m.model)).toEqual(['loud']);
    const rows = body.models[0].rows as Array<Record<string, any>>;
    for (const [i, bytes] of photos.entries()) {
      const decoded = await decodePhoto(bytes);
      const reading = await direct.read(decoded.photo);
      expect(reading.digits.length, 'the loud reader finds boxes').toBeGreaterThan(0);
      const row = rows[i]!;
      expect(Object.keys(row).sort()).toEqual(['abstained', 'best', 'confidence', 'digits', 'error', 'input', 'number'].sort());
      expect(row).toEqual(readingRow(`p${i}.png`, toOriginalPixels(reading, decoded), 0));
      expect(row.number).toBe(reading.number);
      // The rows round boxes to whole pixels: the server's reader, unrounded, against loadReader's.
      const served = models.find((m) => m.name === 'loud')!;
      const servedReading = await (served.task === 'read' ? served.reader : direct).read(decoded.photo);
      expect(servedReading.number).toBe(reading.number);
      servedReading.digits.forEach((d, k) => d.box.forEach((v, j) => expect(Math.abs(v - reading.digits[k]!.box[j]!)).toBeLessThan(1e-6)));
      expect(row.error).toBeNull();
    }
  });

  it('abstains below min_confidence, and reads "no number" where no centre passes the threshold', async () => {
    const photo = await blocksPng(96, 48);
    const held = await postRead([{ filename: 'a.png', type: 'image/png', data: photo }], '?model=loud&min_confidence=1');
    expect(held.body.models[0].rows[0]).toMatchObject({ number: null, abstained: true, error: null });
    expect(held.body.models[0].rows[0].best).toMatch(/^\d+$/);
    const none = await postRead([{ filename: 'a.png', type: 'image/png', data: photo }], '?model=silent&min_confidence=1');
    expect(none.body.models[0].rows[0]).toEqual({ input: 'a.png', number: '', confidence: 1, digits: [], abstained: false, best: '', error: null });
    // No ?model: every reader, in --model order; a raw image body is one photo named "body".
    const raw = await app.inject({ method: 'POST', url: '/v1/read', payload: photo, headers: { 'content-type': 'image/png' } });
    expect((raw.json() as { models: Array<{ model: string; rows: Array<{ input: string }> }> }).models.map((m) => [m.model, m.rows[0]!.input])).toEqual([['loud', 'body'], ['silent', 'body']]);
  });

  it('refuses bad requests with the documented { error, code } body', async () => {
    const photo = await blocksPng(96, 48);
    const cases: Array<[string, { status: number; body: Record<string, any> }, number, string, RegExp]> = [
      ['no file', await postRead([{ name: 'note', data: 'hello' }]), 400, 'NO_FILES', /^expected at least one file part/],
      ['a digit model on /v1/read', await postRead([{ filename: 'a.png', type: 'image/png', data: photo }], '?model=colour'), 400, 'WRONG_TASK', /^model 'colour' is a digit model \(32x32 digit crops\), not a reader \(whole photos\): POST to \/v1\/predict$/],
      ['an unknown model', await postRead([{ filename: 'a.png', type: 'image/png', data: photo }], '?model=nope'), 400, 'UNKNOWN_MODEL', /^model 'nope': expected one of colour, loud, silent$/],
      ['a bad min_confidence', await postRead([{ filename: 'a.png', type: 'image/png', data: photo }], '?min_confidence=2'), 400, 'BAD_MIN_CONFIDENCE', /^min_confidence: /],
    ];
    for (const [what, res, status, code, message] of cases) {
      expect(res.status, what).toBe(status);
      expect(res.body, what).toEqual({ error: expect.stringMatching(message), code });
    }
    // A file that is not an image: 422 with its row; beside a photo, a row with an error (200).
    const bad = await postRead([{ filename: 'notes.txt', type: 'text/plain', data: 'not an image' }], '?model=loud');
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ code: 'BAD_IMAGE', error: expect.stringMatching(/^notes\.txt: /) });
    expect(bad.body.models[0].rows[0]).toMatchObject({ input: 'notes.txt', number: null, confidence: null, digits: [], best: null, error: expect.any(String) });
    const mixed = await postRead([{ filename: 'notes.txt', data: 'not an image' }, { filename: 'a.png', data: photo }], '?model=loud');
    expect(mixed.status).toBe(200);
    expect(mixed.body.models[0].rows.map((r: { error: string | null }) => r.error === null)).toEqual([false, true]);
    // A reader on /v1/predict.
    const { body, contentType } = multipart([{ filename: 'a.png', type: 'image/png', data: photo }]);
    const predict = await app.inject({ method: 'POST', url: '/v1/predict?model=loud', payload: body, headers: { 'content-type': contentType } });
    expect(predict.statusCode).toBe(400);
    expect(predict.json()).toEqual({ error: "model 'loud' is a reader (whole photos), not a digit model (32x32 digit crops): POST to /v1/read", code: 'WRONG_TASK' });
    // /v1/predict with no ?model answers with the digit models only.
    const all = await app.inject({ method: 'POST', url: '/v1/predict', payload: body, headers: { 'content-type': contentType } });
    expect((all.json() as { models: Array<{ model: string }> }).models.map((m) => m.model)).toEqual(['colour']);
  });

  it('documents /v1/read and its rows in /openapi.json', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, any>; components: { schemas: Record<string, any> } };
    expect(Object.keys(doc.paths['/v1/read'])).toEqual(['post']);
    expect(doc.components.schemas.ReadRow.required.sort()).toEqual(['abstained', 'best', 'confidence', 'digits', 'error', 'input', 'number'].sort());
  });
});
