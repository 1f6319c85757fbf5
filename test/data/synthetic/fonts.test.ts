import { describe, expect, it } from 'vitest';
import { FONT_FAMILIES, loadFontSet } from '../../../src/data/synthetic/fonts.js';

describe('loadFontSet', () => {
  const fonts = loadFontSet();

  it('loads every family, each face with ten digit outlines', () => {
    expect(fonts.families).toHaveLength(FONT_FAMILIES.length);
    expect(FONT_FAMILIES.length).toBeGreaterThanOrEqual(50);
    expect(fonts.faceCount).toBe(fonts.families.reduce((n, f) => n + f.length, 0));
    fonts.families.forEach((faces, i) => {
      expect(faces.length).toBeGreaterThan(0);
      for (const face of faces) {
        expect(face.family).toBe(FONT_FAMILIES[i]);
        expect(face.file).toMatch(/-latin-\d+-(normal|italic)\.woff$/);
        expect(face.digits).toHaveLength(10);
      }
    });
  });

  it('gives outlines in em units, y down, sitting on the baseline', () => {
    for (const faces of fonts.families) {
      for (const face of faces) {
        for (const d of face.digits) {
          expect(d.contours.length).toBeGreaterThan(0);
          for (const c of d.contours) expect(c.length % 2).toBe(0);
          const h = d.yMax - d.yMin;
          // Lining or old-style figures: ink between 0.3 and 1.2 em tall, mostly above the baseline.
          expect(h).toBeGreaterThan(0.3);
          expect(h).toBeLessThan(1.2);
          expect(d.yMin).toBeLessThan(0);
          expect(d.xMax).toBeGreaterThan(d.xMin);
          expect(d.advance).toBeGreaterThan(0);
        }
      }
    }
  });

  it('the font set id is a stable hash of the files', () => {
    expect(fonts.fontSetId).toMatch(/^[0-9a-f]{16}$/);
    expect(loadFontSet().fontSetId).toBe(fonts.fontSetId);
  });
});
