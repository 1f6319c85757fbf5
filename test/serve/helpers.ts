/**
 * `svhn serve` as users start it (bin/svhn.js runs dist/: build first), on a free loopback
 * port, plus the models the serve tests read with: the colour model (answers known in advance,
 * test/predict/helpers.ts) and a real `optimized` model trained for one epoch by the CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SVHN_BIN, svhnAsync } from '../helpers.js';
import { saveColourModel } from '../predict/helpers.js';
import { writeTinyCache } from '../train/helpers.js';

export interface RunningServer {
  url: string; // http://127.0.0.1:PORT/
  child: ChildProcess;
  /** Everything logged so far. */
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts `svhn serve ARGS --port 0` in cwd and waits for the URL it prints. */
export function startServe(args: string[], cwd: string): Promise<RunningServer> {
  const child = spawn(process.execPath, [SVHN_BIN, 'serve', '--port', '0', '--log-format', 'json', ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`svhn serve printed no URL in 60 s:\n${stderr}`));
    }, 60_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /^(http:\/\/\S+\/)\n/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stderr: () => stderr,
          exited,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`svhn serve exited ${code} before printing its URL:\n${stderr}`));
    });
  });
}

/** models/colour (the colour model) and models/optimized (one epoch on a tiny cache) under root. */
export async function writeServeModels(root: string): Promise<void> {
  await saveColourModel(join(root, 'models/colour'));
  await writeTinyCache(join(root, 'data'), { train: 40, val: 20 });
  const r = await svhnAsync(['train', '--model', 'optimized', '--data-dir', 'data', '--limit', '40', '--val-limit', '20', '--batch-size', '10', '--epochs', '1', '--backend', 'wasm', '--threads', '1', '--out', 'models/optimized'], { cwd: root });
  if (r.code !== 0) throw new Error(`training the test model failed:\n${r.stderr}`);
}
