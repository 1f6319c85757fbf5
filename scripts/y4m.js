/**
 * Videos for Chromium's fake camera (--use-file-for-fake-video-capture=FILE.y4m): YUV4MPEG2,
 * 4:2:0, BT.601 full range (C420jpeg), which Chromium plays at its frame rate and loops. Used
 * by bench:read's webcam part and by the page tests (test/serve/y4m.ts).
 */
import { writeFile } from 'node:fs/promises';

/**
 * RGB (width x height x 3, even sides) -> Y, Cb, Cr planes (4:2:0: chroma averaged over 2x2 blocks), BT.601 full range.
 * @param {Uint8Array} rgb @param {number} width @param {number} height @returns {Buffer}
 */
export function toI420(rgb, width, height) {
  const out = Buffer.alloc(width * height * 1.5);
  const cw = width / 2;
  const uBase = width * height;
  const vBase = uBase + (width * height) / 4;
  for (let i = 0; i < width * height; i++) out[i] = Math.round(0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2]);
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let cb = 0;
      let cr = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const i = (y + dy) * width + x + dx;
        const [r, g, b] = [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]];
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

/**
 * A video of RGB frames (each width x height x 3), in order.
 * @param {string} path @param {{ width: number; height: number; fps: number; frames: Uint8Array[] }} spec
 */
export async function writeRgbVideo(path, spec) {
  const header = Buffer.from(`YUV4MPEG2 W${spec.width} H${spec.height} F${spec.fps}:1 Ip A1:1 C420jpeg\n`);
  const out = [header];
  for (const f of spec.frames) out.push(Buffer.from('FRAME\n'), toI420(f, spec.width, spec.height));
  await writeFile(path, Buffer.concat(out));
}
