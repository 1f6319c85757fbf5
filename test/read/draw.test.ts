import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DrawNames, drawCaption, drawReading } from '../../src/read/draw.js';
import { failedRow, readingRow } from '../../src/read/rows.js';

describe('--draw', () => {
  it('names one PNG per input, a repeated name getting -2, -3', () => {
    const names = new DrawNames();
    expect(['a/IMG_1.jpg', 'b/IMG_1.png', 'c/IMG_1.webp', 'IMG_1-2.png', 'noext', '.hidden.png'].map((n) => names.next(n))).toEqual(['IMG_1.png', 'IMG_1-2.png', 'IMG_1-3.png', 'IMG_1-2-2.png', 'noext.png', '.hidden.png']);
  });

  it('captions a number, an abstained one and no number', () => {
    const digits = [{ digit: 2, confidence: 0.9, box: [0, 0, 5, 5] as [number, number, number, number] }];
    expect(drawCaption(readingRow('a', { number: '2', confidence: 0.914, digits }, 0))).toBe('2 91%');
    expect(drawCaption(readingRow('a', { number: '2', confidence: 0.414, digits }, 0.5))).toBe('unsure (2 41%)');
    expect(drawCaption(readingRow('a', { number: '', confidence: 0.88, digits: [] }, 0.5))).toBe('no number (88%)');
    expect(failedRow('a', 'x').best).toBeNull();
  });

  it('draws on the photo as it was read: EXIF orientation applied, at its own size', async () => {
    // Stored 40x20 with orientation 6: shown (and read) 20x40.
    const jpeg = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#808080' } }).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const png = await drawReading(jpeg, readingRow('r.jpg', { number: '1', confidence: 0.9, digits: [{ digit: 1, confidence: 0.9, box: [4, 10, 16, 30] }] }, 0));
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 20, 40]);
  });
});
