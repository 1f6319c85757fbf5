/**
 * The download stage: fetches SVHN's files (the cropped .mat files, or the format-1 archives:
 * downloadFull.ts) over HTTP(S) with node:http/https only.
 *
 * Per file, against a SourceTable (sources.ts):
 *   - present under its final name with the right size, sha256 and md5 -> skipped (no request);
 *   - otherwise bytes stream to `<file>.part`; a partial .part resumes with `Range: bytes=N-`
 *     (206 appends; a 200 that ignores the Range restarts from byte 0);
 *   - the .part is renamed into place only after size, sha256 (where the table has one) and md5 verify; a mismatch
 *     deletes it and says expected vs got;
 *   - transient failures (reset, hang-up, idle timeout, 5xx) retry with exponential backoff and
 *     resume from what arrived; 404 and checksum mismatches do not retry;
 *   - an unreachable host (DNS failure, refused, connect timeout) fails at once with one line
 *     that names the way out (--base-url, --synthetic).
 * Never reads argv, never prints to stdout; progress goes out through onProgress.
 */
import http from 'node:http';
import https from 'node:https';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULTS, type SourceSplit } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { getLogger } from '../../log.js';
import { createProgress, formatBytes, type Progress } from '../../progress.js';
import { fileSize, hashFile } from '../../util/atomic.js';
import { openRegularFile } from '../../util/files.js';
import { SVHN_SOURCES, checksOf, sourceUrl, type SourceFile, type SourceTable } from './sources.js';
import { makeDirs } from '../../util/mkdirs.js';

export interface DownloadOptions {
  dataDir: string;
  baseUrl: string; // files are fetched from `<baseUrl>/<file>`
  splits: SourceSplit[];
  force?: boolean; // fetch again even when a verified file is present (and drop any .part)
  sources?: SourceTable; // default SVHN_SOURCES; a mirror or a test supplies its own
  retries?: number; // retries in a row that add no bytes, per file, for transient failures (an attempt that adds bytes resets the count)
  backoffMs?: number; // first retry delay; doubles on each further retry
  timeoutMs?: number; // socket idle timeout (also bounds the connect)
  onProgress?: (event: DownloadEvent) => void;
}

export type DownloadEvent =
  | { type: 'skip'; split: SourceSplit; file: string; size: number }
  | { type: 'start'; split: SourceSplit; file: string; url: string; size: number; offset: number }
  | { type: 'bytes'; split: SourceSplit; file: string; done: number; total: number } // done: bytes in the .part
  | { type: 'retry'; split: SourceSplit; file: string; attempt: number; delayMs: number; reason: string }
  | { type: 'verify'; split: SourceSplit; file: string; size: number; checks: string } // checks: 'size, sha256 and md5' (checksOf)
  | { type: 'done'; split: SourceSplit; file: string; size: number; path: string };

export interface DownloadResult {
  split: SourceSplit;
  file: string;
  path: string; // final path under dataDir
  url: string;
  size: number; // bytes
  sha256: string;
  md5: string;
  status: 'skipped' | 'downloaded';
  resumedFrom: number; // bytes of an earlier .part reused (0 when none)
  fetchedBytes: number; // bytes received over the network by this call
  attempts: number; // transfer attempts (0 when skipped)
  seconds: number;
  synthetic: false;
}

const MAX_REDIRECTS = 5;
const UNREACHABLE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECT_TIMEOUT']);
const TRANSIENT = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ESHORT_BODY']);

/** A failed transfer attempt, classified so the retry loop knows what to do with it. */
class TransferFailure extends Error {
  constructor(
    readonly kind: 'transient' | 'unreachable' | 'fatal',
    message: string,
    readonly restart = false, // the .part cannot be resumed: delete it before the next attempt
  ) {
    super(message);
  }
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function classify(e: unknown): TransferFailure | SvhnError {
  if (e instanceof TransferFailure || e instanceof SvhnError) return e;
  const code = errnoCode(e) ?? '';
  const msg = (e as Error)?.message ?? String(e);
  const text = msg === 'aborted' ? 'the connection dropped mid-transfer' : msg;
  const reason = code && !text.includes(code) ? `${text} (${code})` : text;
  if (UNREACHABLE.has(code)) return new TransferFailure('unreachable', reason);
  if (TRANSIENT.has(code) || code.startsWith('HPE_') || /socket hang up|aborted/i.test(msg)) {
    return new TransferFailure('transient', reason);
  }
  return new TransferFailure('fatal', reason);
}

/** Node network error with our own code (connect timeout, idle timeout, short body). */
function netError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

interface Response {
  res: http.IncomingMessage;
  url: URL;
}

/** One GET, following redirects; resolves with the response of the final hop. */
async function get(url: URL, headers: Record<string, string>, timeoutMs: number, onConnect: () => void): Promise<Response> {
  for (let hop = 0; ; hop++) {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
      if (!mod) {
        reject(new TransferFailure('fatal', `unsupported protocol ${url.protocol} in ${url.href}`));
        return;
      }
      // agent: false -> one fresh connection per request, nothing kept alive after we finish.
      const req = mod.get(url, { headers, agent: false }, resolve);
      // Node's request timeout only starts once the socket connects, so the connect (DNS
      // lookup included) gets its own timer: past it the host counts as unreachable.
      const connectTimer = setTimeout(() => {
        req.destroy(netError('ECONNECT_TIMEOUT', `no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('socket', (socket) => {
        const mark = () => {
          clearTimeout(connectTimer);
          onConnect();
        };
        if (socket.connecting) socket.once('connect', mark);
        else mark();
      });
      // Idle timeout once connected: a stalled transfer (transient). It stays armed while the body streams.
      req.setTimeout(timeoutMs, () => req.destroy(netError('ETIMEDOUT', `no data for ${timeoutMs} ms`)));
      req.on('error', (e) => {
        clearTimeout(connectTimer);
        reject(e);
      });
    });
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new TransferFailure('fatal', `more than ${MAX_REDIRECTS} redirects from ${url.href}`);
      url = new URL(location, url);
      continue;
    }
    return { res, url };
  }
}

interface Job {
  names: string; // every file of the table, for a 404's hint
  split: SourceSplit;
  source: SourceFile;
  url: string;
  path: string;
  part: string;
}

/** Content-Range: bytes START-END/TOTAL -> { start, total }. */
function parseContentRange(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/**
 * One transfer attempt: resumes the .part from `offset` and streams the body into it.
 * Resolves with the bytes received when the body arrived whole; throws otherwise.
 */
async function fetchInto(
  job: Job,
  offset: number,
  timeoutMs: number,
  onConnect: () => void,
  onBytes: (done: number) => void,
): Promise<number> {
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'svhn-cli' };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  const { res, url } = await get(new URL(job.url), headers, timeoutMs, onConnect);
  const status = res.statusCode ?? 0;
  const expected = job.source.size;
  const sizeMismatch = (got: number) =>
    new SvhnError('CHECKSUM', `${url.href}: the server has ${got} bytes, expected ${expected} for ${job.source.file}`, {
      suggestion: 'check that --base-url points at the SVHN files (or pass your own sources table)',
    });

  let start: number;
  if (status === 206) {
    const range = parseContentRange(res.headers['content-range']);
    if (range?.total !== undefined && range.total !== expected) {
      res.resume();
      throw sizeMismatch(range.total);
    }
    if (!range || range.start !== offset) {
      res.resume();
      throw new TransferFailure('transient', `unusable Content-Range '${res.headers['content-range'] ?? ''}' for a resume at byte ${offset}`, true);
    }
    start = offset;
  } else if (status === 200) {
    const length = Number(res.headers['content-length'] ?? NaN);
    if (Number.isFinite(length) && length !== expected) {
      res.resume();
      throw sizeMismatch(length);
    }
    if (offset > 0) getLogger().info(`${job.source.file}: the server ignored the Range request; starting again from byte 0`);
    start = 0;
  } else {
    res.resume();
    const what = `${url.href}: HTTP ${status} ${res.statusMessage ?? ''}`.trim();
    if (status === 416) throw new TransferFailure('transient', `${what} for a resume at byte ${offset}`, true);
    if (status >= 500 || status === 408 || status === 429) throw new TransferFailure('transient', what);
    if (status === 404 || status === 410) {
      throw new SvhnError('NETWORK', `${what}: no ${job.source.file} there`, {
        suggestion: `check --base-url (it should hold ${job.names})`,
      });
    }
    throw new SvhnError('NETWORK', what, { suggestion: 'check --base-url' });
  }

  const received = await writeBody(res, job.part, start > 0 ? 'a' : 'w', (n) => onBytes(start + n));
  const bodyLength = Number(res.headers['content-length'] ?? NaN);
  if (Number.isFinite(bodyLength) && received < bodyLength) {
    throw netError('ESHORT_BODY', `connection closed after ${received} of ${bodyLength} bytes`);
  }
  return received;
}

/** Chunks waiting for the disk before the response is paused (backpressure). */
const MAX_QUEUED_CHUNKS = 16;

/**
 * Streams a response body into `part` and resolves with the bytes written once it ended;
 * rejects when the connection drops, after writing every byte that arrived before the drop
 * (so the next attempt resumes from there). The body is listened to at once, while the file
 * opens: a short body and its connection's reset can both arrive before the open is done,
 * and a stream destroyed by the reset drops what it buffered (Node 24 does so before a
 * for-await loop sees the first chunk).
 */
async function writeBody(res: http.IncomingMessage, part: string, mode: 'w' | 'a', onWritten: (received: number) => void): Promise<number> {
  const opened = openRegularFile(part, mode).catch((e: unknown) => {
    res.destroy();
    throw ioError(part, 'open', e); // a FIFO there would block the open for good: refused
  });
  let received = 0;
  let queued = 0;
  let failure: unknown;
  let writes: Promise<unknown> = opened;
  const ended = new Promise<void>((resolve, reject) => {
    let done = false;
    res.on('data', (chunk: Buffer) => {
      if (++queued >= MAX_QUEUED_CHUNKS) res.pause();
      writes = writes.then(async () => {
        if (failure === undefined) {
          try {
            await (await opened).write(chunk);
            received += chunk.length;
            onWritten(received);
          } catch (e) {
            failure ??= e instanceof SvhnError ? e : ioError(part, 'write', e);
            res.destroy();
          }
        }
        if (--queued < MAX_QUEUED_CHUNKS / 2 && res.isPaused()) res.resume();
      });
    });
    res.on('end', () => {
      done = true;
      resolve();
    });
    res.on('error', reject);
    res.on('close', () => {
      if (!done) reject(netError('ECONNRESET', 'the connection closed before the body ended'));
    });
  });
  const outcome = await ended.then(() => undefined, (e: unknown) => e);
  await writes.catch(() => undefined); // every chunk that arrived is on disk (or failed) before the verdict
  let openFailure: unknown;
  const fh = await opened.catch((e: unknown) => void (openFailure = e));
  try {
    if (openFailure !== undefined) throw openFailure;
    if (failure !== undefined) throw failure;
    if (outcome !== undefined) throw outcome;
    await fh!.sync();
  } finally {
    await fh?.close().catch(() => undefined);
  }
  return received;
}

async function removePart(part: string): Promise<void> {
  await rm(part, { force: true }).catch(() => undefined);
}

/**
 * Size, sha256 and md5 of `path` against the table; the first mismatch, if any, as text. A
 * source without a sha256 (none published: the format-1 archives) is checked on size and md5.
 */
async function verify(path: string, source: SourceFile): Promise<{ problem?: string; sha256: string; md5: string }> {
  const size = (await fileSize(path)) ?? 0;
  if (size !== source.size) return { problem: `size expected ${source.size} bytes, got ${size}`, sha256: '', md5: '' };
  const { sha256, md5 } = (await hashFile(path, ['sha256', 'md5'])) as { sha256: string; md5: string };
  if (source.sha256 !== undefined && sha256 !== source.sha256.toLowerCase()) return { problem: `sha256 expected ${source.sha256}, got ${sha256}`, sha256, md5 };
  if (md5 !== source.md5.toLowerCase()) return { problem: `md5 expected ${source.md5}, got ${md5}`, sha256, md5 };
  return { sha256, md5 };
}

/** Downloads the requested splits one after another; throws SvhnError on the first that cannot be had. */
export async function downloadSplits(opts: DownloadOptions): Promise<DownloadResult[]> {
  const sources = opts.sources ?? SVHN_SOURCES;
  const retries = opts.retries ?? DEFAULTS.download.retries;
  const backoffMs = opts.backoffMs ?? DEFAULTS.download.backoffMs;
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.download.timeoutMs;
  const emit = opts.onProgress ?? (() => undefined);
  const log = getLogger();
  try {
    await makeDirs(opts.dataDir);
  } catch (e) {
    throw ioError(opts.dataDir, 'create', e);
  }
  // Once the host has answered, a refused connection is a hiccup worth retrying; before
  // that it means the host cannot be reached and retrying only delays the bad news.
  let reachedHost = false;
  const onConnect = () => {
    reachedHost = true;
  };

  const results: DownloadResult[] = [];
  for (const split of opts.splits) {
    const source = sources[split];
    if (!source) throw new SvhnError('BAD_INPUT', `no source for split '${split}' in the sources table`);
    const t0 = performance.now();
    const path = join(opts.dataDir, source.file);
    const names = Object.values(sources).map((s) => s.file).join(', ');
    const job: Job = { names, split, source, url: sourceUrl(opts.baseUrl, source), path, part: `${path}.part` };

    if (!opts.force && (await fileSize(path)) !== undefined) {
      emit({ type: 'verify', split, file: source.file, size: source.size, checks: checksOf(source) });
      const present = await verify(path, source);
      if (!present.problem) {
        emit({ type: 'skip', split, file: source.file, size: source.size });
        results.push({
          split, file: source.file, path, url: job.url, size: source.size, sha256: present.sha256, md5: present.md5,
          status: 'skipped', resumedFrom: 0, fetchedBytes: 0, attempts: 0, seconds: (performance.now() - t0) / 1000, synthetic: false,
        });
        continue;
      }
      // Kept until a verified copy replaces it (rename over it), so a failed run loses nothing.
      log.warn(`${path} is present but does not verify (${present.problem}); downloading it again`);
    }
    if (opts.force) await removePart(job.part);

    let resumedFrom = (await fileSize(job.part)) ?? 0;
    if (resumedFrom > source.size) {
      await removePart(job.part);
      resumedFrom = 0;
    }
    emit({ type: 'start', split, file: source.file, url: job.url, size: source.size, offset: resumedFrom });

    let attempts = 0;
    // Failed attempts in a row that added no bytes: only these count against `retries`, so a
    // link that drops every 30 MB still finishes, and one that delivers nothing gives up.
    let stalled = 0;
    let fetchedBytes = 0;
    for (;;) {
      const offset = (await fileSize(job.part)) ?? 0;
      if (offset === source.size) break; // complete (a finished .part from an interrupted run): verify it
      attempts++;
      try {
        fetchedBytes += await fetchInto(job, offset, timeoutMs, onConnect, (done) => {
          emit({ type: 'bytes', split, file: source.file, done, total: source.size });
        });
        break;
      } catch (e) {
        const added = Math.max(0, ((await fileSize(job.part)) ?? 0) - offset);
        fetchedBytes += added;
        const failure = classify(e);
        if (failure instanceof SvhnError) {
          if (failure.code === 'CHECKSUM') await removePart(job.part);
          throw failure;
        }
        if (failure.kind === 'unreachable' && !reachedHost) {
          const host = new URL(job.url).host;
          throw new SvhnError('NETWORK', `host ${host} cannot be reached (${failure.message}) to fetch ${source.file}`, {
            suggestion: 'pass `--base-url URL` for a mirror, or run `svhn download --synthetic` for the offline sample',
            cause: e,
          });
        }
        if (failure.kind === 'fatal') {
          throw new SvhnError('NETWORK', `${job.url}: ${failure.message}`, { suggestion: 'check --base-url', cause: e });
        }
        stalled = added > 0 && !failure.restart ? 0 : stalled + 1;
        if (stalled > retries) {
          const kept = ((await fileSize(job.part)) ?? 0) > 0; // promise a resume only when some bytes arrived
          const inAll = attempts > stalled ? `, ${attempts} in all` : '';
          throw new SvhnError('NETWORK', `${source.file}: giving up after ${stalled} attempts in a row that added no bytes${inAll} (${failure.message})`, {
            suggestion: `${kept ? `run again to resume from ${job.part}` : 'run again later'}, or pass \`--base-url URL\` for a mirror`,
            cause: e,
          });
        }
        if (failure.restart) await removePart(job.part);
        const delayMs = backoffMs * 2 ** Math.max(0, stalled - 1);
        log.warn(`${source.file}: ${failure.message}; ${added > 0 ? `${formatBytes(added)} arrived, resuming` : `retry ${stalled}/${retries}`} in ${delayMs} ms`);
        emit({ type: 'retry', split, file: source.file, attempt: attempts, delayMs, reason: failure.message });
        await sleep(delayMs);
      }
    }

    emit({ type: 'verify', split, file: source.file, size: source.size, checks: checksOf(source) });
    const got = await verify(job.part, source);
    if (got.problem) {
      await removePart(job.part);
      throw new SvhnError('CHECKSUM', `${source.file} from ${job.url}: ${got.problem}; deleted the download (${job.part})`, {
        suggestion: 'run `svhn download` again; if it repeats, the server at --base-url serves a different file',
      });
    }
    try {
      await rename(job.part, path);
    } catch (e) {
      throw ioError(path, 'move into place', e);
    }
    emit({ type: 'done', split, file: source.file, size: source.size, path });
    results.push({
      split, file: source.file, path, url: job.url, size: source.size, sha256: got.sha256, md5: got.md5,
      status: 'downloaded', resumedFrom, fetchedBytes, attempts, seconds: (performance.now() - t0) / 1000, synthetic: false,
    });
  }
  return results;
}

/**
 * Turns download events into progress output on stderr: a bar per file on a TTY (bytes,
 * rate, ETA), plain periodic lines otherwise, and one log line per skip / verify / done.
 * `close()` ends a bar still live after a failure, where it stands (call it in a finally, so a
 * failed run neither claims 100% nor leaves the terminal's cursor hidden).
 */
export function createDownloadReporter(mode?: 'bar' | 'plain' | 'silent'): { onProgress: (e: DownloadEvent) => void; close: () => void } {
  const log = getLogger();
  let bar: Progress | undefined;
  let base = 0; // bytes already on disk when the bar started: the rate counts only new bytes
  let total = 0;
  const stop = () => {
    bar?.stop(); // the transfer is complete
    bar = undefined;
  };
  const close = () => {
    bar?.abort?.();
    bar = undefined;
  };
  const onProgress = (e: DownloadEvent) => {
    switch (e.type) {
      case 'skip':
        log.info(`${e.file}: present and verified (${formatBytes(e.size)}), skipped`);
        break;
      case 'start':
        log.info(e.offset > 0 ? `${e.file}: resuming at ${formatBytes(e.offset)} from ${e.url}` : `${e.file}: downloading ${e.url}`);
        base = e.offset;
        total = e.size - e.offset;
        bar = createProgress({ label: e.file, total, unit: 'B', format: formatBytes, mode });
        break;
      case 'bytes':
        // After a restart from byte 0 `done` can fall below `base`: clamp, it is display only.
        bar?.update(Math.max(0, Math.min(total, e.done - base)));
        break;
      case 'verify':
        stop();
        log.info(`${e.file}: verifying ${e.checks}`);
        break;
      case 'done':
        log.info(`${e.file}: verified, saved as ${e.path}`);
        break;
      case 'retry':
        break; // the stage logs retries itself
    }
  };
  return { onProgress, close };
}
