/**
 * One writer per output: a lock file beside it (`<out>.lock`) holding the owner's pid, host
 * and start time. A second run on the same output is refused with the owner's pid; a lock
 * whose owner is gone (killed with SIGKILL, the machine rebooted) is stale and taken over.
 * Removed when the run ends, and by the interrupt handler on Ctrl-C.
 */
import { open, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { SvhnError, ioError } from '../errors.js';
import { isNotRegularFile, readRegularFile } from './files.js';
import { trackTemp } from './interrupt.js';
import { isProcessAlive } from './process.js';

interface LockOwner {
  pid: number;
  host: string;
  startedAt: string; // ISO time
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse((await readRegularFile(path)).toString('utf8')) as LockOwner;
    return typeof owner?.pid === 'number' ? owner : undefined;
  } catch (e) {
    if (isNotRegularFile(e)) throw ioError(path, 'read the lock', e); // not a lock svhn wrote: not ours to remove
    return undefined; // gone, or half-written by a run killed mid-write: stale
  }
}

/** This process's start: a lock naming our own pid from before it is a dead run's (pid reused). */
const PROCESS_START = Date.now() - process.uptime() * 1000;

function isOwnerLive(owner: LockOwner, me: LockOwner): boolean {
  if (owner.host !== me.host) return true;
  if (owner.pid === process.pid) return Date.parse(owner.startedAt) >= PROCESS_START - 1000; // another run in this process
  return isProcessAlive(owner.pid);
}

/**
 * Takes the lock at lockPath for `what` (e.g. "--out models/o"), runs fn, releases it. A live
 * owner on this host is a SvhnError naming its pid; another host's lock (a shared disk) is
 * trusted as live, since its pid cannot be checked from here.
 */
export async function withLock<T>(lockPath: string, what: string, fn: () => Promise<T>, suggestion = 'wait for it to finish, or pass another --out'): Promise<T> {
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lockPath, 'wx');
      try {
        await fh.writeFile(JSON.stringify(me) + '\n');
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(lockPath, 'create', e);
    }
    const owner = await readOwner(lockPath);
    if (owner && isOwnerLive(owner, me)) {
      throw new SvhnError('BAD_INPUT', `${what}: another svhn run (pid ${owner.pid}${owner.host !== me.host ? ` on ${owner.host}` : ''}, since ${owner.startedAt}) is writing it; its lock is ${lockPath}`, {
        suggestion,
      });
    }
    if (attempt >= 2) throw new SvhnError('IO', `cannot take the lock ${lockPath}: it keeps reappearing`);
    await rm(lockPath, { force: true }); // stale: its owner is gone
  }
  const release = trackTemp(lockPath);
  try {
    return await fn();
  } finally {
    release();
    await rm(lockPath, { force: true }).catch(() => undefined);
  }
}
