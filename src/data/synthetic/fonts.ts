/**
 * Real typefaces for the offline sample: the digit outlines of the font packages svhn depends
 * on (@fontsource, SIL Open Font License), parsed with opentype.js and flattened once into
 * polygons that raster.ts fills. House numbers are set in hundreds of faces, so the sample
 * draws from many families: grotesques and DIN-like condensed faces (the common plate look),
 * serifs and slabs, rounded, monospace, display, stencil-like and hand-painted scripts.
 *
 * Outlines are in em units with y pointing down and the baseline at y = 0, so digits of one
 * face share a baseline and their advances space a number as the face sets it.
 *
 * Deterministic: families in this list's order, files within a family sorted by name; the
 * `fontSetId` (a hash over every file used) goes into the sample's manifest, so a change of
 * font packages shows as a different sample.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import opentype, { type PathCommand } from 'opentype.js';
import { SvhnError } from '../../errors.js';

/** The @fontsource families (package names without the scope); every one is a dependency. */
export const FONT_FAMILIES = [
  // grotesques and plate sans
  'roboto', 'arimo', 'inter', 'open-sans', 'lato', 'montserrat', 'work-sans', 'pt-sans', 'fira-sans', 'ubuntu',
  'atkinson-hyperlegible', 'b612', 'poppins', 'kanit', 'josefin-sans', 'quicksand', 'nunito', 'varela-round', 'comfortaa', 'fredoka',
  // DIN-like, condensed and tall
  'barlow', 'barlow-condensed', 'roboto-condensed', 'archivo-narrow', 'oswald', 'fjalla-one', 'bebas-neue', 'anton', 'antonio',
  'league-gothic', 'teko', 'saira-condensed', 'yanone-kaffeesatz', 'staatliches', 'rajdhani', 'chakra-petch', 'exo-2', 'passion-one',
  // serifs and slabs
  'noto-serif', 'pt-serif', 'merriweather', 'libre-baskerville', 'playfair-display', 'crimson-text', 'eb-garamond', 'lora',
  'bodoni-moda', 'abril-fatface', 'dm-serif-display', 'old-standard-tt', 'ibm-plex-serif', 'cinzel', 'roboto-slab', 'arvo',
  'zilla-slab', 'alfa-slab-one',
  // monospace and typewriter
  'roboto-mono', 'courier-prime', 'space-mono', 'overpass-mono', 'special-elite',
  // display
  'russo-one', 'black-ops-one', 'bungee', 'righteous', 'orbitron', 'bangers',
  // scripts and hand-painted
  'pacifico', 'satisfy', 'dancing-script', 'lobster', 'caveat', 'kalam', 'patrick-hand', 'permanent-marker',
] as const;

/** Line segments per quadratic / cubic curve when flattening: under 0.1 px of chord error at 64 px glyphs. */
const QUAD_STEPS = 6;
const CUBIC_STEPS = 8;

/** One digit of one face: closed polygons (x, y pairs, em units, y down) and its metrics. */
export interface DigitOutline {
  contours: Float32Array[];
  xMin: number;
  xMax: number;
  yMin: number; // top of the ink (negative: above the baseline)
  yMax: number; // bottom of the ink
  advance: number; // advance width, em units
}

export interface FontFace {
  family: string;
  file: string; // e.g. oswald-latin-700-normal.woff
  digits: DigitOutline[]; // index = digit
}

export interface FontSet {
  families: FontFace[][]; // FONT_FAMILIES order; each family's faces sorted by file name
  faceCount: number;
  fontSetId: string; // sha256 over the files' names and bytes, first 16 hex digits
}

let cached: FontSet | undefined;

/** Every face of every family, parsed once per process (about 1.5 s for ~550 files). */
export function loadFontSet(): FontSet {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const hash = createHash('sha256');
  const families: FontFace[][] = [];
  let faceCount = 0;
  for (const family of FONT_FAMILIES) {
    let dir: string;
    try {
      dir = join(dirname(require.resolve(`@fontsource/${family}/package.json`)), 'files');
    } catch {
      throw new SvhnError('MISSING_DATA', `font package @fontsource/${family} is not installed: expected it in node_modules (run npm install)`);
    }
    // The Latin subset's WOFF files, every weight, upright and italic.
    const files = readdirSync(dir).filter((f) => /-latin-\d+-(normal|italic)\.woff$/.test(f)).sort();
    const faces: FontFace[] = [];
    for (const file of files) {
      const bytes = readFileSync(join(dir, file));
      hash.update(file).update(bytes);
      faces.push({ family, file, digits: readDigits(bytes, join(dir, file)) });
    }
    if (faces.length === 0) throw new SvhnError('MISSING_DATA', `@fontsource/${family}: expected Latin .woff files in ${dir}, found none`);
    families.push(faces);
    faceCount += faces.length;
  }
  cached = { families, faceCount, fontSetId: hash.digest('hex').slice(0, 16) };
  return cached;
}

function readDigits(bytes: Buffer, path: string): DigitOutline[] {
  let font;
  try {
    font = opentype.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  } catch (e) {
    throw new SvhnError('BAD_INPUT', `cannot parse font ${path}: ${(e as Error).message}`);
  }
  const digits: DigitOutline[] = [];
  for (let d = 0; d <= 9; d++) {
    const glyph = font.charToGlyph(String(d));
    if (!glyph || glyph.index === 0) throw new SvhnError('BAD_INPUT', `font ${path} has no glyph for the digit ${d}`);
    // fontSize = unitsPerEm: path coordinates are font units, y already flipped to point down.
    const commands = glyph.getPath(0, 0, font.unitsPerEm).commands;
    const scale = 1 / font.unitsPerEm;
    const outline = flatten(commands, scale);
    outline.advance = (glyph.advanceWidth ?? font.unitsPerEm * 0.6) * scale;
    digits.push(outline);
  }
  return digits;
}

/** Path commands -> closed polygons, curves cut into QUAD_STEPS / CUBIC_STEPS segments. */
function flatten(commands: PathCommand[], scale: number): DigitOutline {
  const contours: Float32Array[] = [];
  let pts: number[] = [];
  let x = 0;
  let y = 0;
  const close = () => {
    if (pts.length >= 6) contours.push(Float32Array.from(pts));
    pts = [];
  };
  for (const c of commands) {
    if (c.type === 'M') {
      close();
      x = c.x * scale;
      y = c.y * scale;
      pts.push(x, y);
    } else if (c.type === 'L') {
      x = c.x * scale;
      y = c.y * scale;
      pts.push(x, y);
    } else if (c.type === 'Q') {
      const [x1, y1, x2, y2] = [c.x1 * scale, c.y1 * scale, c.x * scale, c.y * scale];
      for (let i = 1; i <= QUAD_STEPS; i++) {
        const t = i / QUAD_STEPS;
        const u = 1 - t;
        pts.push(u * u * x + 2 * u * t * x1 + t * t * x2, u * u * y + 2 * u * t * y1 + t * t * y2);
      }
      x = x2;
      y = y2;
    } else if (c.type === 'C') {
      const [x1, y1, x2, y2, x3, y3] = [c.x1 * scale, c.y1 * scale, c.x2 * scale, c.y2 * scale, c.x * scale, c.y * scale];
      for (let i = 1; i <= CUBIC_STEPS; i++) {
        const t = i / CUBIC_STEPS;
        const u = 1 - t;
        const a = u * u * u;
        const b = 3 * u * u * t;
        const cc = 3 * u * t * t;
        const d = t * t * t;
        pts.push(a * x + b * x1 + cc * x2 + d * x3, a * y + b * y1 + cc * y2 + d * y3);
      }
      x = x3;
      y = y3;
    } else close();
  }
  close();
  let xMin = Infinity;
  let xMax = -Infinity;
  let yMin = Infinity;
  let yMax = -Infinity;
  for (const p of contours) {
    for (let i = 0; i < p.length; i += 2) {
      xMin = Math.min(xMin, p[i]!);
      xMax = Math.max(xMax, p[i]!);
      yMin = Math.min(yMin, p[i + 1]!);
      yMax = Math.max(yMax, p[i + 1]!);
    }
  }
  return { contours, xMin, xMax, yMin, yMax, advance: 0 };
}
