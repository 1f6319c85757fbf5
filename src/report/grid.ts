/**
 * A labelled image grid as PNG: 32x32 RGB tiles upscaled, a caption under each, an optional
 * title. Used for preprocess's samples.png, predict --grid and evaluate --errors.
 *
 * Tiles are upscaled into one raw RGB canvas (nearest neighbour by default: the pixels a
 * model sees, no invented detail); captions are SVG text composited by sharp (librsvg,
 * DejaVu/Liberation fonts).
 */
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from '../config.js';
import { SvhnError } from '../errors.js';
import { escapeControls } from '../util/text.js';

export interface ImageGridOptions {
  images: Uint8Array; // count x 32 x 32 x 3 uint8, NHWC
  count: number;
  captions: string[]; // one per image, drawn under its tile
  captionColors?: string[]; // CSS colours per caption, e.g. green for right, red for wrong
  /** A second, smaller grey line under each caption (predict --grid: the file name), cut to fit the tile. */
  subcaptions?: string[];
  columns?: number; // default: ceil(sqrt(count)), at most 10
  scale?: number; // integer upscaling of each 32x32 tile, default 3
  interpolation?: 'nearest' | 'cubic'; // default nearest
  title?: string; // wrapped over several lines when wider than the grid
}

const PAD = 6; // px between tiles and around the grid
const FONT = "'DejaVu Sans', 'Liberation Sans', sans-serif";
/**
 * The widest usual advance of DejaVu Sans, in em (digits are 0.636, most lower case less; W
 * and M more): text is cut to what fits at this width, so it almost never overflows a tile.
 */
const EM_PER_CHAR = 0.62;

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** How many characters of `fontSize` px fit in `widthPx`. */
function charsThatFit(widthPx: number, fontSize: number): number {
  return Math.max(3, Math.floor(widthPx / (fontSize * EM_PER_CHAR)));
}

/**
 * Text a user named (a file name) as one line of at most widthPx: control characters shown as
 * escapes (util/text.ts), and a longer one cut in the middle ("IMG_20…0042.png"), keeping its
 * start and its end, where names differ and the extension is. Not XML-escaped yet.
 */
export function fitText(text: string, widthPx: number, fontSize: number): string {
  const chars = [...escapeControls(text)]; // by code point: never half a surrogate pair
  const max = charsThatFit(widthPx, fontSize);
  if (chars.length <= max) return chars.join('');
  const head = Math.ceil((max - 1) / 2);
  const tail = max - 1 - head;
  return chars.slice(0, head).join('') + '…' + chars.slice(chars.length - tail).join('');
}

/** Words of text in lines of at most widthPx (a word longer than a line is cut to fit). */
function wrapText(text: string, widthPx: number, fontSize: number): string[] {
  const max = charsThatFit(widthPx, fontSize);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const w = fitText(word, widthPx, fontSize);
    if (line && [...line].length + 1 + [...w].length > max) {
      lines.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Where each tile goes and the SVG of every text (title, captions, subcaptions); no pixels. */
export interface GridLayout {
  width: number;
  height: number;
  tile: number; // px of a tile's side
  origins: Array<[number, number]>; // each tile's top-left corner
  svg: string;
}

/** The grid's layout and text layer (exported so tests can read the text it draws). */
export function gridSvg(opts: Omit<ImageGridOptions, 'images'>): GridLayout {
  const { count, captions } = opts;
  const scale = opts.scale ?? 3;
  if (!Number.isSafeInteger(scale) || scale < 1 || scale > 16) throw new SvhnError('BAD_INPUT', `image grid: expected an integer scale 1..16, got ${scale}`);
  const columns = Math.min(count, opts.columns ?? Math.min(10, Math.ceil(Math.sqrt(count))));
  if (!Number.isSafeInteger(columns) || columns < 1) throw new SvhnError('BAD_INPUT', `image grid: expected a positive column count, got ${opts.columns}`);
  const rows = Math.ceil(count / columns);

  const tile = IMAGE_WIDTH * scale;
  const fontSize = Math.max(11, Math.min(16, Math.round(tile / 7)));
  const subSize = Math.max(9, fontSize - 4);
  const hasSub = Boolean(opts.subcaptions?.some(Boolean));
  const captionH = fontSize + 8 + (hasSub ? subSize + 4 : 0);
  const cellW = tile + PAD;
  const cellH = tile + captionH + PAD;
  const width = PAD + columns * cellW;
  const titleSize = fontSize + 2;
  const titleLines = opts.title ? wrapText(opts.title, width - 2 * PAD, titleSize) : [];
  const titleLineH = titleSize + 6;
  const titleH = titleLines.length ? titleLines.length * titleLineH + 10 : 0;
  const height = PAD + titleH + rows * cellH;

  const texts: string[] = titleLines.map(
    (line, k) =>
      `<text class="title" x="${width / 2}" y="${PAD + titleSize + 2 + k * titleLineH}" text-anchor="middle" font-family="${FONT}" font-size="${titleSize}" font-weight="bold" fill="#111">${escapeXml(line)}</text>`,
  );
  const origins: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const x0 = PAD + (i % columns) * cellW;
    const y0 = PAD + titleH + Math.floor(i / columns) * cellH;
    origins.push([x0, y0]);
    const caption = captions[i] ?? '';
    const color = opts.captionColors?.[i] ?? '#111';
    if (caption) {
      texts.push(
        `<text x="${x0 + tile / 2}" y="${y0 + tile + fontSize + 2}" text-anchor="middle" font-family="${FONT}" font-size="${fontSize}" fill="${escapeXml(color)}">${escapeXml(caption)}</text>`,
      );
    }
    const sub = opts.subcaptions?.[i] ?? '';
    if (sub) {
      texts.push(
        `<text class="sub" x="${x0 + tile / 2}" y="${y0 + tile + fontSize + 6 + subSize}" text-anchor="middle" font-family="${FONT}" font-size="${subSize}" fill="#59636e">${escapeXml(fitText(sub, tile, subSize))}</text>`,
      );
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${texts.join('')}</svg>`;
  return { width, height, tile, origins, svg };
}

/** Nearest-neighbour upscale of image i into the RGB canvas at (x0, y0). */
function blitNearest(canvas: Buffer, canvasW: number, images: Uint8Array, i: number, scale: number, x0: number, y0: number): void {
  const src = i * IMAGE_BYTES;
  for (let y = 0; y < IMAGE_HEIGHT * scale; y++) {
    const sy = Math.floor(y / scale);
    const rowOut = ((y0 + y) * canvasW + x0) * 3;
    for (let x = 0; x < IMAGE_WIDTH * scale; x++) {
      const s = src + (sy * IMAGE_WIDTH + Math.floor(x / scale)) * IMAGE_CHANNELS;
      const o = rowOut + x * 3;
      canvas[o] = images[s]!;
      canvas[o + 1] = images[s + 1]!;
      canvas[o + 2] = images[s + 2]!;
    }
  }
}

/** Renders the grid; returns PNG bytes. */
export async function renderImageGrid(opts: ImageGridOptions): Promise<Buffer> {
  const { images, count } = opts;
  if (!Number.isSafeInteger(count) || count <= 0) throw new SvhnError('BAD_INPUT', `image grid: expected a positive image count, got ${count}`);
  if (images.length < count * IMAGE_BYTES) {
    throw new SvhnError('BAD_INPUT', `image grid: expected ${count * IMAGE_BYTES} bytes for ${count} images of 32x32x3, got ${images.length}`);
  }
  const { width, height, tile, origins, svg } = gridSvg(opts);
  const scale = tile / IMAGE_WIDTH;
  const canvas = Buffer.alloc(width * height * 3, 255); // white background

  const sharp = (await import('sharp')).default;
  for (let i = 0; i < count; i++) {
    const [x0, y0] = origins[i]!;
    if ((opts.interpolation ?? 'nearest') === 'nearest') {
      blitNearest(canvas, width, images, i, scale, x0, y0);
    } else {
      const tileRgb = await sharp(images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), {
        raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: IMAGE_CHANNELS },
      })
        .resize(tile, tile, { kernel: 'cubic' })
        .raw()
        .toBuffer();
      for (let y = 0; y < tile; y++) tileRgb.copy(canvas, ((y0 + y) * width + x0) * 3, y * tile * 3, (y + 1) * tile * 3);
    }
  }

  return sharp(canvas, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
}
