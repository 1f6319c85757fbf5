/**
 * A video of digits for Chromium's fake camera (--use-file-for-fake-video-capture=FILE.y4m):
 * YUV4MPEG2, 4:2:0, BT.601 full range (C420jpeg), which Chromium plays at its frame rate and loops.
 *
 * Each frame shows a digit as the colour model reads it (test/predict/helpers.ts): the
 * digit's glyph, large, in a shade of the digit's prototype colour on a field of that colour,
 * so the frame's mean colour stays nearest that prototype.
 */
import { writeFile } from 'node:fs/promises';
import { PROTOTYPES } from '../predict/helpers.js';

/** 5x7 bitmaps of 0..9, one string of 7 rows of 5 bits each. */
const GLYPHS = [
  '01110100011001110101110011000101110', // 0
  '00100011000010000100001000010001110', // 1
  '01110100010000100010001000100011111', // 2
  '11111000100010000010000011000101110', // 3
  '00010001100101010010111110001000010', // 4
  '11111100001111000001000011000101110', // 5
  '00110010001000011110100011000101110', // 6
  '11111000010001000100010000100001000', // 7
  '01110100011000101110100011000101110', // 8
  '01110100011000101111000010001001100', // 9
];

export interface VideoSpec {
  width: number;
  height: number;
  fps: number;
  /** Digits in order, each shown for `framesEach` frames. */
  digits: number[];
  framesEach: number;
}

/** One RGB frame: the glyph of `digit` (a darker or lighter shade) centred, filling half the height. */
export function digitFrame(digit: number, width: number, height: number): Buffer {
  const [r, g, b] = PROTOTYPES[digit]!;
  const shade = (v: number) => (r + g + b < 200 ? Math.min(255, v + 45) : Math.round(v * 0.8)); // black gets a grey glyph
  const rgb = Buffer.alloc(width * height * 3);
  const cell = Math.floor(height / 2 / 7);
  const left = Math.floor((width - 5 * cell) / 2);
  const top = Math.floor((height - 7 * cell) / 2);
  const bits = GLYPHS[digit]!;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const gx = Math.floor((x - left) / cell);
      const gy = Math.floor((y - top) / cell);
      const on = gx >= 0 && gx < 5 && gy >= 0 && gy < 7 && bits[gy * 5 + gx] === '1';
      const o = (y * width + x) * 3;
      rgb[o] = on ? shade(r) : r;
      rgb[o + 1] = on ? shade(g) : g;
      rgb[o + 2] = on ? shade(b) : b;
    }
  }
  return rgb;
}

/** RGB -> Y, Cb, Cr planes (4:2:0: chroma averaged over 2x2 blocks), BT.601 full range. */
function toI420(rgb: Buffer, width: number, height: number): Buffer {
  const out = Buffer.alloc(width * height * 1.5);
  const cw = width / 2;
  const uBase = width * height;
  const vBase = uBase + (width * height) / 4;
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = [rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!];
    out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let cb = 0;
      let cr = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
        const i = (y + dy) * width + x + dx;
        const [r, g, b] = [rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!];
        cb += 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
        cr += 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
      }
      const c = (y / 2) * cw + x / 2;
      out[uBase + c] = Math.max(0, Math.min(255, Math.round(cb / 4)));
      out[vBase + c] = Math.max(0, Math.min(255, Math.round(cr / 4)));
    }
  }
  return out;
}

/** One RGB frame: `number`'s glyphs in white, side by side, filling half the height, on dark blue (a house number). */
export function numberFrame(number: string, width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set([30, 50, 110], i * 3);
  const cell = Math.floor(height / 2 / 7);
  const gap = cell * 2;
  const total = number.length * 5 * cell + (number.length - 1) * gap;
  const top = Math.floor((height - 7 * cell) / 2);
  [...number].forEach((ch, k) => {
    const bits = GLYPHS[Number(ch)]!;
    const left = Math.floor((width - total) / 2) + k * (5 * cell + gap);
    for (let gy = 0; gy < 7; gy++) {
      for (let gx = 0; gx < 5; gx++) {
        if (bits[gy * 5 + gx] !== '1') continue;
        for (let y = top + gy * cell; y < top + (gy + 1) * cell; y++) for (let x = left + gx * cell; x < left + (gx + 1) * cell; x++) rgb.set([240, 240, 240], (y * width + x) * 3);
      }
    }
  });
  return rgb;
}

/** A video of RGB frames (each width x height x 3), in order. */
export async function writeRgbVideo(path: string, spec: { width: number; height: number; fps: number; frames: Buffer[] }): Promise<void> {
  const header = Buffer.from(`YUV4MPEG2 W${spec.width} H${spec.height} F${spec.fps}:1 Ip A1:1 C420jpeg\n`);
  const out: Buffer[] = [header];
  for (const f of spec.frames) out.push(Buffer.from('FRAME\n'), toI420(f, spec.width, spec.height));
  await writeFile(path, Buffer.concat(out));
}

export async function writeDigitVideo(path: string, spec: VideoSpec): Promise<void> {
  const header = Buffer.from(`YUV4MPEG2 W${spec.width} H${spec.height} F${spec.fps}:1 Ip A1:1 C420jpeg\n`);
  const frames: Buffer[] = [header];
  for (const digit of spec.digits) {
    const frame = toI420(digitFrame(digit, spec.width, spec.height), spec.width, spec.height);
    for (let i = 0; i < spec.framesEach; i++) frames.push(Buffer.from('FRAME\n'), frame);
  }
  await writeFile(path, Buffer.concat(frames));
}
