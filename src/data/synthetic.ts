/**
 * The offline sample: SVHN-like 32x32 digit crops made from code, written under SVHN's own
 * file names and layout (see matWriter.ts), so the rest of the pipeline runs unchanged with
 * no network. Every output says it is synthetic: a SYNTHETIC.json marker + manifest beside
 * the files and 'SYNTHETIC' in each .mat header. Its accuracy is not SVHN's.
 *
 * One image: a centred digit (vector glyph, glyphs.ts) with random style, height, width,
 * stroke width, shift, rotation and shear; partial neighbouring digits cut by the left and
 * right edges; foreground and background colours of varied contrast and polarity; lighting
 * gradient, low-frequency background texture, sometimes a plate or wall edge; blur; noise.
 * Rasterised in plain JS: each stroke segment is a capsule, its coverage 1 - distance past
 * the stroke's half width (one pixel of anti-aliasing), the union the maximum.
 *
 * Deterministic: each split draws from its own Rng seeded from (seed, split name), so test
 * and extra are unseen by train, and the same seed gives the same bytes.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULTS, IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES, type SourceSplit } from '../config.js';
import { SvhnError, ioError } from '../errors.js';
import { fileSize, hashFile, writeJsonAtomic } from '../util/atomic.js';
import { Rng } from '../util/rng.js';
import { GLYPHS, type Glyph } from './glyphs.js';
import { writeSvhnMat, type SvhnChunk } from './matWriter.js';

export const SYNTHETIC_GENERATOR_VERSION = 1;
export const SYNTHETIC_MARKER_FILE = 'SYNTHETIC.json';
export const SYNTHETIC_NOTE =
  'Synthetic SVHN-like digits made offline by the svhn generator, NOT real SVHN: accuracy measured on them says nothing about accuracy on SVHN.';

export type SyntheticSize = 'small' | 'full';
const SPLITS: readonly SourceSplit[] = ['train', 'test', 'extra'];

/**
 * zlib level of the written files. Noisy 32x32 crops barely compress (level 1 keeps 91.8%
 * of the bytes, level 6 91.4%), and deflate, not drawing, bounds `--size full`: measured in
 * CPU time, level 1 deflates ~12.8k images/s, level 6 ~11.5k, drawing ~17k. Level 1 is
 * still an ordinary zlib stream.
 */
const ZLIB_LEVEL = 1;

/** Images per generated chunk: small enough that deflate (thread pool) overlaps generation. */
const CHUNK_IMAGES = 256;

/** SVHN train's digit counts (index = digit; SVHN stores 0 as 10): 1 most common, as in real house numbers. */
const SVHN_CLASS_COUNTS = [4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659];
const CLASS_CDF = (() => {
  const total = SVHN_CLASS_COUNTS.reduce((a, b) => a + b, 0);
  let acc = 0;
  return SVHN_CLASS_COUNTS.map((c) => (acc += c / total));
})();

const PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;
const NOISE_TABLE_SIZE = 1 << 16;

export interface GenerateSyntheticOptions {
  dataDir: string;
  size: SyntheticSize;
  seed: number;
  splits: SourceSplit[];
  onProgress?: (split: string, done: number, total: number) => void;
  force?: boolean; // regenerate even when a file from the same seed, size and version is present
}

export interface SyntheticFile {
  split: string;
  path: string;
  count: number;
  bytes: number;
  sha256: string;
}

export interface SyntheticManifest {
  synthetic: true;
  note: string;
  generator: { name: string; version: number };
  seed: number;
  size: SyntheticSize;
  counts: Record<string, number>;
  files: Array<{ split: string; file: string; count: number; bytes: number; sha256: string; seed: number; size: SyntheticSize; splitSeed: number; classCounts: number[] }>;
}

/** The seed of one split's stream: FNV-1a over "seed:split", so splits never share images. */
export function splitSeed(seed: number, split: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${split}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Draws images into preallocated buffers. Holds scratch space, so one instance per stream;
 * all randomness comes from the Rng passed to `render`.
 */
export class SyntheticRenderer {
  private readonly cov = new Float32Array(PIXELS); // ink coverage 0..1
  private readonly tmp = new Float32Array(PIXELS);
  private readonly tex = new Float32Array(PIXELS); // background texture, 0..255 units
  private readonly grid = new Float32Array(TEX_GRID * TEX_GRID);
  private readonly warp = new Float64Array(6); // x amplitude px, x frequency, x phase; the same for y
  private readonly noise: Float32Array; // standard normals, read at a random offset per image

  constructor() {
    // A fixed table (its own seed): noise is drawn by offset, three cheap reads per pixel.
    const r = new Rng(0x5eed);
    this.noise = new Float32Array(NOISE_TABLE_SIZE + 2); // +2: a pixel reads three in a row
    for (let i = 0; i < NOISE_TABLE_SIZE + 2; i++) this.noise[i] = r.normal();
  }

  /** Renders one image NHWC into out[off .. off + 3072) and returns its digit. */
  render(rng: Rng, out: Uint8Array, off: number): number {
    const u = rng.next();
    let digit = 0;
    while (digit < NUM_CLASSES - 1 && u >= CLASS_CDF[digit]!) digit++;
    const styles = GLYPHS[digit]!;
    const glyph = styles[rng.int(styles.length)]!;

    // Geometry, in pixels. Height 14..28 px of 32, as in SVHN's crops (digit boxes widened to squares).
    const height = rng.uniform(14, 28);
    const widthScale = rng.uniform(0.75, 1.3);
    const halfStroke = Math.max(0.6, (height * rng.uniform(0.07, 0.24)) / 2);
    const cx = IMAGE_WIDTH / 2 + rng.uniform(-3, 3);
    const cy = IMAGE_HEIGHT / 2 + rng.uniform(-2, 2);
    const rot = Math.max(-0.22, Math.min(0.22, rng.normal() * 0.1)); // radians
    const shear = rng.next() < 0.3 ? rng.uniform(-0.1, 0.3) : 0; // italic leans right more often

    // A gentle smooth warp (font variety, slight perspective): box offsets bent by sine waves.
    const warp = this.warp;
    if (rng.next() < 0.6) {
      warp[0] = rng.uniform(-0.05, 0.05) * height;
      warp[1] = rng.uniform(1, 2.5) * Math.PI;
      warp[2] = rng.uniform(0, 2 * Math.PI);
      warp[3] = rng.uniform(-0.04, 0.04) * height;
      warp[4] = rng.uniform(1, 2.5) * Math.PI;
      warp[5] = rng.uniform(0, 2 * Math.PI);
    } else warp.fill(0);

    this.cov.fill(0);
    const mainWidth = height * glyph.aspect * widthScale;
    this.drawGlyph(glyph, cx, cy, height, mainWidth, rot, shear, halfStroke);

    // Neighbouring digits of the same number, cut by the edges.
    const cos = Math.cos(rot);
    const sin = Math.sin(rot);
    for (const side of [-1, 1]) {
      if (rng.next() >= 0.7) continue;
      const nd = rng.int(NUM_CLASSES);
      const nstyles = GLYPHS[nd]!;
      const ng = nstyles[rng.int(nstyles.length)]!;
      const nWidth = height * ng.aspect * widthScale;
      const dist = mainWidth / 2 + nWidth / 2 + 2 * halfStroke + height * rng.uniform(0.03, 0.35);
      this.drawGlyph(ng, cx + side * dist * cos, cy + side * dist * sin, height, nWidth, rot, shear, halfStroke);
    }

    // Blur (camera focus, upscaled small crops): 0, 1 or 2 passes of a [1 2 1] kernel, mixed in.
    const b = rng.next();
    if (b < 0.55) this.blur(rng.uniform(0.4, 1));
    if (b < 0.2) this.blur(1);

    // Colours: luminance contrast 0.2..0.75 of full scale, either polarity, tinted.
    const contrast = rng.uniform(0.2, 0.75);
    const hi = rng.uniform(Math.max(contrast, 0.3), 1);
    const lo = hi - contrast;
    const darkOnLight = rng.next() < 0.55;
    const bgL = darkOnLight ? hi : lo;
    const fgL = darkOnLight ? lo : hi;
    const bgSat = rng.uniform(0, 0.3);
    const fgSat = rng.next() < 0.3 ? bgSat : rng.uniform(0, 0.3);
    const bgT = tint(rng);
    const fgT = rng.next() < 0.3 ? bgT : tint(rng);
    const bg0 = 255 * (bgL + bgSat * bgT[0]!);
    const bg1 = 255 * (bgL + bgSat * bgT[1]!);
    const bg2 = 255 * (bgL + bgSat * bgT[2]!);
    const fg0 = 255 * (fgL + fgSat * fgT[0]!);
    const fg1 = 255 * (fgL + fgSat * fgT[1]!);
    const fg2 = 255 * (fgL + fgSat * fgT[2]!);

    // Lighting: a multiplicative linear gradient over the whole crop.
    const gx = rng.normal() * 0.01;
    const gy = rng.normal() * 0.01;

    // Background texture: a 5x5 grid of random values, bilinearly upsampled.
    this.texture(rng, Math.min(rng.uniform(0, 22), 0.25 * 255 * contrast));

    // Sometimes a straight edge across the background (plate border, wall, door frame).
    let ex = 0;
    let ey = 0;
    let ed = 0;
    let e0 = 0;
    let e1 = 0;
    let e2 = 0;
    if (rng.next() < 0.25) {
      const a = rng.uniform(0, Math.PI);
      ex = Math.cos(a);
      ey = Math.sin(a);
      // The edge passes 8..15 px from the centre, so it rarely crosses the digit.
      ed = (rng.next() < 0.5 ? -1 : 1) * rng.uniform(8, 15);
      const delta = rng.uniform(-70, 70);
      e0 = delta + rng.uniform(-20, 20);
      e1 = delta + rng.uniform(-20, 20);
      e2 = delta + rng.uniform(-20, 20);
    }

    const sigma = Math.min(rng.uniform(1, 10), 0.2 * 255 * contrast); // noise never drowns the digit
    let ni = rng.int(NOISE_TABLE_SIZE);
    const noise = this.noise;
    const cov = this.cov;
    const tex = this.tex;
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      const dy = y - 15.5;
      for (let x = 0; x < IMAGE_WIDTH; x++) {
        const dx = x - 15.5;
        const p = y * IMAGE_WIDTH + x;
        const a = cov[p]!;
        const na = 1 - a;
        const light = 1 + gx * dx + gy * dy;
        const t = tex[p]!;
        const beyond = (ex !== 0 || ey !== 0) && dx * ex + dy * ey > ed ? 1 : 0;
        const o = off + p * 3;
        ni = (ni + 3) & (NOISE_TABLE_SIZE - 1);
        // Mostly luminance noise with a little chroma, as in camera crops.
        const nl = sigma * noise[ni]!;
        const nc1 = 0.3 * sigma * noise[ni + 1]!;
        const nc2 = 0.3 * sigma * noise[ni + 2]!;
        out[o] = clampByte(((bg0 + t + beyond * e0) * na + fg0 * a) * light + nl + nc1);
        out[o + 1] = clampByte(((bg1 + t + beyond * e1) * na + fg1 * a) * light + nl + nc2);
        out[o + 2] = clampByte(((bg2 + t + beyond * e2) * na + fg2 * a) * light + nl - nc1);
      }
    }
    return digit;
  }

  /** Draws a glyph's strokes into the coverage map: box (width x height px) centred at (cx, cy). */
  private drawGlyph(g: Glyph, cx: number, cy: number, height: number, width: number, rot: number, shear: number, halfStroke: number): void {
    const cos = Math.cos(rot);
    const sin = Math.sin(rot);
    const w = this.warp;
    for (const [u0, v0, u1, v1] of g.segments) {
      // Box units -> pixels: centre, scale, shear (top leans right), rotate about the centre.
      const X0 = (u0 - 0.5) * width + shear * (0.5 - v0) * height + (w[0] !== 0 ? w[0]! * Math.sin(w[1]! * v0 + w[2]!) : 0);
      const Y0 = (v0 - 0.5) * height + (w[3] !== 0 ? w[3]! * Math.sin(w[4]! * u0 + w[5]!) : 0);
      const X1 = (u1 - 0.5) * width + shear * (0.5 - v1) * height + (w[0] !== 0 ? w[0]! * Math.sin(w[1]! * v1 + w[2]!) : 0);
      const Y1 = (v1 - 0.5) * height + (w[3] !== 0 ? w[3]! * Math.sin(w[4]! * u1 + w[5]!) : 0);
      this.capsule(cx + cos * X0 - sin * Y0, cy + sin * X0 + cos * Y0, cx + cos * X1 - sin * Y1, cy + sin * X1 + cos * Y1, halfStroke);
    }
  }

  /** Coverage of a capsule (segment a-b, radius r), anti-aliased over one pixel; union by max. */
  private capsule(ax: number, ay: number, bx: number, by: number, r: number): void {
    const reach = r + 0.5;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - reach));
    const x1 = Math.min(IMAGE_WIDTH - 1, Math.ceil(Math.max(ax, bx) + reach));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - reach));
    const y1 = Math.min(IMAGE_HEIGHT - 1, Math.ceil(Math.max(ay, by) + reach));
    if (x0 > x1 || y0 > y1) return;
    const dx = bx - ax;
    const dy = by - ay;
    const l2 = dx * dx + dy * dy;
    const inv = l2 > 1e-12 ? 1 / l2 : 0;
    const reach2 = reach * reach;
    const cov = this.cov;
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5 - ay;
      const row = y * IMAGE_WIDTH;
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5 - ax;
        let t = (px * dx + py * dy) * inv;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const qx = px - t * dx;
        const qy = py - t * dy;
        const d2 = qx * qx + qy * qy;
        if (d2 >= reach2) continue;
        let c = reach - Math.sqrt(d2);
        if (c > 1) c = 1;
        if (c > cov[row + x]!) cov[row + x] = c;
      }
    }
  }

  /** One separable [1 2 1]/4 blur of the coverage, mixed with the sharp map by `amount`. */
  private blur(amount: number): void {
    const W = IMAGE_WIDTH;
    const H = IMAGE_HEIGHT;
    const cov = this.cov;
    const tmp = this.tmp;
    for (let y = 0; y < H; y++) {
      const r = y * W;
      for (let x = 0; x < W; x++) {
        const l = cov[r + (x > 0 ? x - 1 : 0)]!;
        const rr = cov[r + (x < W - 1 ? x + 1 : W - 1)]!;
        tmp[r + x] = 0.25 * l + 0.5 * cov[r + x]! + 0.25 * rr;
      }
    }
    for (let y = 0; y < H; y++) {
      const up = (y > 0 ? y - 1 : 0) * W;
      const dn = (y < H - 1 ? y + 1 : H - 1) * W;
      const r = y * W;
      for (let x = 0; x < W; x++) {
        const v = 0.25 * tmp[up + x]! + 0.5 * tmp[r + x]! + 0.25 * tmp[dn + x]!;
        cov[r + x] = cov[r + x]! + amount * (v - cov[r + x]!);
      }
    }
  }

  /** Low-frequency texture: a 5x5 grid of N(0, amplitude) values, bilinear over 32x32. */
  private texture(rng: Rng, amplitude: number): void {
    const grid = this.grid;
    for (let i = 0; i < grid.length; i++) grid[i] = rng.normal() * amplitude;
    const tex = this.tex;
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      const iy = TEX_CELL[y]!;
      const fy = TEX_FRAC[y]!;
      const r0 = iy * TEX_GRID;
      const r1 = r0 + TEX_GRID;
      for (let x = 0; x < IMAGE_WIDTH; x++) {
        const ix = TEX_CELL[x]!;
        const fx = TEX_FRAC[x]!;
        const top = grid[r0 + ix]! + (grid[r0 + ix + 1]! - grid[r0 + ix]!) * fx;
        const bottom = grid[r1 + ix]! + (grid[r1 + ix + 1]! - grid[r1 + ix]!) * fx;
        tex[y * IMAGE_WIDTH + x] = top + (bottom - top) * fy;
      }
    }
  }
}

/** Texture grid size and, per pixel row or column, its grid cell and the fraction across it. */
const TEX_GRID = 5;
const TEX_CELL = new Int32Array(IMAGE_WIDTH);
const TEX_FRAC = new Float32Array(IMAGE_WIDTH);
for (let x = 0; x < IMAGE_WIDTH; x++) {
  const g = (x * (TEX_GRID - 1)) / (IMAGE_WIDTH - 1);
  TEX_CELL[x] = Math.min(TEX_GRID - 2, Math.floor(g));
  TEX_FRAC[x] = g - TEX_CELL[x]!;
}

/** A colour tint with zero mean over the channels, so it shifts hue but not (mean) luminance. */
function tint(rng: Rng): [number, number, number] {
  const t: [number, number, number] = [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)];
  const m = (t[0] + t[1] + t[2]) / 3;
  return [t[0] - m, t[1] - m, t[2] - m];
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
}

/** `count` images from `rng`, NHWC uint8, with their digits 0..9. For tests, grids and benchmarks. */
export function generateImages(rng: Rng, count: number, renderer = new SyntheticRenderer()): SvhnChunk {
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = renderer.render(rng, images, i * IMAGE_BYTES);
  return { images, labels };
}

/** The images of one split as chunks; yields to the event loop between chunks so deflate keeps up. */
async function* syntheticChunks(rng: Rng, count: number, classCounts: number[]): AsyncGenerator<SvhnChunk> {
  const renderer = new SyntheticRenderer();
  for (let done = 0; done < count; ) {
    const k = Math.min(CHUNK_IMAGES, count - done);
    const chunk = generateImages(rng, k, renderer);
    for (const l of chunk.labels) classCounts[l]!++;
    done += k;
    yield chunk;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function matHeaderText(seed: number, size: SyntheticSize, split: string): string {
  return `MATLAB 5.0 MAT-file, written by svhn: SYNTHETIC offline sample, NOT real SVHN (v${SYNTHETIC_GENERATOR_VERSION} ${size} seed ${seed} ${split})`;
}

async function readManifest(path: string): Promise<SyntheticManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as SyntheticManifest;
    return m && m.synthetic === true && Array.isArray(m.files) ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes <dataDir>/{split}_32x32.mat for each split asked, then <dataDir>/SYNTHETIC.json.
 * A file already made with the same seed, size and generator version (sha256 checked) is
 * kept unless `force`. Splits not asked for keep their manifest entries if their files are
 * still there.
 */
export async function generateSynthetic(opts: GenerateSyntheticOptions): Promise<{ files: SyntheticFile[] }> {
  const { dataDir, size, seed } = opts;
  if (size !== 'small' && size !== 'full') throw new SvhnError('BAD_FLAG', `--size: expected small or full, got ${JSON.stringify(size)}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new SvhnError('BAD_FLAG', `--seed: expected a non-negative integer, got ${JSON.stringify(seed)}`);
  const splits = [...new Set(opts.splits)];
  if (splits.length === 0) throw new SvhnError('BAD_FLAG', '--split: expected one or more of train,test,extra, got none');
  for (const s of splits) {
    if (!SPLITS.includes(s)) throw new SvhnError('BAD_FLAG', `--split: expected train, test or extra, got ${JSON.stringify(s)}`);
  }
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (e) {
    throw ioError(dataDir, 'create', e);
  }
  const markerPath = join(dataDir, SYNTHETIC_MARKER_FILE);
  const previous = await readManifest(markerPath);
  const entries = new Map<string, SyntheticManifest['files'][number]>();
  for (const f of previous?.files ?? []) {
    if (!splits.includes(f.split as SourceSplit) && (await fileSize(join(dataDir, f.file))) === f.bytes) entries.set(f.split, f);
  }

  const files: SyntheticFile[] = [];
  for (const split of splits) {
    const count = DEFAULTS.synthetic.sizes[size][split];
    const file = `${split}_32x32.mat`;
    const path = join(dataDir, file);
    const seedOfSplit = splitSeed(seed, split);
    const old = previous?.files.find((f) => f.split === split);
    if (
      !opts.force &&
      old &&
      previous!.generator?.version === SYNTHETIC_GENERATOR_VERSION &&
      old.seed === seed &&
      old.size === size &&
      old.count === count &&
      (await fileSize(path)) === old.bytes &&
      (await hashFile(path)).sha256 === old.sha256
    ) {
      entries.set(split, old);
      files.push({ split, path, count, bytes: old.bytes, sha256: old.sha256 });
      opts.onProgress?.(split, count, count);
      continue;
    }
    const classCounts = new Array<number>(NUM_CLASSES).fill(0);
    const rng = new Rng(seedOfSplit);
    const { bytes, sha256 } = await writeSvhnMat(path, {
      count,
      chunks: syntheticChunks(rng, count, classCounts),
      header: matHeaderText(seed, size, split),
      level: ZLIB_LEVEL,
      onProgress: (done, total) => opts.onProgress?.(split, done, total),
    });
    entries.set(split, { split, file, count, bytes, sha256, seed, size, splitSeed: seedOfSplit, classCounts });
    files.push({ split, path, count, bytes, sha256 });
  }

  const ordered = SPLITS.filter((s) => entries.has(s)).map((s) => entries.get(s)!);
  const manifest: SyntheticManifest = {
    synthetic: true,
    note: SYNTHETIC_NOTE,
    generator: { name: 'svhn synthetic digits', version: SYNTHETIC_GENERATOR_VERSION },
    seed,
    size,
    counts: Object.fromEntries(ordered.map((f) => [f.split, f.count])),
    files: ordered,
  };
  await writeJsonAtomic(markerPath, manifest);
  return { files };
}
