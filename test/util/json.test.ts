import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../src/data/cache/cache.js';
import { CACHE_SUBDIR, MANIFEST_FILE } from '../../src/data/cache/cacheFormat.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { parseJsonFile, readJsonFile } from '../../src/util/json.js';
import { rejection } from '../helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-json-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('parseJsonFile', () => {
  it('parses JSON', () => {
    expect(parseJsonFile(Buffer.from('{"a":[1,2]}'), 'x.json', { code: 'BAD_INPUT' })).toEqual({ a: [1, 2] });
  });

  it('names the file and what was wrong in one line, never quoting the bytes', () => {
    const cases: [string, string][] = [
      ['\x00\x01garbage{', 'invalid JSON at position 0'],
      ['  garbage', 'invalid JSON at position 2'],
      ['{"a":', 'JSON cut short at the end of the file'],
      ['', 'an empty file'],
      ['{"a" 1}', 'invalid JSON at position 5'],
      ['[1]x', 'invalid JSON at position 3'],
    ];
    for (const [text, why] of cases) {
      let message = '';
      try {
        parseJsonFile(Buffer.from(text, 'latin1'), 'm/model.json', { code: 'BAD_MODEL', suggestion: 'retrain' });
      } catch (e) {
        expect((e as { code: string }).code).toBe('BAD_MODEL');
        expect((e as { suggestion: string }).suggestion).toBe('retrain');
        message = (e as Error).message;
      }
      expect(message).toBe(`cannot read m/model.json: expected JSON, got ${why}`);
    }
  });

  it('readJsonFile reports a missing file as IO naming it', async () => {
    const e = await rejection(readJsonFile(join(tmp, 'none.json'), { code: 'BAD_INPUT' }));
    expect(e.code).toBe('IO');
    expect(e.message).toBe(`cannot read ${join(tmp, 'none.json')}: no such file or directory`);
    await writeFile(join(tmp, 'ok.json'), '[1]');
    expect(await readJsonFile(join(tmp, 'ok.json'), { code: 'BAD_INPUT' })).toEqual([1]);
  });

  it('is what the cache manifest and the checkpoint state are read with', async () => {
    const garbage = Buffer.from('\x00\x01garbage{', 'latin1');
    await mkdir(join(tmp, 'data', CACHE_SUBDIR), { recursive: true });
    const manifest = join(tmp, 'data', CACHE_SUBDIR, MANIFEST_FILE);
    await writeFile(manifest, garbage);
    const c = await rejection(openCache(join(tmp, 'data')));
    expect([c.code, c.message]).toEqual(['BAD_CACHE', `cannot read ${manifest}: expected JSON, got invalid JSON at position 0`]);
    await mkdir(join(tmp, 'ckpt'));
    await writeFile(join(tmp, 'ckpt', 'state.json'), garbage);
    const k = await rejection(loadCheckpoint(join(tmp, 'ckpt')));
    expect(k.message).toBe(`cannot read ${join(tmp, 'ckpt', 'state.json')}: expected JSON, got invalid JSON at position 0`);
    expect(k.suggestion).toMatch(/without --resume/);
  });
});
