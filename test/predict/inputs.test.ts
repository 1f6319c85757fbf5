import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countInputs, expandInputs, resolveInputs, type InputItem } from '../../src/predict/inputs.js';

const MAT = join(import.meta.dirname, '../fixtures/mat/small_c_u8.mat');
const matExpected = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/mat/expected.json'), 'utf8')) as Record<string, { n: number; first_digits: number[]; nhwc_sha256: string }>)['small_c_u8.mat']!;

async function collect(gen: AsyncIterable<InputItem>): Promise<InputItem[]> {
  const out: InputItem[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe('predict inputs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'svhn-inputs-'));
    // Created out of order: the walk must sort them (by name in each folder: 'd.tiff' < 'deeper').
    for (const name of ['b.png', 'a.JPG', 'c.webp', 'notes.txt', '.hidden.png', 'z.bmp']) await writeFile(join(dir, name), 'x');
    await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(dir, 'sub', 'd.tiff'), 'x');
    await writeFile(join(dir, 'sub', 'deeper', 'e.gif'), 'x');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('walks a folder in sorted order, image extensions only, subfolders only with recursive', async () => {
    const seen: [string, number][] = [];
    const flat = await collect(expandInputs(await resolveInputs([dir]), { recursive: false, dataDir: 'data', onSkipped: (d, n) => seen.push([d, n]) }));
    expect(flat.map((i) => i.id)).toEqual(['a.JPG', 'b.png', 'c.webp', 'z.bmp'].map((n) => join(dir, n)));
    expect(seen).toEqual([[dir, 3]]); // .hidden.png, notes.txt, sub/
    const deep = await collect(expandInputs(await resolveInputs([dir]), { recursive: true, dataDir: 'data' }));
    expect(deep.map((i) => i.id)).toEqual(['a.JPG', 'b.png', 'c.webp', 'sub/d.tiff', 'sub/deeper/e.gif', 'z.bmp'].map((n) => join(dir, n)));
    expect(await countInputs(await resolveInputs([dir]), { recursive: false, dataDir: 'data' })).toBe(4);
    expect(await countInputs(await resolveInputs([dir]), { recursive: true, dataDir: 'data' })).toBe(6);
  });

  it('walks each folder once: symlink loops are skipped and reported', async () => {
    const loop = join(dir, '..', `${dir.split('/').pop()}-loop`); // beside dir, so the other tests' listings stay as they are
    await mkdir(join(loop, 'sub'), { recursive: true });
    await writeFile(join(loop, 'x.png'), 'x');
    await writeFile(join(loop, 'sub', 'y.png'), 'x');
    await symlink('.', join(loop, 'self'));
    await symlink('..', join(loop, 'sub', 'up'));
    await symlink('sub', join(loop, 'twin')); // a second link to a folder already walked
    try {
      const revisits: string[] = [];
      const items = await collect(expandInputs(await resolveInputs([loop]), { recursive: true, dataDir: 'data', onRevisit: (d) => revisits.push(d) }));
      expect(items.map((i) => i.id)).toEqual([join(loop, 'sub', 'y.png'), join(loop, 'x.png')]);
      expect(revisits).toEqual([join(loop, 'self'), join(loop, 'sub', 'up'), join(loop, 'twin')]);
      expect(await countInputs(await resolveInputs([loop]), { recursive: true, dataDir: 'data' })).toBe(2);
    } finally {
      await rm(loop, { recursive: true, force: true });
    }
  }, 10_000);

  it('takes a file named on the command line whatever its extension', async () => {
    const items = await collect(expandInputs(await resolveInputs([join(dir, 'notes.txt')]), { recursive: false, dataDir: 'data' }));
    expect(items).toEqual([{ kind: 'file', id: join(dir, 'notes.txt'), path: join(dir, 'notes.txt') }]);
  });

  it('fails at once on a missing path or an unknown cache split', async () => {
    await expect(resolveInputs([dir, join(dir, 'nope.png')])).rejects.toThrow(/INPUT .*nope\.png: no such file or directory/);
    await expect(resolveInputs(['cache:training'])).rejects.toThrow(/expected cache:train\|cache:val\|cache:test\|cache:extra, got cache:training/);
    await expect(countInputs(await resolveInputs(['cache:test']), { recursive: false, dataDir: join(dir, 'no-data') })).rejects.toThrow(/preprocess/);
  });

  it('reads every image of a .mat file with its true label, in chunks', async () => {
    const sources = await resolveInputs([MAT]);
    expect(sources).toEqual([{ kind: 'mat', path: MAT }]);
    expect(await countInputs(sources, { recursive: false, dataDir: 'data' })).toBe(matExpected.n);
    const items = await collect(expandInputs(sources, { recursive: false, dataDir: 'data', chunk: 10 }));
    expect(items).toHaveLength(matExpected.n);
    expect(items[5]!.id).toBe(`${MAT}#5`);
    const pixels = items.map((i) => (i.kind === 'pixels' ? i : undefined));
    expect(pixels.slice(0, matExpected.first_digits.length).map((p) => p!.label)).toEqual(matExpected.first_digits);
    const hash = createHash('sha256');
    for (const p of pixels) hash.update(p!.image);
    expect(hash.digest('hex')).toBe(matExpected.nhwc_sha256); // the same NHWC bytes scipy wrote
  });
});
