/**
 * A video of digits for Chromium's fake camera (--use-file-for-fake-video-capture=FILE.y4m):
 * YUV4MPEG2, 4:2:0, BT.601 full range (C420jpeg; scripts/y4m.js writes it), which Chromium plays
 * at its frame rate and loops.
 *
 * Each frame shows a digit as the colour model reads it (test/predict/helpers.ts): the
 * digit's glyph, large, in a shade of the digit's prototype colour on a field of that colour,
 * so the frame's mean colour stays nearest that prototype.
 */
import { writeFile } from 'node:fs/promises';
import { toI420 } from '../../scripts/y4m.js';
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

export async function writeDigitVideo(path: string, spec: VideoSpec): Promise<void> {
  const header = Buffer.from(`YUV4MPEG2 W${spec.width} H${spec.height} F${spec.fps}:1 Ip A1:1 C420jpeg\n`);
  const frames: Buffer[] = [header];
  for (const digit of spec.digits) {
    const frame = toI420(digitFrame(digit, spec.width, spec.height), spec.width, spec.height);
    for (let i = 0; i < spec.framesEach; i++) frames.push(Buffer.from('FRAME\n'), frame);
  }
  await writeFile(path, Buffer.concat(frames));
}

export { writeRgbVideo } from '../../scripts/y4m.js';
