/**
 * The server in-process (fastify's inject, no socket) with the colour model, whose answers
 * are known in advance: routes against /openapi.json, answers, and requests that must be
 * refused with a 4xx JSON error naming the problem.
 */
import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance } from 'fastify';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { disposeModels, loadServedModels, type ServedModel } from '../../src/serve/models.js';
import { buildServer, routesOf, type ServerOptions } from '../../src/serve/server.js';
import { PROTOTYPES, saveColourModel, solidRgb } from '../predict/helpers.js';
import { rejection } from '../helpers.js';
import { claimedPng, multipart } from './multipart.js';

let tmp: string;
let models: ServedModel[];
let app: FastifyInstance;

const OPTIONS: Omit<ServerOptions, 'models'> = {
  version: 'test',
  bodyLimitBytes: 64 * 1024,
  maxFiles: 4,
  maxPixels: 10_000, // 100 x 100
  topK: 3,
  batchSize: 256,
  requestTimeoutMs: 5000,
  headersTimeoutMs: 5000,
  keepAliveTimeoutMs: 1000,
};

const png = (digit: number, w = 20, h = 20) => sharp(solidRgb(digit, w, h), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();

async function post(payload: Buffer | string, contentType: string | undefined, query = '') {
  const res = await app.inject({ method: 'POST', url: `/v1/predict${query}`, payload, headers: contentType ? { 'content-type': contentType } : {} });
  return { status: res.statusCode, body: res.json() as Record<string, any> };
}

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-serve-'));
  await saveColourModel(join(tmp, 'colour'));
  await saveColourModel(join(tmp, 'b', 'colour')); // the same folder name twice: colour, colour-2
  models = await loadServedModels([join(tmp, 'colour'), join(tmp, 'b', 'colour')]);
  app = await buildServer({ ...OPTIONS, models });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  disposeModels(models ?? []);
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn serve: routes', () => {
  it('documents exactly the routes it registered in /openapi.json', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\.1\./);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routesOf(app)).toEqual(documented.sort());
    expect(routesOf(app)).toContain('POST /v1/predict');
  });

  it('GET /docs: every route of /openapi.json on a page rendered on the server, with no script and nothing fetched', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { summary?: string }>> };
    const page = await app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'unsafe-inline'/);
    expect(page.body).not.toMatch(/<script/i);
    expect(page.body).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        // each operation has its heading, in the page's escaped form
        const escaped = path.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
        expect(page.body, `${method} ${path}`).toContain(`<span class="method ${method}">${method.toUpperCase()}</span> <code>${escaped}</code>`);
      }
    }
    expect(page.body).toContain('min_confidence'); // a parameter of /v1/predict, from the document
  });

  it('serves the page with a CSP, its assets by name, and nothing else', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    for (const src of [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)) {
      if (src.startsWith('data:')) continue;
      expect(src, 'nothing from another host').toMatch(/^\/[a-z]/);
      expect((await app.inject({ method: 'GET', url: src })).statusCode, src).toBe(200);
    }
    const tfjs = await app.inject({ method: 'GET', url: '/assets/tf.es2017.min.js' });
    expect(tfjs.headers['content-type']).toMatch(/javascript/);
    expect(tfjs.body).not.toMatch(/Function\("return this"\)/); // the bundle needs no eval under the CSP
    const again = await app.inject({ method: 'GET', url: '/assets/app.js', headers: { 'if-none-match': String(tfjs.headers.etag) } });
    expect(again.statusCode).toBe(200);
    const cached = await app.inject({ method: 'GET', url: '/assets/app.js', headers: { 'if-none-match': String((await app.inject({ method: 'GET', url: '/assets/app.js' })).headers.etag) } });
    expect(cached.statusCode).toBe(304);
  });

  it('refuses path traversal: only listed assets and the files model.json names', async () => {
    for (const url of [
      '/assets/..%2f..%2fpackage.json',
      '/assets/../package.json',
      '/assets/%2e%2e/%2e%2e/etc/passwd',
      '/v1/models/colour/..%2fmetadata.json',
      '/v1/models/colour/metadata.json', // in the folder, but not a file model.json lists
      '/v1/models/..%2f..%2fetc/passwd',
      '/v1/models/nope/model.json',
      '/src/serve/page/app.js',
      '/package.json',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json(), url).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('answers URLs the router cannot take (bad percent-encoding, an over-long name) in the same { error, code } body', async () => {
    const long = 'n'.repeat(150);
    const cases: Array<[string, number, string, RegExp]> = [
      ['/assets/%zz', 400, 'BAD_URL', /^URL path '\/assets\/%zz' does not decode \(bad percent-encoding\)$/],
      ['/v1/models/%E0%A4%A/model.json', 400, 'BAD_URL', /^URL path '\/v1\/models\/%E0%A4%A\/model\.json' does not decode/],
      [`/v1/models/${long}/model.json`, 414, 'URL_TOO_LONG', /^URL path '\/v1\/models\/n{89}\.\.\.': a segment is over 100 characters$/],
    ];
    for (const [url, status, code, message] of cases) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(status);
      expect(res.json(), url).toEqual({ error: expect.stringMatching(message), code });
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    }
  });

  it('lists the models with their metadata and serves their files for tfjs', async () => {
    const list = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { models: Array<{ name: string; metadata: { architecture: string } }> };
    expect(list.models.map((m) => m.name)).toEqual(['colour', 'colour-2']);
    expect(list.models[0]!.metadata.architecture).toBe('colour-test');
    const json = (await app.inject({ method: 'GET', url: '/v1/models/colour/model.json' })).json() as { weightsManifest: Array<{ paths: string[] }> };
    expect(json.weightsManifest[0]!.paths).toEqual(['weights.bin']);
    const weights = await app.inject({ method: 'GET', url: '/v1/models/colour/weights.bin' });
    expect(weights.statusCode).toBe(200);
    expect(weights.rawPayload.length).toBe((3 * 10 + 10) * 4);
    const health = (await app.inject({ method: 'GET', url: '/healthz' })).json();
    expect(health).toMatchObject({ status: 'ok', models: 2 });
  });

  it('serves the bytes the model was built from, and refuses weights it could not serve by name', async () => {
    expect(models[0]!.files.get('weights.bin')!.equals(await readFile(join(tmp, 'colour', 'weights.bin')))).toBe(true);
    // A weights file in a subfolder loads for predict, but the page fetches files by bare name.
    const dir = join(tmp, 'sub');
    await saveColourModel(dir);
    await mkdir(join(dir, 'w'));
    await rename(join(dir, 'weights.bin'), join(dir, 'w', 'weights.bin'));
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['w/weights.bin'];
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    const before = tf.memory().numTensors;
    const e = await rejection(loadServedModels([join(tmp, 'colour'), dir]));
    expect(e.code).toBe('BAD_MODEL');
    expect(e.message).toBe(`${join(dir, 'model.json')}: expected weight files named beside it, got the path 'w/weights.bin'`);
    expect(tf.memory().numTensors).toBe(before); // both models disposed
  });
});

describe('svhn serve: POST /v1/predict', () => {
  it('answers multipart files with one row per file per model, failures as error rows', async () => {
    const { body, contentType } = multipart([
      { filename: 'red.png', type: 'image/png', data: await png(2, 37, 23) },
      { filename: 'notes.txt', type: 'text/plain', data: 'not an image' },
      { filename: 'blue.png', type: 'image/png', data: await png(4) },
      { name: 'comment', data: 'form fields are ignored' },
    ]);
    const r = await post(body, contentType, '?top_k=2&inputs=true');
    expect(r.status).toBe(200);
    expect(r.body.models.map((m: any) => m.model)).toEqual(['colour', 'colour-2']);
    const rows = r.body.models[0].rows;
    expect(rows.map((row: any) => [row.input, row.predicted])).toEqual([['red.png', 2], ['notes.txt', null], ['blue.png', 4]]);
    expect(rows[0].top).toHaveLength(2);
    expect(rows[1].error).toMatch(/^not a readable image/);
    expect(r.body.models[1].rows).toEqual(rows);
    expect(r.body.inputs[1]).toBeNull();
    const seen = await sharp(Buffer.from(r.body.inputs[0].split(',')[1], 'base64')).raw().toBuffer({ resolveWithObject: true });
    expect([seen.info.width, seen.info.height, seen.data[0], seen.data[1]]).toEqual([32, 32, 255, 0]); // red, 32x32
  });

  it('answers a raw image body, for one model', async () => {
    const r = await post(await png(7), 'image/png', '?model=colour-2');
    expect(r.status).toBe(200);
    expect(r.body.models).toHaveLength(1);
    expect(r.body.models[0]).toMatchObject({ model: 'colour-2', rows: [{ input: 'body', predicted: 7, error: null }] });
    expect((await post(await png(5), 'application/octet-stream')).body.models[0].rows[0].predicted).toBe(5);
  });

  it('?min_confidence=P: rows under P abstain (predicted null, best kept), others and error rows do not', async () => {
    const split = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) split.set(i % 32 < 16 ? PROTOTYPES[2]! : PROTOTYPES[3]!, i * 3);
    const { body, contentType } = multipart([
      { filename: 'split.png', type: 'image/png', data: await sharp(split, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer() },
      { filename: 'blue.png', type: 'image/png', data: await png(4) },
      { filename: 'notes.txt', type: 'text/plain', data: 'not an image' },
    ]);
    const plain = await post(body, contentType, '?model=colour');
    const [split0, blue, notes] = plain.body.models[0].rows;
    expect([split0.abstained, blue.abstained, notes.abstained]).toEqual([false, false, false]);
    expect(split0.confidence).toBeLessThan(0.6);
    const r = await post(body, contentType, `?model=colour&min_confidence=${split0.confidence + 0.000001}`);
    expect(r.status).toBe(200);
    expect(r.body.models[0].rows).toEqual([{ ...split0, predicted: null, abstained: true }, blue, notes]);
    expect((await post(body, contentType, '?model=colour&min_confidence=0')).body).toEqual(plain.body);
  });

  it('refuses bad requests with a 4xx JSON error naming the problem', async () => {
    const cases: Array<[string, Promise<{ status: number; body: Record<string, any> }>, number, RegExp]> = [
      ['unknown model', post(await png(1), 'image/png', '?model=nope'), 400, /model 'nope': expected one of colour, colour-2/],
      ['bad top_k', post(await png(1), 'image/png', '?top_k=11'), 400, /top_k: expected 1\.\.10, got '11'/],
      ['min_confidence over 1', post(await png(1), 'image/png', '?min_confidence=1.5'), 400, /^min_confidence: expected a number from 0 to 1 .*got '1\.5'$/],
      ['negative min_confidence', post(await png(1), 'image/png', '?min_confidence=-0.1'), 400, /^min_confidence: expected a number from 0 to 1 .*got '-0\.1'$/],
      ['min_confidence not a number', post(await png(1), 'image/png', '?min_confidence=abc'), 400, /^min_confidence: expected a number from 0 to 1 .*got 'abc'$/],
      ['wrong content type', post('{"a":1}', 'application/json'), 415, /expected Content-Type multipart\/form-data, image\/\* or application\/octet-stream/],
      ['no content type', post('hello', undefined), 415, /expected Content-Type/],
      ['not an image', post('hello', 'image/png'), 422, /^body: not a readable image/],
      ['empty body', post(Buffer.alloc(0), 'image/png'), 422, /empty file/],
      ['body over the limit', post(Buffer.alloc(OPTIONS.bodyLimitBytes + 1), 'image/png'), 413, /request body of 65537 bytes is over the limit of 65536 bytes \(--body-limit\)/],
      ['files over the limit together', (async () => { const half = Buffer.alloc(OPTIONS.bodyLimitBytes / 2); const m = multipart([{ filename: 'a.png', data: half }, { filename: 'b.png', data: half }]); return post(m.body, m.contentType); })(), 413, /over the limit of 65536 bytes \(--body-limit\)/],
      ['too many files', (async () => { const m = multipart(await Promise.all([1, 2, 3, 4, 5].map(async (d) => ({ filename: `${d}.png`, data: await png(d) })))); return post(m.body, m.contentType); })(), 413, /more than 4 files \(--max-files\)/],
      ['no files', (async () => { const m = multipart([{ name: 'x', data: 'y' }]); return post(m.body, m.contentType); })(), 400, /expected at least one file/],
      ['over the pixel limit', post(await png(3, 101, 100), 'image/png'), 422, /101x100 \(10100 pixels\) is over the limit of 10000 pixels/],
      ['a decompression bomb', post(claimedPng(100_000, 100_000), 'image/png'), 422, /100000x100000 \(10000000000 pixels\) is over the limit/],
    ];
    for (const [what, response, status, message] of cases) {
      const r = await response;
      expect(r.status, what).toBe(status);
      expect(r.body.error, what).toMatch(message);
      expect(typeof r.body.code, what).toBe('string');
      expect(r.body.error.split('\n'), what).toHaveLength(1);
    }
  });

  it('refuses a malformed multipart body with 400 naming the problem, and goes on answering', async () => {
    const part = '--aaa\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nxyz\r\n';
    let seed = 1; // fixed "random" bytes: the same body every run
    const noise = Buffer.from(Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23));
    const cases: Array<[string, Buffer | string, string, RegExp]> = [
      ['no boundary', `${part}--aaa--\r\n`, 'multipart/form-data', /^Content-Type multipart\/form-data has no boundary parameter/],
      ['a boundary the body does not use', `${part}--aaa--\r\n`, 'multipart/form-data; boundary=bbb', /^multipart body: found no complete part with the boundary 'bbb' of its Content-Type$/],
      ['no closing boundary', part, 'multipart/form-data; boundary=aaa', /^multipart body: ends without its closing boundary '--aaa--'$/],
      ['random bytes', noise, 'multipart/form-data; boundary=aaa', /^multipart body: found no complete part with the boundary 'aaa' of its Content-Type$/],
      ['a 300-character boundary', part, `multipart/form-data; boundary=${'b'.repeat(300)}`, /^multipart boundary of 300 characters: expected 1\.\.70 \(RFC 2046\)$/],
    ];
    const good = multipart([{ filename: 'ok.png', data: await png(5) }]);
    for (const [what, body, contentType, message] of cases) {
      const r = await post(body, contentType);
      expect(r.status, what).toBe(400);
      expect(r.body, what).toEqual({ error: expect.stringMatching(message), code: 'BAD_MULTIPART' });
      const after = await post(good.body, good.contentType, '?model=colour');
      expect(after.body.models[0].rows[0].predicted, `a good request after: ${what}`).toBe(5);
    }
    // A quoted boundary is the same boundary.
    const quoted = await post(good.body, good.contentType.replace(/boundary=(.*)$/, 'boundary="$1"'), '?model=colour');
    expect(quoted.body.models[0].rows[0].predicted).toBe(5);
  });

  it('refuses a POST with no body and no content type in words (400), and goes on answering', async () => {
    for (const headers of [{}, { 'content-length': '0' }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/predict', headers });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: 'no image: send multipart files or an image body with Content-Type image/*', code: 'NO_FILES' });
      expect((await post(await png(8), 'image/png', '?model=colour')).body.models[0].rows[0].predicted).toBe(8);
    }
  });

  it('leaks no tensor over many good and bad requests', async () => {
    const before = tf.memory().numTensors;
    const good = await png(6);
    for (let i = 0; i < 30; i++) {
      expect((await post(good, 'image/png')).status).toBe(200);
      expect((await post('junk', 'image/png')).status).toBe(422);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
