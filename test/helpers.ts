/** Shared test helpers. */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { SvhnError } from '../src/errors.js';

/** Awaits a promise that must reject with a SvhnError, and returns that error for its message checks. */
export async function rejection(p: Promise<unknown>): Promise<SvhnError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SvhnError);
    return e as SvhnError;
  }
  throw new Error('expected a rejection');
}

/** The CLI as users run it (bin/svhn.js runs dist/: `npm test` builds it first). */
export const SVHN_BIN = fileURLToPath(new URL('../bin/svhn.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  timeoutMs?: number; // a hung command fails the test instead of stalling the suite (SIGKILL: a hung read can outlive SIGTERM)
  env?: Record<string, string>;
}

const cliEnv = (extra?: Record<string, string>) => ({ ...process.env, NO_COLOR: '1', ...extra });

/** Runs `svhn ARGS` to completion in cwd. */
export function svhnSync(args: string[], opts: CliOptions): CliRun {
  const r = spawnSync(process.execPath, [SVHN_BIN, ...args], { cwd: opts.cwd, encoding: 'utf8', env: cliEnv(opts.env), timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same without blocking this process (for tests that serve the CLI from it, e.g. a loopback server). */
export function svhnAsync(args: string[], opts: CliOptions): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SVHN_BIN, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface InterruptOptions {
  cwd: string;
  /** The signal sent once `ready` holds (default SIGINT). */
  signal?: NodeJS.Signals;
  /** How often `ready` is asked, ms (default 20). */
  pollMs?: number;
  /** SIGKILL after this long without `ready` holding, ms (default 90 s), so a hang fails the test instead of stalling the suite. */
  deadlineMs?: number;
}

/** Starts `svhn ARGS`, sends a signal once `ready(stderr so far)` holds, and resolves with its exit code, stderr and whether the signal was sent. */
export function interruptWhen(args: string[], ready: (stderr: string) => boolean | Promise<boolean>, opts: InterruptOptions): Promise<{ code: number | null; stderr: string; sent: boolean }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [SVHN_BIN, ...args], { cwd: opts.cwd, env: cliEnv() });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    const deadline = Date.now() + (opts.deadlineMs ?? 90_000);
    const poll = setInterval(async () => {
      if (sent) return;
      if (await ready(stderr)) {
        sent = true;
        child.kill(opts.signal ?? 'SIGINT');
      } else if (Date.now() > deadline) child.kill('SIGKILL');
    }, opts.pollMs ?? 20);
    child.on('error', fail);
    child.on('exit', (code) => {
      clearInterval(poll);
      done({ code, stderr, sent });
    });
  });
}

/** Debian's Chromium for the page tests (undefined: those tests skip), and the flags every headless run takes: scripts/chromium.js, shared with bench:read. */
export { CHROMIUM, CHROMIUM_FLAGS } from '../scripts/chromium.js';
