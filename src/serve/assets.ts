/**
 * What the page needs, served from memory by name: its HTML, script and style (src/serve/page/)
 * and the tfjs browser bundle from node_modules, so the page works with no network. A
 * request names an entry of this table; nothing is looked up on disk from a URL.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SvhnError } from '../errors.js';

export interface Asset {
  type: string; // Content-Type
  body: Buffer;
  etag: string;
}

/** The page's own files; the same folder from src/serve (tests) and dist/serve (the CLI). */
const PAGE_DIR = fileURLToPath(new URL('../../src/serve/page/', import.meta.url));
/**
 * The reader's arithmetic the page runs as ES modules (format.ts, peaks.ts, assemble.ts: no
 * imports but each other's and types), compiled by `npm run build`; the same dist/ folder
 * from src/serve and dist/serve. Served beside app.js, so their relative imports resolve.
 */
const READ_DIST_DIR = fileURLToPath(new URL('../../dist/tasks/read/', import.meta.url));
const READ_MODULES = ['format.js', 'peaks.js', 'assemble.js'] as const;

/** Every file under /assets/ (the OpenAPI document lists them). */
/** tfjs's wasm backend for the page: its script and the single-threaded builds (threads would need cross-origin isolation). */
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'] as const;

/** Every file under /assets/ (the OpenAPI document lists them). */
export const PAGE_ASSET_FILES = ['app.js', 'reader.js', 'style.css', 'tf.es2017.min.js', 'tf-backend-wasm.es2017.min.js', ...WASM_FILES, ...READ_MODULES];

/** URL path -> where it is read from, and its type. */
function assetSources(): Record<string, { file: string; type: string; module?: boolean }> {
  const require = createRequire(import.meta.url);
  const tfjsDist = join(dirname(require.resolve('@tensorflow/tfjs/package.json')), 'dist');
  const wasmDist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  return {
    '/': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
    '/assets/app.js': { file: join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/assets/reader.js': { file: join(PAGE_DIR, 'reader.js'), type: 'text/javascript; charset=utf-8' },
    ...Object.fromEntries(READ_MODULES.map((f) => [`/assets/${f}`, { file: join(READ_DIST_DIR, f), type: 'text/javascript; charset=utf-8', module: true }])),
    '/assets/style.css': { file: join(PAGE_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
    '/assets/tf.es2017.min.js': { file: join(tfjsDist, 'tf.es2017.min.js'), type: 'text/javascript; charset=utf-8' },
    '/assets/tf-backend-wasm.es2017.min.js': { file: join(wasmDist, 'tf-backend-wasm.es2017.min.js'), type: 'text/javascript; charset=utf-8' },
    ...Object.fromEntries(WASM_FILES.map((f) => [`/assets/${f}`, { file: join(wasmDist, f), type: 'application/wasm' }])),
  };
}

/** Reads every asset once (about 2.4 MB: the tfjs bundle without polyfills, which needs no eval under the CSP, and the wasm backend's 0.9 MB). */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type, module }] of Object.entries(assetSources())) {
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch (e) {
      if (module) throw new SvhnError('IO', `${file}: the page's compiled reader modules are missing`, { suggestion: 'run `npm run build`' });
      throw e;
    }
    // The compiled modules' source-map comments name files the server does not serve.
    if (module) body = Buffer.from(body.toString('utf8').replace(/^\/\/# sourceMappingURL=.*$/m, ''));
    assets.set(path, { type, body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });
  }
  return assets;
}

/**
 * The page's Content-Security-Policy: its own scripts, styles and connections only; images
 * from data: URLs (the 32x32 inputs) and blob: (dropped files); the webcam as a media stream;
 * WebAssembly compiled from the served .wasm files ('wasm-unsafe-eval' allows that and no JS eval).
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
