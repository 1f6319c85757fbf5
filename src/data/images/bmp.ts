/**
 * A small BMP decoder: libvips (and so sharp) reads no BMP, and no maintained BMP package is
 * installed. Covers what image tools write in practice:
 *
 *   BITMAPCOREHEADER (12 bytes) and BITMAPINFOHEADER / V2 / V3 / V4 / V5 (40..124 bytes)
 *   1, 4 and 8 bits per pixel with a palette; 16, 24 and 32 bits per pixel
 *   BI_RGB (uncompressed) and BI_BITFIELDS / BI_ALPHABITFIELDS (channel masks)
 *   bottom-up (positive height, the usual) and top-down (negative height) rows
 *
 * RLE-compressed and embedded JPEG/PNG BMPs are refused with a message saying so.
 * The result is raw interleaved RGB or RGBA, top row first, for sharp's `raw` input.
 */
import { SvhnError } from '../../errors.js';

export interface DecodedBmp {
  width: number;
  height: number;
  channels: 3 | 4; // 4 only when the file has an alpha mask
  data: Uint8Array; // height x width x channels, top row first
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;
const COMPRESSION_NAMES: Record<number, string> = { 1: 'RLE8', 2: 'RLE4', 4: 'embedded JPEG', 5: 'embedded PNG' };
/** Refuse absurd headers before allocating: 100 megapixels is far beyond any digit photo. */
const MAX_PIXELS = 100_000_000;

export function isBmp(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x42 && data[1] === 0x4d; // "BM"
}

function bad(reason: string): SvhnError {
  return new SvhnError('BAD_INPUT', `BMP: ${reason}`);
}

/** A channel mask as (shift, bits) so a value scales to 0..255. */
interface Mask {
  mask: number;
  shift: number;
  max: number; // (1 << bits) - 1
}

function maskOf(mask: number): Mask | undefined {
  const m = mask >>> 0;
  if (m === 0) return undefined;
  let shift = 0;
  while (((m >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (shift + bits < 32 && ((m >>> (shift + bits)) & 1) === 1) bits++;
  return { mask: m, shift, max: bits >= 32 ? 0xffffffff : 2 ** bits - 1 };
}

function scaled(px: number, m: Mask | undefined, fallback: number): number {
  if (!m) return fallback;
  return Math.round((((px & m.mask) >>> 0) / 2 ** m.shift / m.max) * 255) & 255;
}

/** maxPixels: width x height allowed (a 1-bit BMP of a few MB can expand to gigabytes of RGB). */
export function decodeBmp(data: Uint8Array, maxPixels = MAX_PIXELS): DecodedBmp {
  if (!isBmp(data)) throw bad('expected the magic "BM"');
  if (data.length < 26) throw bad(`file of ${data.length} bytes is shorter than a BMP header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const pixelOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize !== 12 && (headerSize < 40 || headerSize > 124)) throw bad(`unknown DIB header size ${headerSize}`);
  if (data.length < 14 + headerSize) throw bad(`truncated header: ${data.length} bytes, header needs ${14 + headerSize}`);

  const core = headerSize === 12;
  const width = core ? view.getUint16(18, true) : view.getInt32(18, true);
  const rawHeight = core ? view.getInt16(20, true) : view.getInt32(22, true);
  const bpp = core ? view.getUint16(24, true) : view.getUint16(28, true);
  const compression = core ? BI_RGB : view.getUint32(30, true);
  const colorsUsed = core ? 0 : view.getUint32(46, true);
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);

  if (width <= 0 || height <= 0) throw bad(`expected positive dimensions, got ${width}x${rawHeight}`);
  if (width * height > maxPixels) throw bad(`${width}x${height} is larger than ${maxPixels} pixels`);
  if (compression !== BI_RGB && compression !== BI_BITFIELDS && compression !== BI_ALPHABITFIELDS) {
    throw bad(`compression ${COMPRESSION_NAMES[compression] ?? compression} is not supported (only uncompressed and bitfields)`);
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw bad(`expected 1, 4, 8, 16, 24 or 32 bits per pixel, got ${bpp}`);

  // Channel masks: in the header (V2+), or right after a 40-byte header for BI_BITFIELDS.
  let masks: [number, number, number, number] | undefined;
  if (bpp === 16 || bpp === 32) {
    if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
      const at = 54; // 14 (file header) + 40: where the masks sit in every header layout
      const n = compression === BI_ALPHABITFIELDS || headerSize >= 56 ? 4 : 3;
      if (data.length < at + 4 * n) throw bad('truncated channel masks');
      masks = [view.getUint32(at, true), view.getUint32(at + 4, true), view.getUint32(at + 8, true), n === 4 ? view.getUint32(at + 12, true) : 0];
    } else if (bpp === 16) {
      masks = [0x7c00, 0x03e0, 0x001f, 0]; // 5-5-5
    } else {
      masks = [0x00ff0000, 0x0000ff00, 0x000000ff, 0]; // BGRX: the 4th byte is unused in BI_RGB
    }
  }

  // Palette (1/4/8 bpp): after the header (and masks, if any), BGR0 quads (BGR triples for core).
  let palette: Uint8Array | undefined;
  if (bpp <= 8) {
    const entry = core ? 3 : 4;
    const n = colorsUsed > 0 ? Math.min(colorsUsed, 1 << bpp) : 1 << bpp;
    const start = 14 + headerSize + (compression === BI_BITFIELDS ? 12 : 0);
    if (data.length < start + n * entry) throw bad('truncated palette');
    palette = new Uint8Array(256 * 3);
    for (let i = 0; i < n; i++) {
      palette[i * 3] = data[start + i * entry + 2]!;
      palette[i * 3 + 1] = data[start + i * entry + 1]!;
      palette[i * 3 + 2] = data[start + i * entry]!;
    }
  }

  const stride = Math.floor((bpp * width + 31) / 32) * 4; // rows are padded to 4 bytes
  if (pixelOffset + stride * height > data.length) {
    throw bad(`truncated pixel data: expected ${stride * height} bytes from offset ${pixelOffset}, file has ${data.length - pixelOffset}`);
  }

  const [mr, mg, mb, ma] = (masks ?? [0, 0, 0, 0]).map(maskOf) as (Mask | undefined)[];
  const channels: 3 | 4 = ma ? 4 : 3;
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (topDown ? y : height - 1 - y) * stride;
    let o = y * width * channels;
    for (let x = 0; x < width; x++, o += channels) {
      if (palette) {
        const bit = x * bpp;
        const byte = data[row + (bit >> 3)]!;
        const index = bpp === 8 ? byte : (byte >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        out[o] = palette[index * 3]!;
        out[o + 1] = palette[index * 3 + 1]!;
        out[o + 2] = palette[index * 3 + 2]!;
      } else if (bpp === 24) {
        const p = row + x * 3;
        out[o] = data[p + 2]!;
        out[o + 1] = data[p + 1]!;
        out[o + 2] = data[p]!;
      } else {
        const px = bpp === 16 ? view.getUint16(row + x * 2, true) : view.getUint32(row + x * 4, true);
        out[o] = scaled(px, mr, 0);
        out[o + 1] = scaled(px, mg, 0);
        out[o + 2] = scaled(px, mb, 0);
        if (channels === 4) out[o + 3] = scaled(px, ma, 255);
      }
    }
  }
  return { width, height, channels, data: out };
}
