/**
 * A streaming MATLAB Level 5 writer for SVHN-layout files, as the originals are laid out:
 *
 *   128-byte header | miCOMPRESSED( miMATRIX X uint8 (32, 32, 3, N) ) | miCOMPRESSED( miMATRIX y uint8 (N, 1) )
 *
 * X is column-major, so image n is one contiguous 3,072-byte block ordered (c, w, h) with
 * h fastest; labels are stored 1..10 with 10 meaning digit 0. Images arrive in NHWC chunks
 * and go through one zlib deflate stream, so the 1.63 GB of `--size full` extra never sits in
 * memory whole. An element's tag holds its byte length before its bytes, so X's tag is
 * written as a placeholder and patched with the final compressed length at the end. The
 * file is built under a temporary name and renamed into place only when complete.
 */
import { once } from 'node:events';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createDeflate, deflateSync, constants as zlibConstants } from 'node:zlib';
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from '../../config.js';
import { SvhnError, ioError } from '../../errors.js';
import { hashFile, removeStaleTemps, tempSibling } from '../../util/atomic.js';

import { MAT_HEADER_BYTES, MAT_HEADER_TEXT_BYTES, MI_COMPRESSED, MI_INT32, MI_INT8, MI_MATRIX, MI_UINT32, MI_UINT8, MX_UINT8_CLASS } from './matFormat.js';
import { makeDirs } from '../../util/mkdirs.js';
export { MI_COMPRESSED, MI_MATRIX, MX_UINT8_CLASS };

/** Header text when the caller gives none; 'SYNTHETIC' is added by the offline sample. */
export const DEFAULT_MAT_HEADER = 'MATLAB 5.0 MAT-file, written by svhn';

/** The raw bytes of X may run this far ahead of deflate before the producer waits. */
const MAX_PENDING_BYTES = 32 << 20;
/**
 * Images handed to deflate per write, and deflate's output buffer. Node's zlib continues a
 * stream only from a main-thread callback, once per input write or full output buffer; with
 * large pieces each thread-pool job runs ~0.2 s, so a producer busy on the main thread for a
 * few ms at a time barely stalls it and drawing and deflate overlap on two cores.
 */
const STAGE_IMAGES = 2048; // 6.3 MB raw
const DEFLATE_CHUNK = 8 << 20; // holds one stage's compressed output (noisy images barely shrink)

export interface SvhnChunk {
  images: Uint8Array; // NHWC uint8, k * 32 * 32 * 3 bytes
  labels: Uint8Array; // k digits 0..9 (written as 1..10, 10 for 0, as SVHN does)
}

export interface WriteSvhnMatOptions {
  count: number; // N, the total number of images the chunks will deliver
  chunks: AsyncIterable<SvhnChunk> | Iterable<SvhnChunk>;
  header?: string; // header text (at most 116 bytes of ASCII; longer is cut)
  level?: number; // zlib level 0..9; default zlib's own (6)
  onProgress?: (done: number, total: number) => void; // images written so far
}

export interface WriteSvhnMatResult {
  bytes: number;
  sha256: string;
}

/** The 128-byte header: text padded with spaces, zero subsystem offset, version 0x0100, 'IM' (little-endian). */
export function matHeader(text: string): Buffer {
  const h = Buffer.alloc(MAT_HEADER_BYTES, 0);
  h.fill(0x20, 0, MAT_HEADER_TEXT_BYTES);
  h.write(text.replace(/[^\x20-\x7e]/g, '?').slice(0, MAT_HEADER_TEXT_BYTES), 0, 'latin1');
  h.writeUInt16LE(0x0100, 124);
  h.write('IM', 126, 'latin1');
  return h;
}

const pad8 = (n: number) => (n + 7) & ~7;

/**
 * The miMATRIX element of a uint8 array up to its data bytes: tag, array flags, dimensions,
 * name (small data element format when it fits in 4 bytes, as MATLAB and scipy write it),
 * and the data subelement's tag. The data (numel bytes) and its padding to 8 follow.
 */
export function uint8MatrixPrefix(name: string, dims: number[]): Buffer {
  const numel = dims.reduce((a, b) => a * b, 1);
  const nameBytes = Buffer.from(name, 'latin1');
  const nameLen = nameBytes.length <= 4 ? 8 : 8 + pad8(nameBytes.length);
  const dimsLen = 8 + pad8(4 * dims.length);
  const prefixLen = 8 + 16 + dimsLen + nameLen + 8;
  const matrixBytes = prefixLen - 8 + pad8(numel);
  if (matrixBytes > 0xffffffff) throw new SvhnError('BAD_INPUT', `MAT variable ${name}: ${numel} bytes do not fit a Level 5 element (at most 4 GiB)`);
  const b = Buffer.alloc(prefixLen, 0);
  let o = 0;
  const u32 = (v: number) => {
    b.writeUInt32LE(v >>> 0, o);
    o += 4;
  };
  u32(MI_MATRIX);
  u32(matrixBytes);
  u32(MI_UINT32); // array flags: class in the low byte, no complex/global/logical bits
  u32(8);
  u32(MX_UINT8_CLASS);
  u32(0);
  u32(MI_INT32); // dimensions
  u32(4 * dims.length);
  for (const d of dims) b.writeInt32LE(d, (o += 4) - 4);
  o = 8 + 16 + dimsLen;
  if (nameBytes.length <= 4) {
    u32((nameBytes.length << 16) | MI_INT8);
    nameBytes.copy(b, o);
    o += 4;
  } else {
    u32(MI_INT8);
    u32(nameBytes.length);
    nameBytes.copy(b, o);
    o += pad8(nameBytes.length);
  }
  u32(MI_UINT8); // real part
  u32(numel);
  return b;
}

/** One image NHWC (h, w, c; c fastest) -> MATLAB column-major (h fastest, then w, then c). */
function nhwcToColumnMajor(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
  const plane = IMAGE_HEIGHT * IMAGE_WIDTH;
  for (let h = 0; h < IMAGE_HEIGHT; h++) {
    for (let w = 0; w < IMAGE_WIDTH; w++) {
      const s = srcOff + (h * IMAGE_WIDTH + w) * IMAGE_CHANNELS;
      const d = dstOff + w * IMAGE_HEIGHT + h;
      for (let c = 0; c < IMAGE_CHANNELS; c++) dst[d + c * plane] = src[s + c]!;
    }
  }
}

/**
 * Writes `count` images and labels to an SVHN-layout .mat file at `path` (atomically).
 * Returns the file's size and sha256. Throws BAD_INPUT when the chunks deliver a different
 * number of images than `count`, a chunk's sizes disagree, or a label is not a digit.
 */
export async function writeSvhnMat(path: string, opts: WriteSvhnMatOptions): Promise<WriteSvhnMatResult> {
  const count = opts.count;
  if (!Number.isSafeInteger(count) || count < 0) throw new SvhnError('BAD_INPUT', `writeSvhnMat ${path}: count expected a non-negative integer, got ${count}`);
  await removeStaleTemps(path);
  const { tmp, release } = tempSibling(path);
  let fh: FileHandle | undefined;
  try {
    try {
      await makeDirs(dirname(path));
      fh = await open(tmp, 'w');
    } catch (e) {
      throw ioError(tmp, 'create', e);
    }
    const header = matHeader(opts.header ?? DEFAULT_MAT_HEADER);
    const placeholderTag = Buffer.alloc(8, 0);
    await fh.write(Buffer.concat([header, placeholderTag]), 0, MAT_HEADER_BYTES + 8, 0);

    const labels = new Uint8Array(count);
    const xLen = await writeCompressedX(fh, MAT_HEADER_BYTES + 8, count, labels, opts, path);

    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(MI_COMPRESSED, 0);
    tag.writeUInt32LE(xLen, 4);
    await fh.write(tag, 0, 8, MAT_HEADER_BYTES);

    // y: N labels, 1..10 (10 for digit 0), one small compressed element after X.
    const yPrefix = uint8MatrixPrefix('y', [count, 1]);
    const yData = Buffer.alloc(pad8(count), 0);
    for (let i = 0; i < count; i++) yData[i] = labels[i] === 0 ? 10 : labels[i]!;
    const yCompressed = deflateSync(Buffer.concat([yPrefix, yData]), { level: opts.level ?? zlibConstants.Z_DEFAULT_COMPRESSION });
    const yTag = Buffer.alloc(8);
    yTag.writeUInt32LE(MI_COMPRESSED, 0);
    yTag.writeUInt32LE(yCompressed.length, 4);
    const yPos = MAT_HEADER_BYTES + 8 + xLen;
    await fh.write(Buffer.concat([yTag, yCompressed]), 0, 8 + yCompressed.length, yPos);
    await fh.truncate(yPos + 8 + yCompressed.length);
    await fh.sync();
    await fh.close();
    fh = undefined;
    const { sha256 } = await hashFile(tmp);
    try {
      await rename(tmp, path);
    } catch (e) {
      throw ioError(path, 'move into place', e);
    }
    return { bytes: yPos + 8 + yCompressed.length, sha256: sha256! };
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof SvhnError) throw e;
    throw ioError(path, 'write', e);
  } finally {
    release();
  }
}

/**
 * Streams X's miMATRIX through one deflate stream into the file from `start` on; fills
 * `labels` from the chunks. Returns the compressed length. The producer (the chunk iterator,
 * usually CPU-bound JS) runs while deflate works on libuv's thread pool, up to
 * MAX_PENDING_BYTES ahead.
 */
async function writeCompressedX(
  fh: FileHandle,
  start: number,
  count: number,
  labels: Uint8Array,
  opts: WriteSvhnMatOptions,
  path: string,
): Promise<number> {
  const deflate = createDeflate({ level: opts.level ?? zlibConstants.Z_DEFAULT_COMPRESSION, chunkSize: DEFLATE_CHUNK });
  let failure: unknown;
  const fail = (e: unknown) => {
    failure ??= e;
  };
  deflate.on('error', fail);
  // Compressed pieces are written in order at increasing positions. Deflate pauses while
  // more than a few writes are queued, so a slow disk holds the producer back through it.
  let pos = start;
  let queued = 0;
  let writes: Promise<void> = Promise.resolve();
  deflate.on('data', (piece: Buffer) => {
    const at = pos;
    pos += piece.length;
    if (++queued > 8) deflate.pause();
    writes = writes.then(async () => {
      if (failure) return;
      try {
        await fh.write(piece, 0, piece.length, at);
      } catch (e) {
        fail(e);
        deflate.destroy(e as Error); // a producer waiting for 'drain' must not wait forever
        return;
      }
      if (--queued <= 2 && deflate.isPaused()) deflate.resume();
    });
  });
  const ended = once(deflate, 'end');
  ended.catch(() => undefined); // errors are recorded by `fail`

  const dims = [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS, count];
  deflate.write(uint8MatrixPrefix('X', dims));
  let done = 0;
  let stage: Buffer | undefined; // column-major images waiting for deflate, STAGE_IMAGES at most
  let staged = 0;
  const bad = (what: string) => new SvhnError('BAD_INPUT', `writeSvhnMat ${path}: ${what}`);
  try {
    for await (const chunk of opts.chunks) {
      if (failure) break;
      const k = chunk.labels.length;
      if (chunk.images.length !== k * IMAGE_BYTES) throw bad(`a chunk has ${k} labels but ${chunk.images.length} image bytes, expected ${k * IMAGE_BYTES}`);
      if (done + k > count) throw bad(`expected ${count} images, got more`);
      for (let i = 0; i < k; i++) {
        const l = chunk.labels[i]!;
        if (l > 9) throw bad(`label ${l} at image ${done + i}, expected a digit 0..9`);
        labels[done + i] = l;
      }
      for (let i = 0; i < k; i++) {
        stage ??= Buffer.allocUnsafe(Math.min(STAGE_IMAGES, count - done) * IMAGE_BYTES);
        nhwcToColumnMajor(chunk.images, i * IMAGE_BYTES, stage, staged * IMAGE_BYTES);
        staged++;
        done++;
        if (staged * IMAGE_BYTES === stage.length) {
          const full = stage;
          stage = undefined;
          staged = 0;
          // Backpressure: the producer may run up to MAX_PENDING_BYTES ahead of deflate, then
          // waits until deflate has caught up ('drain' rejects if deflate fails meanwhile).
          if (!deflate.write(full) && deflate.writableLength > MAX_PENDING_BYTES) await once(deflate, 'drain');
        }
      }
      opts.onProgress?.(done, count);
    }
    if (!failure && done !== count) throw bad(`expected ${count} images, got ${done}`);
    // Pad the data to a multiple of 8 bytes, as the format asks (3,072 * N already is).
    const padding = pad8(count * IMAGE_BYTES) - count * IMAGE_BYTES;
    if (padding > 0) deflate.write(Buffer.alloc(padding, 0));
    deflate.end();
    await ended.catch(() => undefined);
  } catch (e) {
    deflate.destroy();
    throw e;
  } finally {
    await writes;
  }
  if (failure) throw failure;
  const compressed = pos - start;
  if (compressed > 0xffffffff) throw bad(`compressed X is ${compressed} bytes, more than a Level 5 element holds`);
  return compressed;
}
