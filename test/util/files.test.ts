/**
 * util/files.ts: what svhn reads must be a regular file; a FIFO, socket or device is refused
 * at once with ENOTREG ("expected a regular file, got a FIFO"), never waited on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/util/atomic.js';
import { isNotRegularFile, openRegularFile, readRegularFile } from '../../src/util/files.js';

let tmp: string;
let server: Server;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-files-'));
  await writeFile(join(tmp, 'plain.bin'), 'bytes');
  execFileSync('mkfifo', [join(tmp, 'fifo')]);
  server = createServer();
  await new Promise<void>((done) => server.listen(join(tmp, 'sock'), done));
});

afterAll(async () => {
  await new Promise((done) => server.close(done));
  await rm(tmp, { recursive: true, force: true });
});

/** The rejection of p, which must come (a blocked open would time the test out instead). */
async function refusal(p: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as NodeJS.ErrnoException,
  );
  if (!e) throw new Error('expected a refusal');
  return e;
}

describe('openRegularFile / readRegularFile', () => {
  it('reads a regular file', async () => {
    expect((await readRegularFile(join(tmp, 'plain.bin'))).toString()).toBe('bytes');
    const fh = await openRegularFile(join(tmp, 'plain.bin'));
    try {
      const buf = Buffer.alloc(3);
      await fh.read(buf, 0, 3, 2);
      expect(buf.toString()).toBe('tes');
    } finally {
      await fh.close();
    }
  });

  it.each([
    ['fifo', 'a FIFO'],
    ['sock', 'a socket'],
    ['.', 'a folder'],
    ['/dev/null', 'a character device'],
  ])('refuses %s as %s, at once', async (name, kind) => {
    const path = name.startsWith('/') ? name : join(tmp, name);
    for (const e of [await refusal(openRegularFile(path)), await refusal(readRegularFile(path))]) {
      expect(isNotRegularFile(e)).toBe(true);
      expect(e.message).toBe(`expected a regular file, got ${kind}`);
    }
  });

  it('opens for writing too: a FIFO with no reader is refused, not waited on; a regular file is created or appended to', async () => {
    for (const flags of ['w', 'a'] as const) {
      const e = await refusal(openRegularFile(join(tmp, 'fifo'), flags));
      expect([isNotRegularFile(e), e.message]).toEqual([true, 'expected a regular file, got a FIFO']);
    }
    const path = join(tmp, 'grown.part');
    for (const [flags, text] of [['w', 'ab'], ['a', 'cd']] as const) {
      const fh = await openRegularFile(path, flags);
      await fh.write(text);
      await fh.close();
    }
    expect((await readRegularFile(path)).toString()).toBe('abcd');
  });

  it('passes other failures through as they are', async () => {
    const e = await refusal(readRegularFile(join(tmp, 'none')));
    expect(e.code).toBe('ENOENT');
    expect(isNotRegularFile(e)).toBe(false);
  });

  it('hashFile refuses a FIFO with an error naming it', async () => {
    const e = await refusal(hashFile(join(tmp, 'fifo')));
    expect(e.message).toBe(`cannot read ${join(tmp, 'fifo')}: expected a regular file, got a FIFO`);
  });
});
