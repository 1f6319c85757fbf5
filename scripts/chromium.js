/**
 * Debian's Chromium for the page tests and bench:read's webcam part: where it is, and the flags
 * every headless run here takes (test/helpers.ts re-exports both).
 */
import { existsSync } from 'node:fs';

/** Debian's Chromium, or undefined (what needs it skips). @type {string | undefined} */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/**
 * Flags every headless Chromium run here takes: no sandbox (root in CI), no GPU, and none of
 * its background connections, which this machine's closed network refuses (many at a time).
 */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
