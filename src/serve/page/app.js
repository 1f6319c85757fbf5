// The page of `svhn serve`. Images: POST /v1/predict and show each 32x32 input with every
// digit model's answer; with a reader served, POST /v1/read too and draw each photo with its
// boxes and number. Webcam: with the digit models, the centre box of each frame, drawn at
// 32x32, read several times a second by the same models in this browser (tfjs, model.json
// from /v1/models/NAME/); with a reader chosen, the WHOLE frame, read by the reader in this
// browser (reader.js). Or by the server when "send frames to the server" is on. No external
// requests (see the CSP).
'use strict';

const SIZE = 32; // the models' input: 32x32 RGB
const BOX_FRACTION = 0.45; // the box's side as a share of the video's width (style.css .box)
const FRAME_INTERVAL_MS = 150; // ~6 readings a second, less if a reading takes longer
const READER_INTERVAL_MS = 40; // a reader's loop: at most 25 readings a second, fewer if a reading takes longer
const TOP_K = 3;

const $ = (id) => document.getElementById(id);
let models = []; // [{ name, task, metadata }]
const digitModels = () => models.filter((m) => m.task !== 'read');
const readers = () => models.filter((m) => m.task === 'read');
/** The page's reader module (reader.js and the compiled tasks/read modules it imports), loaded once. */
let readerModule = null;
const loadReaderModule = () => (readerModule = readerModule || import('/assets/reader.js'));

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function setStatus(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle('error', isError);
}

/** The page's "unsure below N%" control as a probability (0: always show the digit). */
function minConfidence() {
  const n = Number($('min-confidence').value);
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), 100) / 100 : 0;
}

/** One model's answer: name, digit, top-k bars (probabilities drawn as widths: CSSOM, allowed by the CSP). */
function answerView(modelName, row) {
  const box = el('div', 'answer');
  box.dataset.model = modelName;
  box.append(el('div', 'model', modelName));
  if (row.error) {
    box.append(el('div', 'digit', '–'), el('div', 'error', row.error));
    return box;
  }
  if (row.abstained || row.confidence < minConfidence()) {
    // A guess under the threshold is not shown as an answer (issue 24): "unsure", the bars still show the best.
    const unsure = el('div', 'digit unsure', 'unsure');
    unsure.title = `best guess ${row.top[0].digit} at ${(row.confidence * 100).toFixed(1)}%`;
    box.append(unsure);
  } else {
    box.append(el('div', 'digit', String(row.top[0].digit)));
  }
  const bars = el('div', 'bars');
  row.top.forEach((t, i) => {
    const bar = el('span', 'bar');
    const fill = el('i');
    fill.style.width = `${(t.prob * 100).toFixed(1)}%`;
    bar.append(fill);
    bars.append(el('span', i === 0 ? 'd first' : 'd', String(t.digit)), bar, el('span', 'p', `${(t.prob * 100).toFixed(1)}%`));
  });
  box.append(bars);
  return box;
}

async function apiError(res) {
  try {
    const body = await res.json();
    return body.error || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// ---- images: drop, pick, paste ---------------------------------------------------------------

async function predictFiles(files) {
  const images = [...files].filter((f) => f.size > 0);
  if (images.length === 0) return;
  if (digitModels().length > 0) await predictDigits(images);
  if (readers().length > 0) await readPhotos(images);
}

async function predictDigits(images) {
  const status = $('status');
  setStatus(status, `Reading ${images.length} image${images.length > 1 ? 's' : ''}…`);
  const form = new FormData();
  for (const f of images) form.append('file', f, f.name || 'pasted.png');
  let res;
  try {
    res = await fetch(`/v1/predict?inputs=true&top_k=${TOP_K}`, { method: 'POST', body: form });
  } catch (e) {
    setStatus(status, `The server did not answer: ${e.message}`, true);
    return;
  }
  if (!res.ok && res.status !== 422) {
    setStatus(status, await apiError(res), true);
    return;
  }
  const body = await res.json();
  setStatus(status, res.ok ? '' : body.error, !res.ok);
  const results = $('results');
  images.forEach((f, i) => {
    const card = el('div', 'card result');
    const input = el('div', 'input');
    const src = body.inputs && body.inputs[i];
    if (src) {
      const img = el('img');
      img.src = src;
      img.alt = `${f.name} as the model sees it (32x32)`;
      img.title = 'the 32x32 input the models read';
      input.append(img);
    }
    input.append(el('div', 'name', body.models[0].rows[i].input));
    const answers = el('div', 'answers');
    for (const m of body.models) answers.append(answerView(m.model, m.rows[i]));
    card.append(input, answers);
    results.prepend(card);
  });
}

/** What a reading row shows: its number, "no number", "unsure" under the control's threshold, or a dash for a failed photo. */
function readingLabel(row) {
  if (row.error) return '–';
  if (row.best === '') return 'no number';
  if (row.abstained || row.confidence < minConfidence()) return 'unsure';
  return row.best;
}

/** The photo drawn at its own size (the browser applies EXIF orientation, as the server's decoder does), with the reading over it. */
async function readingCanvas(file, row, label) {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const canvas = el('canvas', 'photo');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    (await loadReaderModule()).drawReading(ctx, { number: row.best, digits: row.digits }, label);
    return canvas;
  } catch {
    return el('div', 'photo');
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** POST /v1/read: each photo with every reader's boxes and number drawn over it. */
async function readPhotos(images) {
  const status = $('status');
  const form = new FormData();
  for (const f of images) form.append('file', f, f.name || 'pasted.png');
  let res;
  try {
    res = await fetch(`/v1/read?min_confidence=${minConfidence()}`, { method: 'POST', body: form });
  } catch (e) {
    setStatus(status, `The server did not answer: ${e.message}`, true);
    return;
  }
  if (!res.ok && res.status !== 422) {
    setStatus(status, await apiError(res), true);
    return;
  }
  const body = await res.json();
  if (!res.ok) setStatus(status, body.error, true);
  const results = $('results');
  for (const [i, f] of images.entries()) {
    for (const m of body.models) {
      const row = m.rows[i];
      const label = readingLabel(row);
      const card = el('div', 'card reading');
      card.dataset.model = m.model;
      card.dataset.number = label;
      card.dataset.row = JSON.stringify(row);
      const number = el('div', label === 'unsure' || label === 'no number' ? 'number muted' : 'number', label);
      if (label === 'unsure') number.title = `best reading ${row.best} at ${(row.confidence * 100).toFixed(1)}%`;
      const side = el('div', 'answer');
      side.append(el('div', 'model', m.model), number, el('div', row.error ? 'error' : 'name', row.error || row.input));
      card.append(await readingCanvas(f, row, label), side);
      results.prepend(card);
    }
  }
}

function setUpImages() {
  const drop = $('drop');
  $('pick').addEventListener('change', (e) => {
    predictFiles(e.target.files);
    e.target.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    predictFiles(e.dataTransfer.files);
  });
  document.addEventListener('paste', (e) => {
    if (e.clipboardData && e.clipboardData.files.length > 0) predictFiles(e.clipboardData.files);
  });
}

// ---- webcam ------------------------------------------------------------------------------------

const cam = { stream: null, timer: 0, browserModels: null, crop: null, readers: new Map(), frame: null, readings: 0, startedAt: 0 };

/** The digit models as tfjs LayersModels in this page (stock tfjs: the saved models use no custom layers). */
async function loadBrowserModels() {
  if (!cam.browserModels) {
    await tf.ready();
    cam.browserModels = await Promise.all(digitModels().map(async (m) => ({
      name: m.name,
      model: await tf.loadLayersModel(`/v1/models/${encodeURIComponent(m.name)}/model.json`),
      temperature: calibrationTemperature(m.metadata),
    })));
  }
  return cam.browserModels;
}

/** The temperature the server divides this model's log-probabilities by (metadata.json calibration; none: 1). */
function calibrationTemperature(metadata) {
  const t = metadata.calibration && metadata.calibration.temperature;
  return typeof t === 'number' && t > 0 ? t : 1;
}

/** softmax(log p / T), as the server's models/calibration.ts (same floor), so both answer alike. */
function calibrate(probs, temperature) {
  return temperature === 1 ? probs : tf.softmax(tf.div(tf.log(tf.maximum(probs, 1e-12)), temperature));
}

/** Top k of one probability row, ties to the lower digit (as predict's topK). */
function topK(probs, k) {
  return Array.from(probs, (prob, digit) => ({ digit, prob }))
    .sort((a, b) => b.prob - a.prob || a.digit - b.digit)
    .slice(0, k);
}

/** The centre box of the current frame, drawn into the 32x32 canvas. */
function grabCrop() {
  const video = $('video');
  const side = Math.round(video.videoWidth * BOX_FRACTION);
  const sx = Math.round((video.videoWidth - side) / 2);
  const sy = Math.round((video.videoHeight - side) / 2);
  const ctx = cam.crop.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(video, sx, sy, side, side, 0, 0, SIZE, SIZE);
}

async function readInBrowser() {
  const rows = [];
  for (const { name, model, temperature } of await loadBrowserModels()) {
    // x / 255 as in training; the input dies with the tidy, the output after reading.
    const out = tf.tidy(() => calibrate(model.predict(tf.browser.fromPixels(cam.crop).toFloat().div(255).expandDims(0)), temperature));
    const probs = await out.data();
    out.dispose();
    const top = topK(probs, TOP_K);
    rows.push({ model: name, row: { predicted: top[0].digit, confidence: top[0].prob, top, error: null } });
  }
  return rows;
}

async function readOnServer() {
  const blob = await new Promise((resolve) => cam.crop.toBlob(resolve, 'image/png'));
  const res = await fetch(`/v1/predict?top_k=${TOP_K}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: blob });
  if (!res.ok) throw new Error(await apiError(res));
  const body = await res.json();
  return body.models.map((m) => ({ model: m.model, row: m.rows[0] }));
}

function showLive(rows, source) {
  const live = $('live');
  const input = el('div', 'input');
  const preview = el('canvas');
  preview.width = SIZE;
  preview.height = SIZE;
  preview.getContext('2d').drawImage(cam.crop, 0, 0);
  input.append(preview, el('div', 'name', source === 'server' ? 'read on the server' : `read here (tfjs ${tf.getBackend()})`));
  const answers = el('div', 'answers');
  for (const { model, row } of rows) answers.append(answerView(model, row));
  live.replaceChildren(input, answers);
  live.dataset.source = source;
  live.dataset.rows = JSON.stringify(rows); // the probabilities behind the bars, for scripts and tests
  live.dataset.frames = String(Number(live.dataset.frames) + 1);
}

/** A reader in this page, loaded once per name (reader.js loadReader). */
async function pageReader(name) {
  if (!cam.readers.has(name)) cam.readers.set(name, (await loadReaderModule()).loadReader(name));
  return cam.readers.get(name);
}

/** The whole frame, read on the server by reader `name` (POST /v1/read): the row as a reading. */
async function readWholeOnServer(name) {
  const video = $('video');
  cam.frame = cam.frame || el('canvas');
  Object.assign(cam.frame, { width: video.videoWidth, height: video.videoHeight });
  cam.frame.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => cam.frame.toBlob(resolve, 'image/png'));
  const res = await fetch(`/v1/read?model=${encodeURIComponent(name)}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: blob });
  if (!res.ok) throw new Error(await apiError(res));
  const row = (await res.json()).models[0].rows[0];
  if (row.error) throw new Error(row.error);
  return { number: row.best, confidence: row.confidence, digits: row.digits };
}

/** A reading of the whole frame: its boxes and number over the video, the number beside it. */
async function showWholeReading(reading, name, source) {
  const video = $('video');
  const overlay = $('overlay');
  if (overlay.width !== video.videoWidth || overlay.height !== video.videoHeight) Object.assign(overlay, { width: video.videoWidth, height: video.videoHeight });
  const ctx = overlay.getContext('2d');
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const label = reading.number === '' ? 'no number' : reading.confidence < minConfidence() ? 'unsure' : reading.number;
  (await loadReaderModule()).drawReading(ctx, reading, label);
  const live = $('live');
  const answer = el('div', 'answer');
  answer.dataset.model = name;
  answer.append(el('div', 'model', name), el('div', label === reading.number ? 'number' : 'number muted', label), el('div', 'p', `${(reading.confidence * 100).toFixed(1)}%`));
  live.replaceChildren(answer);
  live.dataset.source = source;
  live.dataset.number = label;
  live.dataset.reading = JSON.stringify(reading);
  live.dataset.frames = String(Number(live.dataset.frames) + 1);
}

/**
 * Readings a second since the loop started (the page's own count: `live.dataset.readings`,
 * `readingsPerSec` and `readingMs` for scripts and tests; the status line shows it).
 */
function countReading(ms) {
  cam.readings++;
  const live = $('live');
  live.dataset.readingMs = ms.toFixed(1); // the last reading's own time (the loop waits out the rest of READER_INTERVAL_MS)
  const seconds = (performance.now() - cam.startedAt) / 1000;
  live.dataset.readings = String(cam.readings);
  live.dataset.readingsPerSec = seconds > 0 ? (cam.readings / seconds).toFixed(2) : '0';
}

async function readFrame() {
  if (!cam.stream) return;
  const started = performance.now();
  const readerName = $('cam-model').value;
  $('cam').classList.toggle('whole', readerName !== '');
  try {
    const onServer = $('on-server').checked;
    if (readerName) {
      const video = $('video');
      const reading = onServer ? await readWholeOnServer(readerName) : await (await loadReaderModule()).readSource(await pageReader(readerName), video, video.videoWidth, video.videoHeight);
      await showWholeReading(reading, readerName, onServer ? 'server' : 'browser');
    } else {
      grabCrop();
      showLive(onServer ? await readOnServer() : await readInBrowser(), onServer ? 'server' : 'browser');
    }
    countReading(performance.now() - started);
    setStatus($('cam-status'), `${Math.round(performance.now() - started)} ms a reading, ${$('live').dataset.readingsPerSec} readings/s`);
  } catch (e) {
    setStatus($('cam-status'), e.message, true);
  }
  const interval = readerName ? READER_INTERVAL_MS : FRAME_INTERVAL_MS;
  if (cam.stream) cam.timer = setTimeout(readFrame, Math.max(0, interval - (performance.now() - started)));
}

async function startCamera() {
  const button = $('cam-toggle');
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    setStatus($('cam-status'), `No camera: ${e.message}`, true);
    return;
  }
  const video = $('video');
  video.srcObject = cam.stream;
  await new Promise((resolve) => (video.readyState >= 2 ? resolve() : video.addEventListener('loadeddata', resolve, { once: true })));
  video.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
  cam.crop = cam.crop || Object.assign(document.createElement('canvas'), { width: SIZE, height: SIZE });
  button.textContent = 'Stop camera';
  button.classList.add('on');
  setStatus($('cam-status'), 'Loading the models into the page…');
  cam.readings = 0;
  cam.startedAt = performance.now();
  readFrame();
}

function stopCamera() {
  clearTimeout(cam.timer);
  if (cam.stream) for (const t of cam.stream.getTracks()) t.stop();
  cam.stream = null;
  $('video').srcObject = null;
  const overlay = $('overlay');
  overlay.getContext('2d').clearRect(0, 0, overlay.width, overlay.height);
  $('cam-toggle').textContent = 'Start camera';
  $('cam-toggle').classList.remove('on');
}

function setUpWebcam() {
  $('cam-toggle').addEventListener('click', () => (cam.stream ? stopCamera() : startCamera()));
  $('cam-model').addEventListener('change', () => {
    // A new model's loop counts its own readings a second.
    cam.readings = 0;
    cam.startedAt = performance.now();
    const overlay = $('overlay');
    overlay.getContext('2d').clearRect(0, 0, overlay.width, overlay.height);
  });
}

// ---- tabs, models --------------------------------------------------------------------------------

function showTab(name) {
  for (const tab of ['images', 'webcam']) {
    $(`tab-${tab}`).setAttribute('aria-selected', String(tab === name));
    $(`${tab}-pane`).hidden = tab !== name;
  }
  if (name !== 'webcam') stopCamera();
}

/** The wasm backend when it starts (tens of ms a reading where webgl has no GPU and falls back to software), else tfjs's default. */
async function chooseBackend() {
  try {
    tf.wasm.setWasmPaths('/assets/');
    if (await tf.setBackend('wasm')) return;
  } catch {
    // no wasm: tfjs keeps its default
  }
  await tf.ready();
}

async function loadModels() {
  const res = await fetch('/v1/models');
  models = (await res.json()).models;
  $('models').replaceChildren(
    ...models.map((m) => {
      const chip = el('span', m.metadata.synthetic ? 'model-chip synthetic' : 'model-chip', `${m.name} · ${m.task === 'read' ? 'reader' : m.metadata.architecture}`);
      chip.title = `validation accuracy ${m.metadata.validation ? m.metadata.validation.acc : '?'}`;
      return chip;
    }),
  );
  // The webcam reads with the digit models (the centre box) or with one reader (the whole frame).
  $('cam-model').replaceChildren(
    ...(digitModels().length > 0 ? [Object.assign(el('option', '', 'digit models: the centre box'), { value: '' })] : []),
    ...readers().map((m) => Object.assign(el('option', '', `${m.name}: the whole frame`), { value: m.name })),
  );
}

$('tab-images').addEventListener('click', () => showTab('images'));
$('tab-webcam').addEventListener('click', () => showTab('webcam'));
setUpImages();
setUpWebcam();
Promise.all([chooseBackend(), loadModels()]).then(
  () => (document.body.dataset.ready = 'true'),
  (e) => setStatus($('status'), `Could not list the models: ${e.message}`, true),
);
