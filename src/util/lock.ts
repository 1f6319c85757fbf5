/**
 * One writer per output: a lock file beside it (`<out>.lock`) holding the owner's pid, host
 * and start time. A second run on the same output is refused with the owner's pid; a lock
 * whose owner is gone (killed with SIGKILL, the machine rebooted) is stale and taken over.
 * Removed when the run ends, and by the interrupt handler on Ctrl-C.
 *
 * The lock appears whole or not at all: its content is written to a temporary sibling, which
 * is then hard-linked to the lock's name (link fails if the name exists: the exclusive step).
 * So a lock that is empty or does not parse was never a live run's: a crash of an older
 * version, or a disk that filled mid-write; it is stale like a dead owner's.
 */
import { link, open, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { SvhnError, ioError } from '../errors.js';
import { removeStaleTemps, tempSibling } from './atomic.js';
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
    return undefined; // gone, empty or unparsable: never a live run's (see the header), stale
  }
}

/** link() errors of file systems without hard links (FAT, some FUSE and network mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Where hard links are missing: the lock created exclusively in place, and removed if its write fails. */
async function writeLockInPlace(lockPath: string, owner: LockOwner): Promise<void> {
  const fh = await open(lockPath, 'wx');
  try {
    await fh.writeFile(JSON.stringify(owner) + '\n');
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(lockPath, { force: true });
    throw e;
  }
}

/**
 * Creates the lock holding `owner`, whole: true when created, false when the name exists. A
 * failed write (a full disk) leaves neither the lock nor its temporary.
 */
async function createLock(lockPath: string, owner: LockOwner): Promise<boolean> {
  const { tmp, release } = tempSibling(lockPath);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(JSON.stringify(owner) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, lockPath).catch((e: unknown) => {
      if (!NO_HARD_LINKS.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      return writeLockInPlace(lockPath, owner);
    });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError(lockPath, 'create', e);
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    release();
  }
}

/** This process's start: a lock naming our own pid from before it is a dead run's (pid reused). */
const PROCESS_START = Date.now() - process.uptime() * 1000;

function isOwnerLive(owner: LockOwner, me: LockOwner): boolean {
  if (owner.host !== me.host) return true;
  if (owner.pid === process.pid) return Date.parse(owner.startedAt) >= PROCESS_START - 1000; // another run in this process
  return isProcessAlive(owner.pid);
}

/** Whether a live run holds the lock at lockPath (another host's counts as live, as in withLock). */
export async function isLockHeld(lockPath: string): Promise<boolean> {
  const owner = await readOwner(lockPath);
  return owner !== undefined && isOwnerLive(owner, { pid: process.pid, host: hostname(), startedAt: '' });
}

/**
 * Takes the lock at lockPath for `what` (e.g. "--out models/o"), runs fn, releases it. A live
 * owner on this host is a SvhnError naming its pid; another host's lock (a shared disk) is
 * trusted as live, since its pid cannot be checked from here.
 */
export async function withLock<T>(lockPath: string, what: string, fn: () => Promise<T>, suggestion = 'wait for it to finish, or pass another --out'): Promise<T> {
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  await removeStaleTemps(lockPath); // a temporary lock of a run killed while creating it
  for (let attempt = 0; ; attempt++) {
    if (await createLock(lockPath, me)) break;
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
