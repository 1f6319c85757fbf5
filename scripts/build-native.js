#!/usr/bin/env node
// Builds svhn's optional native kernels (native/: the 16-channel conv and gemm loops with
// AVX-512 or AVX2, see src/backend/kernels/native.ts) with node-gyp. `npm install` runs it
// (package.json "install"). Nothing needs the addon: where it does not build (no C
// compiler, no Node headers, not x86-64) svhn runs its wasm kernels, with the same results.
// So this prints one line, built or not, and always exits 0. SVHN_NATIVE_KERNELS=0 skips it.
//
// usage: node scripts/build-native.js
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NATIVE_DIR = fileURLToPath(new URL('../native/', import.meta.url));
const ADDON = join(NATIVE_DIR, 'build/Release/svhn_kernels.node');
/** Long enough for a slow machine; node-gyp takes ~5 s here. */
const TIMEOUT_MS = 5 * 60_000;

/**
 * node-gyp as [command, ...args]: the one npm's lifecycle puts on PATH, else the copy bundled
 * with npm beside this node (run by this node).
 */
function nodeGyp() {
  if (process.env.npm_lifecycle_event) return ['node-gyp'];
  const bundled = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  return existsSync(bundled) ? [process.execPath, bundled] : ['node-gyp'];
}

/**
 * Where this node's headers are, when npm does not say (npm_config_nodedir): its own
 * prefix if that has include/node (a distribution's node), so node-gyp downloads nothing.
 */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

/** The last non-empty lines of node-gyp's output: the reason it failed. */
function reason(result) {
  if (result.error) return result.error.message;
  const lines = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.split('\n').map((l) => l.trim());
  const errors = lines.filter((l) => /error|not found|ERR!/i.test(l) && !/gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l));
  return (errors[0] ?? lines.filter(Boolean).pop() ?? `exit code ${result.status}`).slice(0, 200);
}

function build() {
  if (process.env.SVHN_NATIVE_KERNELS === '0') return 'svhn: native kernels skipped (SVHN_NATIVE_KERNELS=0); the wasm kernels run';
  const [command, ...args] = nodeGyp();
  const result = spawnSync(command, [...args, 'rebuild', ...nodeDirArgs()], {
    cwd: NATIVE_DIR, encoding: 'utf8', timeout: TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.status !== 0 || !existsSync(ADDON)) {
    return `svhn: native kernels not built (${reason(result)}); the wasm kernels run instead`;
  }
  try {
    const variants = Object.keys(createRequire(import.meta.url)(ADDON));
    if (variants.length === 0) return 'svhn: native kernels built, but this CPU has no AVX2: the wasm kernels run';
    return `svhn: native kernels built (${variants.join(', ')})`;
  } catch (e) {
    return `svhn: native kernels built but do not load (${String(e.message).split('\n')[0]}); the wasm kernels run`;
  }
}

try {
  console.log(build());
} catch (e) {
  console.log(`svhn: native kernels not built (${e.message}); the wasm kernels run instead`);
}
process.exitCode = 0;
