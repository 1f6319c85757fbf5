/**
 * A grid of letterboxed photos (READER_INPUT, 48 x 96) as PNG, each digit's box drawn from its
 * label record and the number captioned under it: the photo cache's samples.png, to see at a
 * glance that the boxes sit on the digits. Tiles are upscaled nearest-neighbour (the pixels the
 * reader sees); boxes and text are one SVG layer composited by sharp, as in ./grid.ts.
 */
import { SvhnError } from '../errors.js';
import { LABEL_BYTES, READER_IMAGE_BYTES, READER_INPUT, readLabelRecord } from '../tasks/read/format.js';
import { escapeXml, fitText } from './grid.js';

export interface PhotoGridOptions {
  images: Uint8Array; // count x READER_IMAGE_BYTES
  labels: Uint8Array; // count x LABEL_BYTES
  count: number;
  captions: string[];
  columns?: number; // default 4
  scale?: number; // integer upscaling, default 3
  title?: string;
}

const PAD = 6;
const CAPTION = 18; // px under each tile
const FONT = "'DejaVu Sans', 'Liberation Sans', sans-serif";
const BOX_COLOURS = ['#ff2d2d', '#00d000', '#2f7bff', '#ffb000', '#d040ff', '#00c8c8'];

export async function renderPhotoGrid(opts: PhotoGridOptions): Promise<Buffer> {
  const { images, labels, count } = opts;
  if (!Number.isSafeInteger(count) || count <= 0) throw new SvhnError('BAD_INPUT', `photo grid: expected a positive photo count, got ${count}`);
  if (images.length < count * READER_IMAGE_BYTES || labels.length < count * LABEL_BYTES) {
    throw new SvhnError('BAD_INPUT', `photo grid: expected ${count} photos and records, got ${images.length} image and ${labels.length} label bytes`);
  }
  const scale = opts.scale ?? 3;
  const columns = Math.min(count, opts.columns ?? 4);
  const rows = Math.ceil(count / columns);
  const tileW = READER_INPUT.width * scale;
  const tileH = READER_INPUT.height * scale;
  const titleH = opts.title ? 26 : 0;
  const width = PAD + columns * (tileW + PAD);
  const height = titleH + PAD + rows * (tileH + CAPTION + PAD);
  const canvas = Buffer.alloc(width * height * 3, 255);
  const svg: string[] = [];
  if (opts.title) svg.push(`<text x="${PAD}" y="19" font-family="${FONT}" font-size="15" font-weight="bold">${escapeXml(fitText(opts.title, width - 2 * PAD, 15))}</text>`);

  for (let i = 0; i < count; i++) {
    const x0 = PAD + (i % columns) * (tileW + PAD);
    const y0 = titleH + PAD + Math.floor(i / columns) * (tileH + CAPTION + PAD);
    const image = images.subarray(i * READER_IMAGE_BYTES, (i + 1) * READER_IMAGE_BYTES);
    for (let y = 0; y < tileH; y++) {
      const sy = Math.floor(y / scale);
      for (let x = 0; x < tileW; x++) {
        const s = (sy * READER_INPUT.width + Math.floor(x / scale)) * 3;
        const o = ((y0 + y) * width + x0 + x) * 3;
        canvas[o] = image[s]!;
        canvas[o + 1] = image[s + 1]!;
        canvas[o + 2] = image[s + 2]!;
      }
    }
    readLabelRecord(labels, i * LABEL_BYTES).forEach(([l, t, r, b], d) => {
      svg.push(`<rect x="${x0 + l * scale}" y="${y0 + t * scale}" width="${(r - l) * scale}" height="${(b - t) * scale}" fill="none" stroke="${BOX_COLOURS[d % BOX_COLOURS.length]}" stroke-width="2"/>`);
    });
    const caption = fitText(opts.captions[i] ?? '', tileW, 13);
    svg.push(`<text x="${x0 + tileW / 2}" y="${y0 + tileH + 14}" text-anchor="middle" font-family="${FONT}" font-size="13">${escapeXml(caption)}</text>`);
  }

  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join('')}</svg>`;
  const sharp = (await import('sharp')).default;
  return sharp(canvas, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(overlay), top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
}
