/**
 * The direct convolution's work as numbered tiles, so that more than one thread can take
 * them: conv2d.ts describes one convolution as a ConvJob (byte offsets on the wasm heap and
 * its geometry, written into an Int32Array), and any thread that has the SIMD module on that
 * heap runs tile t of it with runConvTile (the calling thread, and on the threaded build the
 * helper thread of convTeam.ts, which shares the heap); likewise the zero padding a 'same'
 * convolution reads, an image a tile (PadJob). No tfjs here: a helper thread loads this
 * file, convTeam.ts and simd.ts only.
 *
 * A tile is `images` whole output images or a band of `rows` rows of one (heap.ts rowTiles:
 * about TILE_BYTES of output, so it stays in L1 while its epilogue runs); per tile, one
 * simd/conv.c convRows call per block of 16 (then 4) output channels, or for strided
 * convolutions one per output row and block, then the epilogue on the tile:
 *
 *   NONE            y                                   (Conv2D)
 *   BIAS            y + bias[c]                         (a folded BatchNorm: affineRows, k = 1)
 *   BIAS_RELU       max(y + bias[c], 0)                 (biasReluRows)
 *   BIAS_ADD_RELU   max(y + (residual + bias[c]), 0)    (addAffineRows with k = 1, then biasReluRows by 0)
 */
import type { SimdKernels } from './simd.js';

export const EPILOGUE = { NONE: 0, BIAS: 1, BIAS_RELU: 2, BIAS_ADD_RELU: 3 } as const;
export type Epilogue = (typeof EPILOGUE)[keyof typeof EPILOGUE];

/**
 * One convolution over a (zero-padded) x: heap byte offsets and sizes. x is [n, h, w, ci],
 * filter [kh, kw, ci, co], y and residual [n, oh, ow, co]; bias, ones and zeros float32[co]
 * (ones and zeros: the epilogues' k = 1 and bias 0; 0 where the epilogue does not read them).
 */
export interface ConvJob {
  kind: 'conv';
  x: number; filter: number; y: number; bias: number; residual: number; ones: number; zeros: number;
  n: number; h: number; w: number; ci: number; oh: number; ow: number; co: number;
  kh: number; kw: number; sh: number; sw: number;
  epilogue: Epilogue;
  /** Tiles: whole images per tile (>= 1), and bands per image (1 when a tile holds whole images). */
  tileImages: number; tileBands: number;
}

/**
 * Zero padding of n NHWC images [n, h, w, c] at byte offset src into [n, top + h + bottom,
 * left + w + right, c] at dst (the copy a 'same' convolution runs over: padding.ts); a tile
 * is an image.
 */
export interface PadJob {
  kind: 'pad';
  src: number; dst: number; n: number; h: number; w: number; c: number;
  top: number; bottom: number; left: number; right: number;
}

export type TileJob = ConvJob | PadJob;

/** The order of each job's fields in its Int32Array form, after a first word for its kind (offsets above 2 GiB read back with >>> 0). */
const CONV_FIELDS = [
  'x', 'filter', 'y', 'bias', 'residual', 'ones', 'zeros', 'n', 'h', 'w', 'ci', 'oh', 'ow', 'co',
  'kh', 'kw', 'sh', 'sw', 'epilogue', 'tileImages', 'tileBands',
] as const satisfies ReadonlyArray<keyof ConvJob>;
const PAD_FIELDS = ['src', 'dst', 'n', 'h', 'w', 'c', 'top', 'bottom', 'left', 'right'] as const satisfies ReadonlyArray<keyof PadJob>;
const KINDS = ['conv', 'pad'] as const;
export const JOB_WORDS = 1 + Math.max(CONV_FIELDS.length, PAD_FIELDS.length);

export function writeJob(job: TileJob, to: Int32Array): void {
  to[0] = KINDS.indexOf(job.kind);
  const fields: readonly string[] = job.kind === 'conv' ? CONV_FIELDS : PAD_FIELDS;
  fields.forEach((f, i) => { to[1 + i] = (job as unknown as Record<string, number>)[f]!; });
}

export function readJob(from: Int32Array): TileJob {
  const kind = KINDS[from[0]!] ?? 'conv';
  const job: Record<string, number | string> = { kind };
  (kind === 'conv' ? CONV_FIELDS : PAD_FIELDS).forEach((f, i) => { job[f] = from[1 + i]! >>> 0; });
  return job as unknown as TileJob;
}

/** Tiles in a job: a convolution's (below), or a padding's images. */
export function jobTiles(job: TileJob): number {
  return job.kind === 'conv' ? tileCount(job.n, job) : job.n;
}

/**
 * Runs tile t of a job: `simd` is the SIMD module on the heap, `heap` a float32 view of the
 * whole heap (padding copies in JS: a tile of it is a few memcpys).
 */
export function runTile(simd: SimdKernels, heap: () => Float32Array, job: TileJob, t: number): void {
  if (job.kind === 'conv') runConvTile(simd, job, t);
  else padImage(heap(), job, t);
}

/** Image i of a PadJob: zeros around, x's rows copied into the middle. */
export function padImage(heap: Float32Array, job: PadJob, i: number): void {
  const { h, w, c, top, bottom, left, right } = job;
  const pw = w + left + right;
  const row = w * c;
  let src = job.src / 4 + i * h * row;
  let dst = job.dst / 4 + i * (h + top + bottom) * pw * c;
  heap.fill(0, dst, dst + top * pw * c + left * c);
  dst += top * pw * c + left * c;
  for (let y = 0; y < h; y++, src += row, dst += pw * c) {
    heap.copyWithin(dst, src, src + row);
    // This row's right border and the next row's left border (after the last row: its right border).
    heap.fill(0, dst + row, dst + row + (y < h - 1 ? (right + left) * c : right * c));
  }
  heap.fill(0, dst - left * c, dst - left * c + bottom * pw * c);
}

/** Tiles of `n` images of `rows` rows of `rowBytes` each, at most about `tileBytes` of output a tile (heap.ts rowTiles). */
export function tileLayout(n: number, rows: number, rowBytes: number, tileBytes: number): { tileImages: number; tileBands: number } {
  const tileImages = Math.max(1, Math.floor(tileBytes / (rows * rowBytes)));
  const tileBands = tileImages > 1 ? 1 : Math.ceil(rows / Math.max(1, Math.floor(tileBytes / rowBytes)));
  return { tileImages, tileBands };
}

export function tileCount(n: number, layout: { tileImages: number; tileBands: number }): number {
  return Math.ceil(n / layout.tileImages) * layout.tileBands;
}

/** Tile t: its first image, whole images, first row and rows per image (bands spread evenly: 13 rows as 3+3+3+4). */
export function tileAt(t: number, n: number, rows: number, layout: { tileImages: number; tileBands: number }): { image: number; images: number; row: number; rows: number } {
  const { tileImages, tileBands } = layout;
  const image = Math.floor(t / tileBands) * tileImages;
  const band = t % tileBands;
  const row = Math.floor((band * rows) / tileBands);
  return { image, images: Math.min(tileImages, n - image), row, rows: Math.floor(((band + 1) * rows) / tileBands) - row };
}

/** Computes tile t of a convolution: its output pixels for every channel block, then its epilogue. */
export function runConvTile(simd: SimdKernels, job: ConvJob, t: number): void {
  const { n, h, w, ci, oh, ow, co, kh, kw, sh, sw } = job;
  const { image: i, images, row: y, rows } = tileAt(t, n, oh, job);
  const rowBytes = ow * co * 4;
  const xSteps = [ci * 4, w * ci * 4, h * w * ci * 4] as const; // per pixel, row, image
  const yTile = job.y + (i * oh + y) * rowBytes;
  const xTile = job.x + (i * h + y) * w * ci * 4;
  for (let k = 0; k < co;) {
    const [width, fn] = co - k >= 16 ? [16, simd.convRows16x2] : [4, simd.convRows4x2];
    if (sh === 1 && sw === 1) {
      fn(xTile, job.filter + k * 4, yTile + k * 4, kw * ci * 4, co * 4, images, rows, ow, ...xSteps, co * 4, kh);
    } else {
      // Strided: the loop's row step is also its filter-row step, so one output row a call,
      // x stepped by the stride along it.
      for (let ii = 0; ii < images; ii++) {
        for (let yy = 0; yy < rows; yy++) {
          const xRow = job.x + ((i + ii) * h + (y + yy) * sh) * w * ci * 4;
          const yRow = yTile + (ii * rows + yy) * rowBytes;
          fn(xRow, job.filter + k * 4, yRow + k * 4, kw * ci * 4, co * 4, 1, 1, ow, sw * ci * 4, xSteps[1], xSteps[2], co * 4, kh);
        }
      }
    }
    k += width;
  }
  // The tile is images x rows whole output rows, contiguous (whole images, or a band of one).
  const yEnd = yTile + images * rows * rowBytes;
  switch (job.epilogue) {
    case EPILOGUE.BIAS:
      simd.affineRows(yTile, yTile, yEnd, co * 4, job.ones, job.bias);
      break;
    case EPILOGUE.BIAS_RELU:
      simd.biasReluRows(yTile, yEnd, co * 4, job.bias);
      break;
    case EPILOGUE.BIAS_ADD_RELU: {
      const rTile = job.residual + (yTile - job.y);
      simd.addAffineRows(rTile, yTile, rTile + (yEnd - yTile), co * 4, job.ones, job.bias);
      simd.biasReluRows(yTile, yEnd, co * 4, job.zeros);
      break;
    }
    default:
      break;
  }
}
