/**
 * The download stage against a real HTTP server on 127.0.0.1 started here: Range support and
 * fault injection (dropped connection, stall, wrong bytes, wrong size, 404, 503, ignored
 * Range). Files are a few hundred KB of random bytes with their real checksums in a custom
 * sources table. Nothing touches the internet.
 */
import { createHash, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadSplits, type DownloadEvent } from '../../../src/data/sources/download.js';
import type { SourceTable } from '../../../src/data/sources/sources.js';
import { rejection } from '../../helpers.js';

interface Fault {
  status?: number; // answer with this status (no body) instead of the file
  hangUp?: boolean; // close the connection before any response ("socket hang up")
  dropAfter?: number; // send this many body bytes, then destroy the socket
  stallAfter?: number; // send this many body bytes, then go silent (client idle timeout)
  corrupt?: boolean; // flip a byte: same size, wrong checksum
  ignoreRange?: boolean; // answer a Range request with 200 and the whole file
}

interface Seen {
  path: string;
  range?: string;
}

// Distinct sizes per split so a mix-up between files cannot pass.
const FILES: Record<string, Buffer> = {
  'train_32x32.mat': randomBytes(300_000),
  'test_32x32.mat': randomBytes(200_003),
  'extra_32x32.mat': randomBytes(100_000),
};

const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');
const table = (files: Record<string, Buffer>): SourceTable => {
  const entry = (file: string) => ({ file, size: files[file]!.length, md5: hex('md5', files[file]!), sha256: hex('sha256', files[file]!) });
  return { train: entry('train_32x32.mat'), test: entry('test_32x32.mat'), extra: entry('extra_32x32.mat') };
};
const SOURCES = table(FILES);

let server: http.Server;
let baseUrl: string;
let seen: Seen[] = [];
/** Faults per request, consumed in order: the next request to a file takes the next fault. */
let faults: Record<string, Fault[]> = {};
/** Files the server serves (tests swap in different bytes). */
let served: Record<string, Buffer> = FILES;

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const name = decodeURIComponent((req.url ?? '/').split('/').pop() ?? '');
  seen.push({ path: req.url ?? '', range: req.headers.range });
  const fault = faults[name]?.shift() ?? {};
  const body = served[name];
  if (fault.hangUp) {
    req.socket.destroy();
    return;
  }
  if (fault.status || !body) {
    res.writeHead(fault.status ?? 404).end();
    return;
  }
  let data = body;
  if (fault.corrupt) {
    data = Buffer.from(body);
    data[data.length >> 1]! ^= 0xff;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m && !fault.ignoreRange) {
    start = Number(m[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
      return;
    }
    res.writeHead(206, { 'Content-Length': data.length - start, 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}`, 'Accept-Ranges': 'bytes' });
  } else {
    res.writeHead(200, { 'Content-Length': data.length, 'Accept-Ranges': 'bytes' });
  }
  const rest = data.subarray(start);
  if (fault.dropAfter !== undefined) {
    res.write(rest.subarray(0, fault.dropAfter), () => res.socket?.destroy());
  } else if (fault.stallAfter !== undefined) {
    res.write(rest.subarray(0, fault.stallAfter)); // then silence: the client's idle timeout fires
  } else {
    res.end(rest);
  }
}

let dataDir: string;
const fast = { retries: 3, backoffMs: 5, timeoutMs: 2000 };
const opts = (extra: Partial<Parameters<typeof downloadSplits>[0]> = {}) => ({
  dataDir,
  baseUrl,
  splits: ['train' as const],
  sources: SOURCES,
  ...fast,
  ...extra,
});

/** Byte equality without vitest's element-by-element diff (slow on 300 kB buffers). */
async function sameBytes(path: string, expected: Buffer): Promise<boolean> {
  return (await readFile(path)).equals(expected);
}

beforeAll(async () => {
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/housenumbers/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'svhn-dl-'));
  seen = [];
  faults = {};
  served = FILES;
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('downloadSplits', () => {
  it('downloads and verifies each split, leaving no .part behind', async () => {
    const events: DownloadEvent[] = [];
    const results = await downloadSplits(opts({ splits: ['train', 'test'], onProgress: (e) => events.push(e) }));
    expect(results.map((r) => [r.split, r.status, r.attempts, r.fetchedBytes])).toEqual([
      ['train', 'downloaded', 1, FILES['train_32x32.mat']!.length],
      ['test', 'downloaded', 1, FILES['test_32x32.mat']!.length],
    ]);
    expect(results[0]!.sha256).toBe(SOURCES.train.sha256);
    expect(results[1]!.md5).toBe(SOURCES.test.md5);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
    expect(await sameBytes(join(dataDir, 'test_32x32.mat'), FILES['test_32x32.mat'])).toBe(true);
    expect((await readdir(dataDir)).sort()).toEqual(['test_32x32.mat', 'train_32x32.mat']);
    expect(seen.map((s) => s.range)).toEqual([undefined, undefined]);
    expect(seen[0]!.path).toBe('/housenumbers/train_32x32.mat'); // trailing slash on the base tolerated
    // Progress: bytes for train rise monotonically to its size, then verify and done.
    const trainBytes = events.filter((e) => e.type === 'bytes' && e.split === 'train').map((e) => (e as { done: number }).done);
    expect(trainBytes.length).toBeGreaterThan(0);
    expect(trainBytes.every((d, i) => i === 0 || d >= trainBytes[i - 1]!)).toBe(true);
    expect(trainBytes.at(-1)).toBe(SOURCES.train.size);
    expect(events.filter((e) => e.split === 'train').map((e) => e.type).filter((t) => t !== 'bytes')).toEqual(['start', 'verify', 'done']);
  });

  it('resumes with a Range request after the connection drops mid-file', async () => {
    faults['train_32x32.mat'] = [{ dropAfter: 120_000 }];
    const [r] = await downloadSplits(opts());
    expect(r!.status).toBe('downloaded');
    expect(r!.attempts).toBe(2);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.range).toBeUndefined();
    const resumeAt = Number(/^bytes=(\d+)-$/.exec(seen[1]!.range ?? '')?.[1]);
    expect(resumeAt).toBeGreaterThan(0);
    expect(resumeAt).toBeLessThanOrEqual(120_000);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
    expect(await readdir(dataDir)).toEqual(['train_32x32.mat']);
  });

  it('retries a stalled transfer after the idle timeout and resumes it', async () => {
    faults['train_32x32.mat'] = [{ stallAfter: 50_000 }];
    const [r] = await downloadSplits(opts({ timeoutMs: 300 }));
    expect(r!.attempts).toBe(2);
    expect(seen[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
  });

  it('resumes a .part left by an earlier run', async () => {
    const file = FILES['train_32x32.mat']!;
    await writeFile(join(dataDir, 'train_32x32.mat.part'), file.subarray(0, 100_000));
    const [r] = await downloadSplits(opts());
    expect(seen.map((s) => s.range)).toEqual(['bytes=100000-']);
    expect(r!.resumedFrom).toBe(100_000);
    expect(r!.fetchedBytes).toBe(file.length - 100_000);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), file)).toBe(true);
  });

  it('starts again from byte 0 when the server ignores the Range', async () => {
    const file = FILES['train_32x32.mat']!;
    // A .part whose bytes are wrong: appending to it would fail the checksum.
    await writeFile(join(dataDir, 'train_32x32.mat.part'), randomBytes(100_000));
    faults['train_32x32.mat'] = [{ ignoreRange: true }];
    const [r] = await downloadSplits(opts());
    expect(seen.map((s) => s.range)).toEqual(['bytes=100000-']);
    expect(r!.fetchedBytes).toBe(file.length);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), file)).toBe(true);
  });

  it('rejects wrong bytes by checksum without retrying, leaving neither the file nor the .part', async () => {
    faults['train_32x32.mat'] = [{ corrupt: true }];
    const err = await rejection(downloadSplits(opts()));
    expect(err.code).toBe('CHECKSUM');
    expect(err.message).toContain(`sha256 expected ${SOURCES.train.sha256}, got `);
    expect(err.message).toContain('deleted');
    expect(seen).toHaveLength(1);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('rejects a file of the wrong size from its Content-Length, without retrying', async () => {
    served = { ...FILES, 'train_32x32.mat': FILES['train_32x32.mat']!.subarray(0, 250_000) };
    const err = await rejection(downloadSplits(opts()));
    expect(err.code).toBe('CHECKSUM');
    expect(err.message).toContain(`has 250000 bytes, expected ${SOURCES.train.size}`);
    expect(seen).toHaveLength(1);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('does not retry a 404', async () => {
    served = {};
    const err = await rejection(downloadSplits(opts()));
    expect(err.code).toBe('NETWORK');
    expect(err.message).toMatch(/HTTP 404/);
    expect(err.message).toContain('train_32x32.mat');
    expect(seen).toHaveLength(1);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('retries 503s with backoff, then succeeds', async () => {
    faults['train_32x32.mat'] = [{ status: 503 }, { status: 503 }];
    const retries: number[] = [];
    const [r] = await downloadSplits(
      opts({ backoffMs: 20, onProgress: (e) => e.type === 'retry' && retries.push(e.delayMs) }),
    );
    expect(r!.attempts).toBe(3);
    expect(seen).toHaveLength(3);
    expect(retries).toEqual([20, 40]); // exponential
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
  });

  it('retries a connection closed before any response (socket hang up)', async () => {
    faults['train_32x32.mat'] = [{ hangUp: true }];
    const reasons: string[] = [];
    const [r] = await downloadSplits(opts({ onProgress: (e) => e.type === 'retry' && reasons.push(e.reason) }));
    expect(r!.attempts).toBe(2);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/socket hang up/);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
  });

  it('keeps retrying while attempts add bytes, however many there are', async () => {
    // Every connection stalls after some bytes (the issue: it gave up at 180 of 182 MB).
    faults['train_32x32.mat'] = Array.from({ length: 5 }, () => ({ stallAfter: 40_000 }));
    const [r] = await downloadSplits(opts({ retries: 2, timeoutMs: 200 }));
    expect(r!.status).toBe('downloaded');
    expect(r!.attempts).toBe(6);
    expect(await sameBytes(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat'])).toBe(true);
  });

  it('gives up after the configured retries in a row that add nothing, and keeps what arrived for a later resume', async () => {
    // A stall, not a drop: a socket destroyed right after a write may lose the bytes in flight.
    faults['train_32x32.mat'] = [{ stallAfter: 30_000 }, { status: 503 }, { status: 503 }, { status: 503 }];
    const err = await rejection(downloadSplits(opts({ retries: 2, timeoutMs: 300 })));
    expect(err.code).toBe('NETWORK');
    expect(err.message).toMatch(/giving up after 3 attempts in a row that added no bytes, 4 in all \(/);
    expect(err.suggestion).toContain(`resume from ${join(dataDir, 'train_32x32.mat.part')}`);
    expect(seen).toHaveLength(4);
    expect(await readdir(dataDir)).toEqual(['train_32x32.mat.part']);
    expect((await readFile(join(dataDir, 'train_32x32.mat.part'))).length).toBeGreaterThan(0);
  });

  it('does not promise a resume when nothing arrived (only 503s)', async () => {
    faults['train_32x32.mat'] = [{ status: 503 }, { status: 503 }];
    const err = await rejection(downloadSplits(opts({ retries: 1 })));
    expect(err.message).toMatch(/giving up after 2 attempts/);
    expect(err.suggestion).not.toContain('resume');
    expect(err.suggestion).toMatch(/^run again later, or pass `--base-url URL` for a mirror$/);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('skips a present, verified file without any request', async () => {
    await writeFile(join(dataDir, 'train_32x32.mat'), FILES['train_32x32.mat']!);
    await writeFile(join(dataDir, 'test_32x32.mat'), FILES['test_32x32.mat']!);
    const results = await downloadSplits(opts({ splits: ['train', 'test'] }));
    expect(results.map((r) => [r.status, r.attempts])).toEqual([['skipped', 0], ['skipped', 0]]);
    expect(results[0]!.sha256).toBe(SOURCES.train.sha256);
    expect(seen).toHaveLength(0);
  });

  it('fetches again a present file that does not verify, and with --force one that does', async () => {
    const path = join(dataDir, 'train_32x32.mat');
    const bad = Buffer.from(FILES['train_32x32.mat']!);
    bad[7]! ^= 1;
    await writeFile(path, bad);
    const [r1] = await downloadSplits(opts());
    expect(r1!.status).toBe('downloaded');
    expect(await sameBytes(path, FILES['train_32x32.mat'])).toBe(true);
    const [r2] = await downloadSplits(opts({ force: true }));
    expect(r2!.status).toBe('downloaded');
    expect(seen).toHaveLength(2);
  });

  it('fails at once with a clear message when the host cannot be reached', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const t0 = Date.now();
    const err = await rejection(downloadSplits(opts({ baseUrl: `http://127.0.0.1:${port}`, backoffMs: 1000 })));
    expect(Date.now() - t0).toBeLessThan(900); // no backoff: unreachable is not retried
    expect(err.code).toBe('NETWORK');
    expect(err.message).toContain(`host 127.0.0.1:${port} cannot be reached`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.suggestion).toContain('--base-url URL');
    expect(err.suggestion).toContain('svhn download --synthetic');
    expect(err.exitCode).not.toBe(0);
  });

  it('treats a connect that never completes (here: a DNS lookup that never answers) as unreachable', async () => {
    const lookup = dns.lookup;
    (dns as { lookup: unknown }).lookup = () => undefined; // never calls back; no packet leaves the machine
    try {
      const t0 = Date.now();
      const err = await rejection(downloadSplits(opts({ baseUrl: 'http://svhn-mirror.invalid/h', timeoutMs: 200, backoffMs: 1000 })));
      expect(Date.now() - t0).toBeLessThan(900);
      expect(err.message).toContain('host svhn-mirror.invalid cannot be reached');
      expect(err.message).toContain('no connection within 200 ms');
    } finally {
      (dns as { lookup: unknown }).lookup = lookup;
    }
  });

  it('names a data directory it cannot create in an IO error', async () => {
    const file = join(dataDir, 'not-a-dir');
    await writeFile(file, 'x');
    const err = await rejection(downloadSplits(opts({ dataDir: join(file, 'sub') })));
    expect(err.code).toBe('IO');
    expect(err.message).toContain(join(file, 'sub'));
  });
});
