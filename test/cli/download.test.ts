/**
 * `svhn download` through the real CLI (node bin/svhn.js, which runs dist/: `npm test` builds
 * it first). The CLI verifies against SVHN's real table, so served bytes can never verify
 * here: transfer faults are covered by test/data/sources/download.test.ts; this checks the command's
 * flags, its one-line errors and exit codes against a loopback server. No internet.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { svhnAsync } from '../helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** Async (not spawnSync): the loopback server lives in this process and must keep answering. */
const svhn = (args: string[], cwd: string) => svhnAsync(args, { cwd });

let tmp: string;
let server: http.Server;
let port: number;
let requests: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-cli-dl-'));
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

describe('svhn download', () => {
  it('lists every flag with its default in --help', async () => {
    const r = await svhn(['download', '--help'], tmp);
    expect(r.code).toBe(0);
    for (const flag of ['--split', '--data-dir', '--base-url', '--force', '--synthetic', '--size', '--seed', '--json']) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('(default: train,test)');
    expect(r.stdout).toContain('(default: "data")');
    expect(r.stdout).toContain('http://ufldl.stanford.edu/housenumbers');
    expect(r.stdout).toContain('(default: "full")');
  });

  it('an unreachable host: one clear line naming --base-url and --synthetic, non-zero exit, nothing written', async () => {
    const dataDir = join(tmp, 'unreachable');
    const p = await closedPort();
    const r = await svhn(['download', '--base-url', `http://127.0.0.1:${p}`, '--data-dir', dataDir, '--json'], tmp);
    expect(r.code).toBe(1);
    const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('svhn: error:'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(`host 127.0.0.1:${p} cannot be reached`);
    expect(errorLines[0]).toContain('--base-url URL');
    expect(errorLines[0]).toContain('svhn download --synthetic');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    expect(r.stdout).toBe(''); // no summary for a failed run
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('a 404 from the mirror fails without retrying', async () => {
    requests = [];
    const dataDir = join(tmp, 'notfound');
    const r = await svhn(['download', '--base-url', `http://127.0.0.1:${port}/m`, '--data-dir', dataDir, '--split', 'test'], tmp);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/svhn: error: .*\/m\/test_32x32\.mat: HTTP 404/);
    expect(requests).toEqual(['/m/test_32x32.mat']);
    expect(await readdir(dataDir)).toEqual([]);
  });

  // The offline sample belongs to src/data/synthetic/synthetic.ts; here only the dispatch and the summary.
  it.skipIf(!existsSync(join(ROOT, 'dist/data/synthetic/synthetic.js')))('--synthetic writes the marked offline sample without touching the network', async () => {
    requests = [];
    const dataDir = join(tmp, 'synthetic');
    const args = ['download', '--synthetic', '--size', 'small', '--split', 'test', '--seed', '7', '--data-dir', dataDir, '--base-url', `http://127.0.0.1:${port}`, '--json'];
    const r = await svhn(args, tmp);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { synthetic: boolean; seed: number; note: string; files: { split: string; path: string; bytes: number; sha256: string }[] };
    expect(summary.synthetic).toBe(true);
    expect(summary.note).toContain('NOT real SVHN');
    expect(summary.seed).toBe(7);
    expect(summary.files.map((f) => f.split)).toEqual(['test']);
    expect((await stat(summary.files[0]!.path)).size).toBe(summary.files[0]!.bytes);
    expect((await readdir(dataDir)).sort()).toEqual(['SYNTHETIC.json', 'test_32x32.mat']);
    expect(r.stderr).toContain('NOT real SVHN');
    expect(requests).toEqual([]);
  });

  it.each([
    [['--split', 'foo'], /--split.*got 'foo'/],
    [['--split', 'train,val'], /--split.*got 'val'/],
    [['--base-url', 'ftp://example.org/svhn'], /--base-url.*http:\/\/ or https:\/\/ URL/],
    [['--size', 'huge', '--synthetic'], /--size.*small, full.*got 'huge'/],
    [['--seed', '-3', '--synthetic'], /--seed.*non-negative integer/],
    [['--size', 'full'], /--size only applies with --synthetic/],
  ])('rejects bad flags %j with exit 2 before any network use', async (args, message) => {
    const r = await svhn(['download', '--base-url', `http://127.0.0.1:${port}`, '--data-dir', join(tmp, 'bad'), ...args], tmp);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(tmp, 'bad'))).toBe(false);
  });
});
