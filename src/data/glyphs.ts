/**
 * Vector digit glyphs for the offline synthetic sample, defined in code so the output does
 * not depend on system fonts. Each glyph is a set of stroke centre lines in a unit box
 * (u right, v down, both 0..1) plus an aspect ratio (box width / height). Curves are
 * flattened to line segments once, at load; the renderer draws each segment as a capsule
 * (a segment with round ends) of the chosen stroke width.
 *
 * Several styles per digit, as house numbers vary: round and flat-topped 3s, open and
 * closed 4s, plain, flagged and serifed 1s, 7s with and without a bar, curved and straight
 * stems on 6 and 9, oval and stadium 0s.
 */

/** One stroke segment in box units: (x0, y0) -> (x1, y1). */
export type Segment = readonly [number, number, number, number];

export interface Glyph {
  digit: number;
  style: string;
  aspect: number; // box width / box height
  segments: Segment[];
}

type Point = readonly [number, number];

/** Segments per full turn when flattening arcs: chord error under 0.2 px at SVHN sizes. */
const ARC_STEPS_PER_TURN = 20;

/** A polyline through points. */
function line(...pts: Point[]): Point[][] {
  return [pts.slice()];
}

/**
 * An elliptical arc: centre (cx, cy), radii (rx, ry), from angle a0 to a1 in degrees
 * (0 = right, 90 = down since v points down; a1 < a0 runs the other way).
 */
function arcPoints(cx: number, cy: number, rx: number, ry: number, a0: number, a1: number): Point[] {
  const steps = Math.max(2, Math.ceil((Math.abs(a1 - a0) / 360) * ARC_STEPS_PER_TURN));
  const pts: Point[] = [];
  for (let i = 0; i <= steps; i++) {
    const a = ((a0 + ((a1 - a0) * i) / steps) * Math.PI) / 180;
    pts.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return pts;
}

function arc(cx: number, cy: number, rx: number, ry: number, a0: number, a1: number): Point[][] {
  return [arcPoints(cx, cy, rx, ry, a0, a1)];
}

/** A polyline that starts with points and continues along an arc (one connected stroke). */
function path(...parts: (Point | Point[])[]): Point[][] {
  const pts: Point[] = [];
  for (const p of parts) {
    if (typeof p[0] === 'number') pts.push(p as Point);
    else pts.push(...(p as Point[]));
  }
  return [pts];
}

function toSegments(strokes: Point[][]): Segment[] {
  const segs: Segment[] = [];
  for (const s of strokes) {
    if (s.length === 1) segs.push([s[0]![0], s[0]![1], s[0]![0], s[0]![1]]);
    for (let i = 1; i < s.length; i++) segs.push([s[i - 1]![0], s[i - 1]![1], s[i]![0], s[i]![1]]);
  }
  return segs;
}

function glyph(digit: number, style: string, aspect: number, ...strokes: Point[][][]): Glyph {
  return { digit, style, aspect, segments: toSegments(strokes.flat()) };
}

/** All styles, grouped by digit: GLYPHS[d] is the list of styles for digit d. */
export const GLYPHS: readonly (readonly Glyph[])[] = [
  [
    glyph(0, 'oval', 0.6, arc(0.5, 0.5, 0.5, 0.5, 0, 360)),
    glyph(0, 'stadium', 0.58, path(arcPoints(0.5, 0.3, 0.5, 0.3, 180, 360), arcPoints(0.5, 0.7, 0.5, 0.3, 0, 180)), line([0, 0.7], [0, 0.3])),
    glyph(0, 'narrow', 0.45, arc(0.5, 0.5, 0.5, 0.5, 0, 360)),
  ],
  [
    glyph(1, 'bar', 0.12, line([0.5, 0], [0.5, 1])),
    glyph(1, 'flag', 0.4, line([0.05, 0.25], [0.7, 0], [0.7, 1])),
    glyph(1, 'serif', 0.55, line([0.12, 0.22], [0.55, 0], [0.55, 1]), line([0.1, 1], [1, 1])),
  ],
  [
    glyph(2, 'curved', 0.6, path(arcPoints(0.5, 0.28, 0.48, 0.28, 185, 385), [0, 1], [1, 1])),
    glyph(2, 'swan', 0.6, path(arcPoints(0.5, 0.28, 0.48, 0.28, 190, 360), arcPoints(1, 1, 1, 0.72, 270, 180)), line([0, 1], [1, 1])),
    glyph(2, 'angular', 0.6, line([0, 0.2], [0.2, 0], [0.8, 0], [1, 0.2], [1, 0.4], [0, 1], [1, 1])),
  ],
  [
    glyph(3, 'round', 0.58, arc(0.5, 0.26, 0.44, 0.26, 200, 450), arc(0.5, 0.74, 0.5, 0.26, 270, 520)),
    glyph(3, 'flat', 0.58, path([0.02, 0], [0.95, 0], [0.42, 0.42], arcPoints(0.5, 0.7, 0.5, 0.3, 270, 515))),
  ],
  [
    glyph(4, 'closed', 0.65, line([0.75, 1], [0.75, 0], [0, 0.7], [1, 0.7])),
    glyph(4, 'open', 0.65, line([0.18, 0], [0, 0.65], [1, 0.65]), line([0.75, 0.3], [0.75, 1])),
  ],
  [
    glyph(5, 'round', 0.58, path([0.95, 0], [0.15, 0], [0.1, 0.45], arcPoints(0.5, 0.68, 0.48, 0.32, 235, 515))),
    glyph(5, 'angular', 0.58, line([1, 0], [0.08, 0], [0.04, 0.42], [0.72, 0.42], [1, 0.6], [1, 0.82], [0.75, 1], [0, 1])),
  ],
  [
    glyph(6, 'curved', 0.6, path(arcPoints(0.95, 0.7, 0.93, 0.68, 252, 180)), arc(0.5, 0.7, 0.48, 0.3, 0, 360)),
    glyph(6, 'straight', 0.6, line([0.78, 0], [0.06, 0.62]), arc(0.5, 0.7, 0.47, 0.3, 0, 360)),
  ],
  [
    glyph(7, 'plain', 0.6, line([0, 0], [1, 0], [0.35, 1])),
    glyph(7, 'bar', 0.6, line([0, 0], [1, 0], [0.35, 1]), line([0.3, 0.52], [0.9, 0.52])),
    glyph(7, 'hook', 0.6, line([0, 0.2], [0, 0], [1, 0], [0.42, 1])),
    glyph(7, 'curved', 0.6, path([0, 0], [1, 0], arcPoints(1.55, 1, 1.2, 1, 236, 180))),
  ],
  [
    glyph(8, 'stacked', 0.58, arc(0.5, 0.24, 0.4, 0.24, 0, 360), arc(0.5, 0.73, 0.5, 0.27, 0, 360)),
    glyph(8, 'even', 0.55, arc(0.5, 0.25, 0.46, 0.25, 0, 360), arc(0.5, 0.75, 0.5, 0.25, 0, 360)),
  ],
  [
    glyph(9, 'straight', 0.6, arc(0.5, 0.3, 0.48, 0.3, 0, 360), line([0.98, 0.3], [0.98, 1])),
    glyph(9, 'curved', 0.6, arc(0.5, 0.3, 0.48, 0.3, 0, 360), arc(0.05, 0.3, 0.93, 0.68, 0, 72)),
    glyph(9, 'diagonal', 0.6, arc(0.5, 0.3, 0.47, 0.3, 0, 360), line([0.97, 0.36], [0.3, 1])),
  ],
];
