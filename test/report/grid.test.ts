import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { escapeXml, fitText, gridSvg, renderImageGrid } from '../../src/report/grid.js';

/** n solid-colour 32x32 tiles: tile i is (i*40, 255 - i*40, 128). */
function solidTiles(n: number): Uint8Array {
  const out = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < 1024; p++) out.set([i * 40, 255 - i * 40, 128], i * 3072 + p * 3);
  }
  return out;
}

async function decode(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  return { info, px, data };
}

describe('renderImageGrid', () => {
  it('lays out upscaled tiles in columns with captions drawn in their colours', async () => {
    const png = await renderImageGrid({
      images: solidTiles(5),
      count: 5,
      captions: ['0', '1', '2', '3', '4'],
      captionColors: ['#ff0000', '#ff0000', '#ff0000', '#ff0000', '#ff0000'],
      columns: 3,
      scale: 2,
    });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const { info, px, data } = await decode(png);
    // 3 columns x 2 rows of 64 px tiles plus padding and caption rows.
    expect(info.width).toBeGreaterThan(3 * 64);
    expect(info.width).toBeLessThan(3 * 64 + 40);
    expect(info.height).toBeGreaterThan(2 * 64);
    // Each tile's colour fills exactly one 64x64 square (nearest upscaling, no blending),
    // in reading order: tile 1 right of tile 0, tile 4 below tile 1.
    const box = (rgb: number[]) => {
      let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1, n = 0;
      for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) {
        const p = px(x, y);
        if (p[0] === rgb[0] && p[1] === rgb[1] && p[2] === rgb[2]) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); n++; }
      }
      return { x0, y0, w: x1 - x0 + 1, h: y1 - y0 + 1, n };
    };
    const b0 = box([0, 255, 128]);
    const b1 = box([40, 215, 128]);
    const b4 = box([160, 95, 128]);
    for (const b of [b0, b1, b4]) expect(b).toMatchObject({ w: 64, h: 64, n: 64 * 64 });
    expect(b1.x0).toBeGreaterThan(b0.x0 + 64);
    expect(b1.y0).toBe(b0.y0);
    expect(b4.x0).toBe(b1.x0);
    expect(b4.y0).toBeGreaterThan(b1.y0 + 64);
    // Red caption pixels exist (text was rendered), and none of the tiles is pure red.
    let red = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i]! > 180 && data[i + 1]! < 80 && data[i + 2]! < 80) red++;
    expect(red).toBeGreaterThan(10);
  });

  it('adds a title band and escapes XML in captions', async () => {
    const plain = await decode(await renderImageGrid({ images: solidTiles(2), count: 2, captions: ['a', 'b'] }));
    const titled = await decode(await renderImageGrid({ images: solidTiles(2), count: 2, captions: ['<7> & "x"', 'b'], title: 'T & <t>' }));
    expect(titled.info.height).toBeGreaterThan(plain.info.height);
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });

  it('draws a second, smaller line under each tile (file names), escaped, control characters shown, cut in the middle to fit', async () => {
    const long = 'a-very-long-photo-name-from-the-camera_0042.png';
    const names = [long, '<b>&"x".png', 'b\x07\nn.png'];
    const plain = gridSvg({ count: 3, captions: ['1', '2', '3'], scale: 4 });
    const named = gridSvg({ count: 3, captions: ['1', '2', '3'], subcaptions: names, scale: 4 });
    expect(named.height).toBeGreaterThan(plain.height);
    const lines = [...named.svg.matchAll(/<text[^>]*class="sub"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^a-very-[^…]*…[^…]*0042\.png$/); // start and end kept
    expect([...lines[0]!].length).toBeLessThan(long.length);
    expect(lines[1]).toBe('&lt;b&gt;&amp;&quot;x&quot;.png');
    expect(lines[2]).toBe('b\\x07\\nn.png');
    // Each line fits its tile at the font's widest usual advance (0.62 em).
    const font = Number(/class="sub"[^>]*font-size="(\d+)"/.exec(named.svg)![1]);
    for (const name of names) expect([...fitText(name, 4 * 32, font)].length * font * 0.62).toBeLessThanOrEqual(4 * 32);
    expect(fitText('short.png', 128, 12)).toBe('short.png');
  });

  it('wraps a title wider than the grid over several lines instead of cutting it off', async () => {
    const title = 'SVHN model predictions (demo), model trained on SYNTHETIC data';
    const one = gridSvg({ count: 1, captions: ['1'], scale: 4, title });
    const titleLines = [...one.svg.matchAll(/<text[^>]*class="title"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
    expect(titleLines.length).toBeGreaterThan(1);
    expect(titleLines.join(' ')).toBe(title);
    const wide = gridSvg({ count: 10, columns: 10, captions: [], scale: 4, title });
    expect([...wide.svg.matchAll(/class="title"/g)]).toHaveLength(1);
    expect(one.height).toBeGreaterThan(gridSvg({ count: 1, captions: ['1'], scale: 4, title: 'T' }).height);
  });

  it('rejects too few bytes and a zero count', async () => {
    await expect(renderImageGrid({ images: new Uint8Array(3072), count: 2, captions: [] })).rejects.toThrow(/expected 6144 bytes for 2 images/);
    await expect(renderImageGrid({ images: new Uint8Array(0), count: 0, captions: [] })).rejects.toThrow(/positive image count/);
  });
});
