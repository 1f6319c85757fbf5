/**
 * Byte sources for the MAT reader: a file range read as-is, or a file range inflated with
 * zlib, both as async iterables of Buffers, plus a reader that takes exact byte counts from
 * such a source (copying only when a request spans chunks) or streams them as views.
 *
 * Lifetimes: every source owns one read stream (and one inflate stream); they are destroyed
 * when the iteration ends for any reason (done, error, or the consumer stopping early). The
 * FileHandle stays with the caller, which closes it after the reader is closed.
 */
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createInflate, type ZlibOptions } from 'node:zlib';

/** Read and inflate in 1 MiB pieces: few promise hops per MB, small enough to stay cache-warm. */
const PIECE_BYTES = 1 << 20;
/** How many pieces inflate (on libuv's thread pool) may run ahead of the JS that consumes it. */
const PIECES_AHEAD = 4;

/** `piece`: bytes per read and per inflated chunk; small when only a header is wanted. */
export interface RangeOptions {
  piece?: number;
}

const EMPTY = Buffer.alloc(0);

/** Thrown by a source when the bytes themselves are bad (zlib stream damaged or cut short). */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly kind: 'corrupt' | 'short',
  ) {
    super(message);
  }
}

/**
 * Bytes [start, start + length) of the open file, as they are, in fresh buffers. Plain
 * positioned reads: streams made from a FileHandle close it when they end, and the handle
 * has to outlive each variable's stream.
 */
export async function* fileRange(fh: FileHandle, start: number, length: number, opts: RangeOptions = {}): AsyncGenerator<Buffer> {
  const end = start + length;
  const piece = opts.piece ?? PIECE_BYTES;
  for (let pos = start; pos < end; ) {
    const n = Math.min(piece, end - pos);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, pos);
    if (bytesRead === 0) return; // the file shrank: the consumer reports the shortfall
    pos += bytesRead;
    yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
  }
}

/**
 * Bytes [start, start + length) of the open file inflated as one zlib stream. A damaged
 * stream, or one that ends before its end marker, rejects with SourceError (never hangs):
 * the read side's errors are forwarded into the inflate stream, which the loop awaits.
 */
export async function* inflateRange(fh: FileHandle, start: number, length: number, opts: RangeOptions = {}): AsyncGenerator<Buffer> {
  if (length <= 0) throw new SourceError('an empty compressed element', 'short');
  const piece = opts.piece ?? PIECE_BYTES;
  // Two pieces of read-ahead, so the disk and inflate (libuv's thread pool) overlap the JS.
  const raw = Readable.from(fileRange(fh, start, length, { piece }), { objectMode: true, highWaterMark: 2 });
  // The readable side buffers up to PIECES_AHEAD pieces before inflate pauses (backpressure).
  const inflate = createInflate({ chunkSize: piece, readableHighWaterMark: PIECES_AHEAD * piece } as ZlibOptions);
  raw.on('error', (e) => inflate.destroy(e));
  raw.pipe(inflate);
  try {
    for await (const chunk of inflate) yield chunk as Buffer;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const msg = (e as Error).message ?? String(e);
    if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(msg)) throw new SourceError('a compressed stream that ends early', 'short');
    if (code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED') throw new SourceError(`corrupt compressed data (${msg})`, 'corrupt');
    throw e;
  } finally {
    raw.unpipe(inflate);
    raw.destroy();
    inflate.destroy();
  }
}

/**
 * Sequential reader over a byte source. `read` returns exactly n bytes (a view into the
 * source chunk when it fits, else a copy) or throws `onShort`; `take` yields views that add up
 * to n bytes without copying, for the big image data.
 */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private cur: Buffer = EMPTY;
  private pos = 0;
  private ended = false;
  /** Bytes handed out so far (read, take or skip). */
  consumed = 0;

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly onShort: (wanted: number, got: number) => Error,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Makes cur[pos] valid; false at the end of the source. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        this.cur = EMPTY;
        this.pos = 0;
        return false;
      }
      this.cur = r.value;
      this.pos = 0;
    }
    return true;
  }

  async read(n: number): Promise<Buffer> {
    if (this.cur.length - this.pos >= n) {
      const view = this.cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.consumed += n;
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) throw this.onShort(n, got);
      const k = Math.min(n - got, this.cur.length - this.pos);
      this.cur.copy(out, got, this.pos, this.pos + k);
      this.pos += k;
      got += k;
      this.consumed += k;
    }
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw this.onShort(n, n - left);
      const k = Math.min(left, this.cur.length - this.pos);
      this.pos += k;
      left -= k;
      this.consumed += k;
    }
  }

  /** Yields views (valid until the next call) that add up to exactly n bytes. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw this.onShort(n, n - left);
      const k = Math.min(left, this.cur.length - this.pos);
      const view = this.cur.subarray(this.pos, this.pos + k);
      this.pos += k;
      left -= k;
      this.consumed += k;
      yield view;
    }
  }

  /** Reads to the end of the source, so that zlib checks its checksum and end marker. */
  async drain(): Promise<void> {
    this.pos = this.cur.length;
    while (await this.fill()) this.pos = this.cur.length;
  }

  /** Stops the source early (destroys its streams); safe to call twice. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.it.return?.();
  }
}
