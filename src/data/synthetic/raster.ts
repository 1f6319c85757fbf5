/**
 * The small raster pieces the offline sample needs, in plain JS so that the same seed gives
 * the same bytes on every machine (no native renderer with CPU-specific rounding):
 *
 * - PolygonRaster: fills glyph outlines (nonzero winding, so a face's overlapping contours
 *   and neighbouring digits union) with anti-aliased coverage: 4 sub-scanlines per pixel
 *   row, exact horizontal span coverage within each.
 * - resizeBicubic: Keys' cubic (a = -0.5), widened when shrinking so it averages instead of
 *   aliasing; the ringing it adds when enlarging is the look of SVHN's upscaled crops.
 * - gaussianBlur: separable, edges clamped.
 *
 * Images here are float RGB, interleaved, row-major, values 0..255.
 */

/** Sub-scanlines per pixel row: 5 levels of vertical anti-aliasing, which the later blur and resize smooth out. */
const SUBSAMPLES = 4;

/** A projective map (x, y) -> ((a x + b y + c) / w, (d x + e y + f) / w), w = g x + h y + 1. */
export type Projective = readonly [number, number, number, number, number, number, number, number];

export class PolygonRaster {
  private edges = new Float64Array(4 * 1024); // x0, y0, x1, y1 with y0 < y1
  private dirs = new Int8Array(1024); // +1 for an edge that ran downwards, -1 upwards
  private count = 0;
  private order = new Int32Array(1024);
  private xs = new Float64Array(256);
  private ws = new Int8Array(256);

  clear(): void {
    this.count = 0;
  }

  /** Adds one closed contour (x, y pairs) mapped through m. */
  addContour(pts: Float32Array, m: Projective): void {
    const n = pts.length >> 1;
    let px = 0;
    let py = 0;
    for (let i = 0; i <= n; i++) {
      const x = pts[(i % n) * 2]!;
      const y = pts[(i % n) * 2 + 1]!;
      const w = m[6] * x + m[7] * y + 1;
      const X = (m[0] * x + m[1] * y + m[2]) / w;
      const Y = (m[3] * x + m[4] * y + m[5]) / w;
      if (i > 0) this.addEdge(px, py, X, Y);
      px = X;
      py = Y;
    }
  }

  private addEdge(x0: number, y0: number, x1: number, y1: number): void {
    if (y0 === y1) return; // horizontal edges cross no scanline
    if (this.count === this.dirs.length) this.grow();
    const e = this.count * 4;
    if (y0 < y1) {
      this.edges[e] = x0;
      this.edges[e + 1] = y0;
      this.edges[e + 2] = x1;
      this.edges[e + 3] = y1;
      this.dirs[this.count] = 1;
    } else {
      this.edges[e] = x1;
      this.edges[e + 1] = y1;
      this.edges[e + 2] = x0;
      this.edges[e + 3] = y0;
      this.dirs[this.count] = -1;
    }
    this.count++;
  }

  private grow(): void {
    const n = this.dirs.length * 2;
    const edges = new Float64Array(n * 4);
    edges.set(this.edges);
    const dirs = new Int8Array(n);
    dirs.set(this.dirs);
    this.edges = edges;
    this.dirs = dirs;
    this.order = new Int32Array(n);
  }

  /** Adds the coverage (0..1) of the contours so far to cov (width x height, zeroed by the caller). */
  fill(cov: Float32Array, width: number, height: number): void {
    const { edges, dirs } = this;
    // Edges by their top, so each sub-scanline only looks at the ones that have started.
    const order = this.order;
    for (let i = 0; i < this.count; i++) order[i] = i;
    const sorted = order.subarray(0, this.count).sort((a, b) => edges[a * 4 + 1]! - edges[b * 4 + 1]!);
    const active: number[] = [];
    let next = 0;
    const weight = 1 / SUBSAMPLES;
    for (let s = 0; s < height * SUBSAMPLES; s++) {
      const sy = (s + 0.5) / SUBSAMPLES;
      while (next < sorted.length && edges[sorted[next]! * 4 + 1]! <= sy) active.push(sorted[next++]!);
      // Crossings of this sub-scanline, kept sorted by x (insertion sort: a handful per line).
      let n = 0;
      for (let k = active.length - 1; k >= 0; k--) {
        const e = active[k]! * 4;
        if (edges[e + 3]! <= sy) {
          active[k] = active[active.length - 1]!;
          active.pop();
          continue;
        }
        if (edges[e + 1]! > sy) continue;
        const t = (sy - edges[e + 1]!) / (edges[e + 3]! - edges[e + 1]!);
        const x = edges[e]! + t * (edges[e + 2]! - edges[e]!);
        if (n === this.xs.length) this.growCrossings();
        let j = n++;
        while (j > 0 && this.xs[j - 1]! > x) {
          this.xs[j] = this.xs[j - 1]!;
          this.ws[j] = this.ws[j - 1]!;
          j--;
        }
        this.xs[j] = x;
        this.ws[j] = dirs[active[k]!]!;
      }
      // Spans where the winding number is not zero.
      const row = Math.floor(s / SUBSAMPLES) * width;
      let winding = 0;
      for (let j = 0; j < n; j++) {
        const before = winding;
        winding += this.ws[j]!;
        if (before === 0 && winding !== 0) {
          let k = j + 1;
          let w = winding;
          while (k < n && w !== 0) w += this.ws[k++]!;
          addSpan(cov, row, width, this.xs[j]!, this.xs[k - 1]!, weight);
          winding = 0;
          j = k - 1;
        }
      }
    }
  }

  private growCrossings(): void {
    const xs = new Float64Array(this.xs.length * 2);
    xs.set(this.xs);
    const ws = new Int8Array(this.ws.length * 2);
    ws.set(this.ws);
    this.xs = xs;
    this.ws = ws;
  }
}

/** Adds weight x (the part of each pixel inside [xa, xb)) to one row of cov. */
function addSpan(cov: Float32Array, row: number, width: number, xa: number, xb: number, weight: number): void {
  if (xa < 0) xa = 0;
  if (xb > width) xb = width;
  if (xb <= xa) return;
  const ia = Math.floor(xa);
  const ib = Math.floor(xb);
  if (ia === ib) {
    cov[row + ia] = cov[row + ia]! + (xb - xa) * weight;
    return;
  }
  cov[row + ia] = cov[row + ia]! + (ia + 1 - xa) * weight;
  for (let i = ia + 1; i < ib; i++) cov[row + i] = cov[row + i]! + weight;
  if (ib < width) cov[row + ib] = cov[row + ib]! + (xb - ib) * weight;
}

/** Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom), as in PIL's and MATLAB's bicubic. */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/**
 * A 1-D filter as taps: output index i reads the source from first[i] to first[i] + taps - 1
 * (clamped to the edge), with weights[i * taps .. (i + 1) * taps). A resize and a blur are both one.
 */
interface Taps {
  first: Int32Array;
  taps: number;
  weights: Float64Array;
}

/** Keys' cubic from srcSize to dstSize samples: normalised weights, support widened when shrinking. */
function cubicTaps(srcSize: number, dstSize: number): Taps {
  const scale = srcSize / dstSize;
  const support = 2 * Math.max(1, scale);
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(dstSize);
  const weights = new Float64Array(dstSize * taps);
  const stretch = 1 / Math.max(1, scale);
  for (let i = 0; i < dstSize; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const lo = Math.floor(centre - support) + 1;
    first[i] = lo;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const w = cubic((lo + t - centre) * stretch);
      weights[i * taps + t] = w;
      sum += w;
    }
    for (let t = 0; t < taps; t++) weights[i * taps + t]! /= sum;
  }
  return { first, taps, weights };
}

const tapsCache = new Map<number, Taps>();
function cachedCubicTaps(srcSize: number, dstSize: number): Taps {
  const key = srcSize * 65536 + dstSize;
  let t = tapsCache.get(key);
  if (!t) tapsCache.set(key, (t = cubicTaps(srcSize, dstSize)));
  return t;
}

/** A normalised Gaussian (sigma in samples, 2.5 sigma each side) centred on every one of size samples. */
function gaussianTaps(size: number, sigma: number): Taps {
  const radius = Math.max(1, Math.ceil(2.5 * sigma));
  const taps = 2 * radius + 1;
  const k = new Float64Array(taps);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k[i + radius] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < taps; i++) k[i]! /= sum;
  const first = new Int32Array(size);
  const weights = new Float64Array(size * taps);
  for (let i = 0; i < size; i++) {
    first[i] = i - radius;
    weights.set(k, i * taps);
  }
  return { first, taps, weights };
}

/**
 * One separable pass over a float RGB image of width x height: filters along x (each row
 * becomes first.length samples wide) or along y (each column first.length samples tall).
 * Sums in float64, edges clamped.
 */
function filterPass(src: Float32Array, width: number, height: number, dst: Float32Array, along: 'x' | 'y', k: Taps): void {
  const { first, taps, weights } = k;
  const inLen = along === 'x' ? width : height;
  const outLen = first.length;
  const lines = along === 'x' ? height : width;
  const outWidth = along === 'x' ? outLen : width;
  for (let line = 0; line < lines; line++) {
    for (let i = 0; i < outLen; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let t = 0; t < taps; t++) {
        const w = weights[i * taps + t]!;
        if (w === 0) continue;
        let j = first[i]! + t;
        j = j < 0 ? 0 : j >= inLen ? inLen - 1 : j;
        const p = (along === 'x' ? line * width + j : j * width + line) * 3;
        r += w * src[p]!;
        g += w * src[p + 1]!;
        b += w * src[p + 2]!;
      }
      const q = (along === 'x' ? line * outWidth + i : i * outWidth + line) * 3;
      dst[q] = r;
      dst[q + 1] = g;
      dst[q + 2] = b;
    }
  }
}

/** Bicubic resize of a square float RGB image (size x size) to out (outSize x outSize), edges clamped. */
export function resizeBicubic(src: Float32Array, size: number, out: Float32Array, outSize: number, scratch: Float32Array): void {
  const k = cachedCubicTaps(size, outSize);
  filterPass(src, size, size, scratch, 'x', k); // size rows x outSize columns
  filterPass(scratch, outSize, size, out, 'y', k);
}

/**
 * Bicubic resize of a float RGB image (width x height) to out (outWidth x outHeight), edges
 * clamped; scratch holds height x outWidth pixels. Taps are not cached: whole photos come in
 * too many sizes for the crops' cache.
 */
export function resizeBicubicRect(src: Float32Array, width: number, height: number, out: Float32Array, outWidth: number, outHeight: number, scratch: Float32Array): void {
  filterPass(src, width, height, scratch, 'x', cubicTaps(width, outWidth)); // height rows x outWidth columns
  filterPass(scratch, outWidth, height, out, 'y', cubicTaps(height, outHeight));
}

/** Separable Gaussian blur (sigma in pixels) of a square float RGB image, in place; scratch holds one image. */
export function gaussianBlur(img: Float32Array, size: number, sigma: number, scratch: Float32Array): void {
  gaussianBlurRect(img, size, size, sigma, scratch);
}

/** Separable Gaussian blur (sigma in pixels) of a width x height float RGB image, in place; scratch holds one image. */
export function gaussianBlurRect(img: Float32Array, width: number, height: number, sigma: number, scratch: Float32Array): void {
  if (sigma <= 0) return;
  filterPass(img, width, height, scratch, 'x', gaussianTaps(width, sigma));
  filterPass(scratch, width, height, img, 'y', gaussianTaps(height, sigma));
}
