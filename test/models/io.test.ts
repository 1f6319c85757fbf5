/**
 * Loading a model directory refuses damage a size check cannot see: non-finite weights
 * (every prediction would be NaN) and weights files outside the directory.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { loadLayersModel, loadModelDir } from '../../src/models/io.js';
import { writeTinyModel } from '../evaluate/fixtures.js';
import { rejection } from '../helpers.js';

let tmp: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(join(tmpdir(), 'svhn-io-'));
  await writeTinyModel(join(tmp, 'good'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A copy of the good model with weights.bin changed by edit (float32 view). */
async function damaged(name: string, edit: (w: Float32Array) => void): Promise<string> {
  const dir = join(tmp, name);
  await cp(join(tmp, 'good'), dir, { recursive: true });
  const bytes = new Uint8Array(await readFile(join(dir, 'weights.bin')));
  edit(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
  await writeFile(join(dir, 'weights.bin'), bytes);
  return dir;
}

describe('loading a model directory', () => {
  it('refuses NaN or infinite weights, naming the file and the weight', async () => {
    const nan = await damaged('nan', (w) => w.fill(NaN));
    const e = await rejection(loadModelDir(nan));
    expect(e.code).toBe('BAD_MODEL');
    expect(e.message.startsWith(`${join(nan, 'weights.bin')}: weight `)).toBe(true);
    expect(e.message).toMatch(/: weight \S+\/kernel holds NaN at element 0 of 30720; expected finite numbers$/);
    const inf = await damaged('inf', (w) => (w[w.length - 1] = -Infinity)); // the last bias
    expect((await rejection(loadLayersModel(inf))).message).toMatch(/weights\.bin: weight \S+\/bias holds -Infinity at element 9 of 10; expected finite numbers$/);
    const ok = await loadLayersModel(join(tmp, 'good'));
    ok.dispose();
  });

  it('refuses a model.json whose weights path leaves the model directory', async () => {
    for (const [name, path] of [['up', '../good/weights.bin'], ['abs', join(tmp, 'good/weights.bin')], ['self', '.']] as const) {
      const dir = join(tmp, `path-${name}`);
      await cp(join(tmp, 'good'), dir, { recursive: true });
      const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
      json.weightsManifest[0].paths = [path];
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      const e = await rejection(loadModelDir(dir));
      expect(e.code).toBe('BAD_MODEL');
      expect(e.message).toBe(`${join(dir, 'model.json')}: weights path ${JSON.stringify(path)} is outside the model directory; expected a file name inside ${dir}`);
    }
    const dir = join(tmp, 'path-sub'); // a subfolder is inside
    await cp(join(tmp, 'good'), dir, { recursive: true });
    await cp(join(dir, 'weights.bin'), join(dir, 'w/weights.bin'), { recursive: true });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['./w/weights.bin'];
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    (await loadLayersModel(dir)).dispose();
  });

  it('keeps the bytes it built the model from when asked, keyed as model.json names them', async () => {
    const dir = join(tmp, 'good');
    const plain = await loadModelDir(dir);
    expect(plain.files).toBeUndefined();
    plain.model.dispose();
    const kept = await loadModelDir(dir, { keepFiles: true });
    kept.model.dispose();
    expect([...kept.files!.keys()]).toEqual(['model.json', 'weights.bin']);
    expect(kept.files!.get('model.json')!.equals(await readFile(join(dir, 'model.json')))).toBe(true);
    expect(kept.files!.get('weights.bin')!.equals(await readFile(join(dir, 'weights.bin')))).toBe(true);
  });
});
