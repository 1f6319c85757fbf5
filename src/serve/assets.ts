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

export interface Asset {
  type: string; // Content-Type
  body: Buffer;
  etag: string;
}

/** The page's own files; the same folder from src/serve (tests) and dist/serve (the CLI). */
const PAGE_DIR = fileURLToPath(new URL('../../src/serve/page/', import.meta.url));

/** URL path -> where it is read from, and its type. */
function assetSources(): Record<string, { file: string; type: string }> {
  const require = createRequire(import.meta.url);
  const tfjsDist = join(dirname(require.resolve('@tensorflow/tfjs/package.json')), 'dist');
  return {
    '/': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
    '/assets/app.js': { file: join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/assets/style.css': { file: join(PAGE_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
    '/assets/tf.es2017.min.js': { file: join(tfjsDist, 'tf.es2017.min.js'), type: 'text/javascript; charset=utf-8' },
  };
}

/** Reads every asset once (about 1.5 MB, most of it the tfjs bundle without polyfills, which needs no eval under the CSP). */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(assetSources())) {
    const body = readFileSync(file);
    assets.set(path, { type, body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });
  }
  return assets;
}

/**
 * The page's Content-Security-Policy: its own scripts, styles and connections only; images
 * from data: URLs (the 32x32 inputs) and blob: (dropped files); the webcam as a media stream.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
