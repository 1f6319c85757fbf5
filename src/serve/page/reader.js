// A reader in the page: the same steps as Node's loadReader (src/tasks/read/reader.ts) on a
// video frame, an image or a canvas, with stock tfjs. The arithmetic is not re-written here:
// the letterbox's geometry, the peak finding, the views of each digit and the reading come from the compiled
// tasks/read modules (format.js, peaks.js, assemble.js), which the server serves beside this
// file. What differs from Node is only how pixels are resized (the canvas's smoothing, not
// sharp's lanczos3 and cubic kernels), so a reading here can differ from the server's by a
// resize's rounding: boxes by a fraction of a pixel, scores in the third decimal.
import { LETTERBOX_FILL, READER_INPUT, letterboxOf } from './format.js';
import { DEFAULT_CENTRE_THRESHOLD } from './peaks.js';
import { boxesInPhoto, digitSquare, digitViews, noNumberReading, numberDetections, pooledProbs, readingOf, DIGIT_VIEWS } from './assemble.js';

const SIZE = 32; // the classifier's input: 32x32 RGB

const canvas = (width, height) => Object.assign(document.createElement('canvas'), { width, height });

/** A reader's two models, fetched from the server (/v1/models/NAME/ and NAME/classifier/), warmed up. */
export async function loadReader(name) {
  await tf.ready();
  const base = `/v1/models/${encodeURIComponent(name)}`;
  const [detector, classifier] = await Promise.all([tf.loadLayersModel(`${base}/model.json`), tf.loadLayersModel(`${base}/classifier/model.json`)]);
  // One pass each, so the first frame does not pay for the kernels' set-up; the outputs die in the tidy.
  tf.tidy(() => {
    detector.predict(tf.zeros([1, READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels]));
    classifier.predict(tf.zeros([1, SIZE, SIZE, 3]));
  });
  return {
    name,
    detector,
    classifier,
    // Scratch canvases, reused frame after frame.
    input: canvas(READER_INPUT.width, READER_INPUT.height),
    frame: canvas(1, 1),
    square: canvas(1, 1),
    crops: canvas(SIZE, SIZE),
    dispose() {
      detector.dispose();
      classifier.dispose();
    },
  };
}

const context = (c) => {
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  return ctx;
};

/** The source letterboxed into the detector's 48x96 input canvas (format.ts letterboxOf: one scale, centred, grey 114 around). */
export function letterboxInto(reader, source, width, height) {
  const lb = letterboxOf(width, height);
  const ctx = context(reader.input);
  ctx.fillStyle = `rgb(${LETTERBOX_FILL}, ${LETTERBOX_FILL}, ${LETTERBOX_FILL})`;
  ctx.fillRect(0, 0, READER_INPUT.width, READER_INPUT.height);
  ctx.drawImage(source, 0, 0, width, height, lb.padX, lb.padY, lb.width, lb.height);
  return lb;
}

/**
 * The detector's output (GRID_HEIGHT x GRID_WIDTH x 5 floats, format.ts) for letterboxed pixels: 48 x 96 x 3 uint8 (HWC), a
 * canvas or ImageData. x / 255 as in training; the tensors die in the tidy, the output after reading.
 */
export async function detect(reader, pixels) {
  const out = tf.tidy(() => {
    const x = pixels instanceof Uint8Array ? tf.tensor3d(pixels, [READER_INPUT.height, READER_INPUT.width, READER_INPUT.channels], 'int32') : tf.browser.fromPixels(pixels);
    return reader.detector.predict(x.toFloat().div(255).expandDims(0));
  });
  const values = await out.data();
  out.dispose();
  return values;
}

/**
 * Each box cut as SVHN cut its digits (assemble.ts digitSquare: a square about the box's
 * centre; letterbox.ts cropDigit repeats edge pixels where it leaves the photo) and resized to
 * 32x32, as one float batch / 255. `frame`: the source drawn at its own size.
 */
function cutDigits(reader, frameCtx, width, height, boxes) {
  const out = new Float32Array(boxes.length * SIZE * SIZE * 3);
  const crops = context(reader.crops);
  boxes.forEach((box, i) => {
    const { left, top, side } = digitSquare(box);
    if (left >= 0 && top >= 0 && left + side <= width && top + side <= height) {
      crops.drawImage(reader.frame, left, top, side, side, 0, 0, SIZE, SIZE);
    } else {
      // Part of the square lies outside the photo: build it pixel by pixel, each clamped to the photo (edge repeat).
      const src = frameCtx.getImageData(0, 0, width, height).data;
      reader.square.width = side;
      reader.square.height = side;
      const sq = context(reader.square);
      const img = sq.createImageData(side, side);
      for (let y = 0; y < side; y++) {
        const sy = Math.min(height - 1, Math.max(0, top + y));
        for (let x = 0; x < side; x++) {
          const sx = Math.min(width - 1, Math.max(0, left + x));
          const s = (sy * width + sx) * 4;
          const d = (y * side + x) * 4;
          img.data[d] = src[s];
          img.data[d + 1] = src[s + 1];
          img.data[d + 2] = src[s + 2];
          img.data[d + 3] = 255;
        }
      }
      sq.putImageData(img, 0, 0);
      crops.drawImage(reader.square, 0, 0, side, side, 0, 0, SIZE, SIZE);
    }
    const rgba = crops.getImageData(0, 0, SIZE, SIZE).data;
    const o = i * SIZE * SIZE * 3;
    for (let p = 0; p < SIZE * SIZE; p++) {
      out[o + p * 3] = rgba[p * 4] / 255;
      out[o + p * 3 + 1] = rgba[p * 4 + 1] / 255;
      out[o + p * 3 + 2] = rgba[p * 4 + 2] / 255;
    }
  });
  return out;
}

/**
 * The reading of a whole source (a video, an image or a canvas) of width x height: letterbox,
 * detect, find the peaks, cut and classify each box. { number, confidence, digits: [{ digit,
 * confidence, box }] } as tasks/read/reading.ts, boxes in the source's pixels.
 */
export async function readSource(reader, source, width, height, threshold = DEFAULT_CENTRE_THRESHOLD) {
  const lb = letterboxInto(reader, source, width, height);
  const out = await detect(reader, reader.input);
  const found = numberDetections(out, lb, threshold);
  if (found.length === 0) return noNumberReading(out);
  const boxes = boxesInPhoto(found, lb, width, height);
  if (reader.frame.width !== width || reader.frame.height !== height) Object.assign(reader.frame, { width, height });
  const frameCtx = context(reader.frame);
  frameCtx.drawImage(source, 0, 0, width, height);
  const viewed = digitViews(boxes); // each box in DIGIT_VIEWS' views, pooled below
  const crops = cutDigits(reader, frameCtx, width, height, viewed);
  const probs = tf.tidy(() => reader.classifier.predict(tf.tensor4d(crops, [viewed.length, SIZE, SIZE, 3])));
  const values = await probs.data();
  probs.dispose();
  return readingOf(found, boxes, pooledProbs(values, boxes.length, DIGIT_VIEWS.length), width, height);
}

/** The reading drawn over a canvas the size of its source: each digit's box and the number (or "no number"). */
export function drawReading(ctx, reading, label) {
  const { width, height } = ctx.canvas;
  const line = Math.max(2, Math.round(Math.min(width, height) / 120));
  ctx.lineWidth = line;
  ctx.strokeStyle = '#ffd400';
  ctx.fillStyle = '#ffd400';
  ctx.font = `bold ${Math.max(12, Math.round(height / 14))}px sans-serif`;
  ctx.textBaseline = 'bottom';
  for (const d of reading.digits) {
    const [l, t, r, b] = d.box;
    ctx.strokeRect(l, t, r - l, b - t);
    ctx.fillText(String(d.digit), l, Math.max(12, t - line));
  }
  const text = label;
  const pad = line * 2;
  const w = ctx.measureText(text).width + pad * 2;
  const h = Math.max(12, Math.round(height / 14)) + pad * 2;
  ctx.fillStyle = 'rgba(0, 0, 0, 0.65)';
  ctx.fillRect(0, height - h, w, h);
  ctx.fillStyle = '#fff';
  ctx.fillText(text, pad, height - pad);
}
