/**
 * `svhn serve` through the real CLI on loopback (bin/svhn.js runs dist/: build first): the
 * API answers what `svhn predict --format jsonl` writes for the same files, logs one line per
 * request, cuts off slow senders, stays up and flat through a stream of hostile requests, and
 * on SIGTERM finishes the request in flight and exits 0.
 */
import { connect, type Socket } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { svhnAsync } from '../helpers.js';
import { PROTOTYPES, solidRgb, writeBmp } from '../predict/helpers.js';
import { claimedPng, multipart } from './multipart.js';
import { startServe, writeServeModels, type RunningServer } from './helpers.js';

let tmp: string;
let server: RunningServer;
const imageNames: string[] = [];
const BACKEND = ['--backend', 'wasm', '--threads', '1'];

/** Sends raw bytes on a fresh connection; resolves with all it got back when the server closes it (or after ms). */
function rawExchange(host: string, port: number, send: (s: Socket) => Promise<void>, ms: number): Promise<{ text: string; closedByServer: boolean; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, host);
    let text = '';
    let closedByServer = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer, seconds: (performance.now() - started) / 1000 });
    }, ms);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined); // a reset after the server gave up is part of the outcome
    socket.on('close', () => {
      closedByServer = true;
      clearTimeout(timer);
      resolve({ text, closedByServer, seconds: (performance.now() - started) / 1000 });
    });
    socket.on('connect', () => send(socket).catch(reject));
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An HTTP/1.1 response read off a raw socket: its status, headers (lower-case names) and body. */
function parseResponse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

async function postFiles(files: Array<{ name: string; bytes: Buffer }>, query = ''): Promise<{ status: number; body: any }> {
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.bytes]), f.name);
  const res = await fetch(`${server.url}v1/predict${query}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'svhn-serve-api-'));
  await writeServeModels(tmp);
  const dir = join(tmp, 'imgs');
  await mkdir(dir);
  const raw = (d: number, w: number, h: number) => sharp(solidRgb(d, w, h), { raw: { width: w, height: h, channels: 3 } });
  // A real digit-like picture too (a gradient with a bar), so the trained model's answers are not all alike.
  const grad = Buffer.alloc(45 * 30 * 3);
  for (let i = 0; i < 45 * 30; i++) grad.fill((i * 7) % 256, i * 3, i * 3 + 3), (grad[i * 3 + 1] = i % 45 > 20 && i % 45 < 26 ? 0 : 200);
  const files: Record<string, Buffer> = {
    'a.png': await raw(2, 37, 23).png().toBuffer(),
    'b.jpg': await raw(4, 120, 80).jpeg().toBuffer(),
    'c.webp': await raw(3, 20, 30).webp().toBuffer(),
    'd.gif': await raw(7, 33, 33).gif().toBuffer(),
    'e.bmp': writeBmp({ width: 13, height: 21, bpp: 24, pixel: () => [...PROTOTYPES[5]!, 255] as [number, number, number, number] }),
    'f.png': await sharp(grad, { raw: { width: 45, height: 30, channels: 3 } }).png().toBuffer(),
    'g.tiff': await raw(6, 50, 9).tiff().toBuffer(),
    'x_corrupt.png': (await raw(9, 40, 40).png().toBuffer()).subarray(0, 60),
  };
  for (const [name, bytes] of Object.entries(files)) {
    await writeFile(join(dir, name), bytes);
    imageNames.push(name);
  }
  server = await startServe(['--model', 'models/optimized', '--model', 'models/colour', ...BACKEND, '--request-timeout', '1', '--body-limit', '1'], tmp);
});
afterAll(async () => {
  if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
  await rm(tmp, { recursive: true, force: true });
});

describe('svhn serve (CLI)', () => {
  it('prints its URL, on loopback', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.stderr()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('answers exactly what `svhn predict --format jsonl` writes for the same files', async () => {
    const files = await Promise.all(imageNames.map(async (name) => ({ name, bytes: await readFile(join(tmp, 'imgs', name)) })));
    const api = await postFiles(files);
    expect(api.status).toBe(200);
    for (const model of ['optimized', 'colour']) {
      const cli = await svhnAsync(['predict', 'imgs', '--model', `models/${model}`, '--format', 'jsonl', ...BACKEND], { cwd: tmp });
      expect(cli.code, cli.stderr).toBe(3); // x_corrupt.png failed
      const expected = cli.stdout.trim().split('\n').map((line) => ({ ...JSON.parse(line), input: basename(JSON.parse(line).input) }));
      const rows = api.body.models.find((m: any) => m.model === model).rows;
      expect(rows).toEqual(expected);
    }
    const colour = api.body.models[1].rows.map((r: any) => r.predicted);
    expect(colour).toEqual([2, 4, 3, 7, 5, expect.any(Number), 6, null]);
  });

  it('answers with min_confidence exactly what `svhn predict --min-confidence` writes', async () => {
    const files = await Promise.all(imageNames.map(async (name) => ({ name, bytes: await readFile(join(tmp, 'imgs', name)) })));
    const api = await postFiles(files, '?min_confidence=0.9');
    expect(api.status).toBe(200);
    let abstained = 0;
    for (const model of ['optimized', 'colour']) {
      const cli = await svhnAsync(['predict', 'imgs', '--model', `models/${model}`, '--format', 'jsonl', '--min-confidence', '0.9', ...BACKEND], { cwd: tmp });
      expect(cli.code, cli.stderr).toBe(3);
      const expected = cli.stdout.trim().split('\n').map((line) => ({ ...JSON.parse(line), input: basename(JSON.parse(line).input) }));
      const rows = api.body.models.find((m: any) => m.model === model).rows;
      expect(rows).toEqual(expected);
      abstained += rows.filter((r: any) => r.abstained).length;
    }
    expect(abstained).toBeGreaterThan(0); // the synthetic-trained model is unsure of some
  });

  it('logs one line per request with its status and time', async () => {
    await fetch(`${server.url}healthz`);
    // The line is written once the response has gone out, and reaches us through a pipe: wait for it.
    const find = () => server.stderr().trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.url === '/healthz');
    for (let i = 0; i < 100 && !find(); i++) await sleep(20);
    const line = find();
    expect(line).toMatchObject({ method: 'GET', status: 200, msg: expect.stringMatching(/^GET \/healthz 200 [\d.]+ ms$/) });
    expect(typeof line.ms).toBe('number');
  });

  it('cuts off a client that sends too slowly (408), and counts a chunked body against the limit', async () => {
    const { hostname, port } = new URL(server.url);
    const slow = await rawExchange(hostname, Number(port), async (s) => {
      s.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n`);
      for (let i = 0; i < 20 && !s.destroyed; i++) {
        s.write('x'); // a byte every 200 ms: the whole request would take 200 s
        await sleep(200);
      }
    }, 8000);
    expect(slow.closedByServer).toBe(true);
    expect(slow.seconds).toBeLessThan(4); // --request-timeout 1, checked every second
    expect(slow.text).toMatch(/^HTTP\/1\.1 408/);

    const big = multipart([{ filename: 'big.png', data: Buffer.alloc(700_000) }, { filename: 'big2.png', data: Buffer.alloc(700_000) }]);
    const chunked = await rawExchange(hostname, Number(port), async (s) => {
      s.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: ${big.contentType}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (let i = 0; i < big.body.length && !s.destroyed; i += 64 * 1024) {
        const part = big.body.subarray(i, i + 64 * 1024);
        s.write(`${part.length.toString(16)}\r\n`);
        s.write(part);
        s.write('\r\n');
      }
      if (!s.destroyed) s.write('0\r\n\r\n');
    }, 5000);
    expect(chunked.text).toMatch(/^HTTP\/1\.1 413/);
    expect(chunked.text).toContain('over the limit of 1 MiB (--body-limit)');
    expect((await fetch(`${server.url}healthz`)).status).toBe(200);
  });

  it("answers what Node's HTTP parser and timers refuse (400, 431, 408) with the same { error, code } body, and goes on", async () => {
    const { hostname, port } = new URL(server.url);
    const cases: Array<[string, (s: Socket) => Promise<void>, number, string, RegExp]> = [
      ['malformed HTTP', async (s) => void s.write('GARBAGE\r\n\r\n'), 400, 'BAD_HTTP', /^malformed HTTP request: Invalid method encountered$/],
      ['Content-Length with Transfer-Encoding', async (s) => void s.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), 400, 'BAD_HTTP', /^malformed HTTP request: Transfer-Encoding can't be present with Content-Length$/],
      ['headers too large', async (s) => void s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'HEADERS_TOO_LARGE', /^request headers are over the limit of 16 KiB \(Node's --max-http-header-size\)$/],
      ['headers too slow', async (s) => void s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'), 408, 'REQUEST_TIMEOUT', /^request not received whole within 1 s \(--request-timeout\)$/],
      ['body too slow', async (s) => void s.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nxx'), 408, 'REQUEST_TIMEOUT', /^request not received whole within 1 s \(--request-timeout\)$/],
    ];
    for (const [what, send, status, code, message] of cases) {
      const exchange = await rawExchange(hostname, Number(port), send, 6000);
      expect(exchange.closedByServer, what).toBe(true);
      const res = parseResponse(exchange.text);
      expect(res.status, what).toBe(status);
      expect(res.headers['content-type'], what).toMatch(/^application\/json/);
      expect(Number(res.headers['content-length']), what).toBe(Buffer.byteLength(res.body));
      expect(JSON.parse(res.body), what).toEqual({ error: expect.stringMatching(message), code });
      expect((await fetch(`${server.url}healthz`)).status, `a good request after: ${what}`).toBe(200);
    }
  });

  it('stays up and flat through hundreds of hostile requests', async () => {
    const health = async () => (await (await fetch(`${server.url}healthz`)).json()) as { tensors: number; rssBytes: number };
    const good = await sharp(solidRgb(3, 32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    const bomb = claimedPng(60_000, 60_000);
    const hostile = [
      () => postFiles([{ name: 'junk.png', bytes: Buffer.from('junk') }]),
      () => postFiles([{ name: 'bomb.png', bytes: bomb }]),
      () => fetch(`${server.url}v1/predict`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      () => fetch(`${server.url}v1/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.alloc(2 * 1024 * 1024) }).catch(() => undefined),
      () => fetch(`${server.url}assets/..%2f..%2fpackage.json`),
      () => fetch(`${server.url}v1/predict`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=aaa' }, body: '--aaa\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nno closing boundary' }),
      () => fetch(`${server.url}v1/predict`, { method: 'POST' }), // no body at all
      () => postFiles([{ name: 'ok.png', bytes: good }]),
    ];
    for (let i = 0; i < 60; i++) await Promise.all(hostile.map((f) => f())); // warm: allocators and caches settle
    const before = await health();
    for (let i = 0; i < 120; i++) await Promise.all(hostile.map((f) => f()));
    const after = await health();
    expect(after.tensors).toBe(before.tensors);
    expect(after.rssBytes - before.rssBytes).toBeLessThan(64 * 1024 * 1024); // 960 requests; a per-request leak of 100 KB would show
    const ok = await postFiles([{ name: 'ok.png', bytes: good }], '?model=colour');
    expect(ok.body.models[0].rows[0].predicted).toBe(3);
  }, 180_000);

  it('rejects bad flags and a missing model in one line', async () => {
    const port = await svhnAsync(['serve', '--model', 'models/colour', '--port', '70000'], { cwd: tmp });
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port.*expected a port 0\.\.65535/);
    const missing = await svhnAsync(['serve', '--model', 'models/none', '--port', '0'], { cwd: tmp });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^svhn: error: --model models\/none: no such model directory/);
    const noModel = await svhnAsync(['serve', '--port', '0'], { cwd: tmp });
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/--model <dir>' not specified/);
  });

  it('refuses a port in use and a host that is not this machine in one line naming the flag', async () => {
    const { port } = new URL(server.url);
    const inUse = await svhnAsync(['serve', '--model', 'models/colour', '--port', port, ...BACKEND], { cwd: tmp });
    expect(inUse.code).toBe(2);
    const lastLine = (stderr: string) => stderr.trim().split('\n').at(-1);
    expect(lastLine(inUse.stderr)).toBe(`svhn: error: --port ${port}: already in use on 127.0.0.1; stop the other server, or pick another --port (0: any free port)`);
    expect(inUse.stderr).not.toMatch(/\n\s+at /); // no stack
    // TEST-NET-1 (RFC 5737): never an address of this machine; binding fails here, nothing is sent.
    const notHere = await svhnAsync(['serve', '--model', 'models/colour', '--port', '0', '--host', '192.0.2.1', ...BACKEND], { cwd: tmp });
    expect(notHere.code).toBe(2);
    expect(lastLine(notHere.stderr)).toBe('svhn: error: --host 192.0.2.1: not an address of this machine; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)');
    expect((await fetch(`${server.url}healthz`)).status).toBe(200);
  });

  it('warns in one line on stderr when --host opens the models to the network, and none on loopback', async () => {
    expect(server.stderr()).not.toMatch(/open to the network/);
    // Listens on every interface for a moment; the test talks to it on loopback only.
    const open = await startServe(['--model', 'models/colour', '--host', '0.0.0.0', ...BACKEND], tmp);
    try {
      const warnings = open.stderr().trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.level === 40);
      expect(warnings.map((l) => l.msg)).toEqual(['--host 0.0.0.0: listening on 0.0.0.0, not only loopback: the page, the API and the models are open to the network']);
      expect((await fetch(`http://127.0.0.1:${new URL(open.url).port}/healthz`)).status).toBe(200);
    } finally {
      expect(await open.stop()).toBe(0);
    }
  });

  it('on SIGTERM finishes the request in flight, then exits 0', async () => {
    const { hostname, port } = new URL(server.url);
    const image = await sharp(solidRgb(4, 32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    const exchange = rawExchange(hostname, Number(port), async (s) => {
      s.write(`POST /v1/predict?model=colour HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${image.length}\r\nConnection: close\r\n\r\n`);
      s.write(image.subarray(0, 10));
      await sleep(200);
      server.child.kill('SIGTERM'); // mid-request
      await sleep(300);
      s.write(image.subarray(10));
    }, 10_000);
    const { text } = await exchange;
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain('"predicted":4');
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: finishing the requests in flight/);
    expect(server.stderr()).toMatch(/stopped after \d+ requests/);
  });
});
