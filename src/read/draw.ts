/**
 * `svhn read --draw DIR`: a photo at its original size (oriented and flattened as it was read)
 * with each digit's box and label, and the number with its confidence in the top-left corner,
 * as one PNG. The marks are an SVG overlay composited by sharp (librsvg, DejaVu/Liberation
 * fonts, as report/grid.ts draws its captions). Sizes scale with the photo, so a 104x47 SVHN
 * photo and a 4000x3000 phone photo both show them.
 */
import { basename, extname } from 'node:path';
import { decodeWith } from '../data/images/decode.js';
import { escapeXml } from '../report/grid.js';
import type { ReadRow } from './rows.js';

const FONT = "'DejaVu Sans', 'Liberation Sans', sans-serif";
/** Box and label colours: a number read, a number held back (abstained), no number found. */
export const DRAW_COLOURS = { read: '#00e676', unsure: '#ffab00', none: '#40c4ff' } as const;

/** The caption: "207 91%", "unsure (207 41%)", "no number (88%)". */
export function drawCaption(row: ReadRow): string {
  const pct = `${Math.round((row.confidence ?? 0) * 100)}%`;
  if (row.best === '') return `no number (${pct})`;
  return row.abstained ? `unsure (${row.best} ${pct})` : `${row.best} ${pct}`;
}

/**
 * The overlay for a photo of width x height: boxes outlined in black under the colour, labels
 * white on a black stroke. The caption goes to the top or the bottom edge, whichever the boxes
 * leave more room at, and each digit's label to the other side of its box.
 */
export function overlaySvg(row: ReadRow, width: number, height: number): string {
  const colour = row.best === '' ? DRAW_COLOURS.none : row.abstained ? DRAW_COLOURS.unsure : DRAW_COLOURS.read;
  const stroke = Math.max(2, Math.round(Math.max(width, height) / 250)); // px
  const text = (x: number, y: number, size: number, s: string, fill = '#fff') =>
    `<text x="${x}" y="${y}" font-family="${FONT}" font-weight="bold" font-size="${size}" fill="${fill}" stroke="#000" stroke-width="${Math.max(1, Math.round(size / 8))}" paint-order="stroke">${escapeXml(s)}</text>`;
  const roomAbove = Math.min(height, ...row.digits.map((d) => d.box[1]));
  const roomBelow = height - Math.max(0, ...row.digits.map((d) => d.box[3]));
  const captionAtTop = roomAbove >= roomBelow;
  const parts: string[] = [];
  for (const d of row.digits) {
    const [l, t, r, b] = d.box;
    const w = Math.max(1, r - l);
    const h = Math.max(1, b - t);
    parts.push(`<rect x="${l}" y="${t}" width="${w}" height="${h}" fill="none" stroke="#000" stroke-width="${stroke * 2}"/>`);
    parts.push(`<rect x="${l}" y="${t}" width="${w}" height="${h}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`);
    const size = Math.max(10, Math.round(h * 0.35));
    const y = captionAtTop ? Math.min(height - 2, b + stroke + size) : Math.max(size, t - stroke - 2); // baseline
    parts.push(text(l, y, size, String(d.digit)));
  }
  const size = Math.max(11, Math.round(Math.min(width, height) / 10));
  const caption = drawCaption(row);
  const band = Math.ceil(size * 1.3);
  const top = captionAtTop ? 0 : height - band;
  parts.push(`<rect x="0" y="${top}" width="${Math.ceil(caption.length * size * 0.62 + size * 0.6)}" height="${band}" fill="#000" fill-opacity="0.55"/>`);
  parts.push(text(Math.round(size * 0.3), top + Math.round(size * 1.02), size, caption, colour));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** The PNG of a photo's bytes with its row drawn on it, at the photo's own (oriented) size. */
export async function drawReading(bytes: Uint8Array, row: ReadRow): Promise<Buffer> {
  return decodeWith(bytes, {}, async (pipeline) => {
    const meta = await pipeline.metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    // sharp composites after orienting and flattening: the overlay lands on the photo as it was read.
    return pipeline.removeAlpha().composite([{ input: Buffer.from(overlaySvg(row, width, height)), top: 0, left: 0 }]).png().toBuffer();
  });
}

/**
 * The drawing's file name in --draw DIR: the input's name without its extension, .png
 * (`photos/IMG_1.jpg` -> IMG_1.png); a name given already in this run gets -2, -3, ...
 * (`a/1.png` and `b/1.png` -> 1.png, 1-2.png), so inputs never overwrite each other.
 */
export class DrawNames {
  private readonly used = new Set<string>();

  next(input: string): string {
    const base = basename(input);
    const stem = base.slice(0, base.length - extname(base).length) || base;
    let name = `${stem}.png`;
    for (let i = 2; this.used.has(name); i++) name = `${stem}-${i}.png`;
    this.used.add(name);
    return name;
  }
}
