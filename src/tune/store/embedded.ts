/**
 * The embedded study store: PostgreSQL compiled to wasm (PGlite) in a folder, the study's own
 * database when no --storage is given. One process at a time: PGlite is a single-user server
 * writing its files directly, so a second process on the same folder would corrupt it. The
 * folder's lock (util/lock.ts, `<dir>.lock`) is held from open to close and refuses a second
 * run in one line; a lock left by a killed run is stale and taken over.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SvhnError } from '../../errors.js';
import { withLock } from '../../util/lock.js';
import type { StudyStore } from '../types.js';
import { SqlStore, type SqlClient, type SqlQueryable } from './sql.js';

/** Opens (creating on first use: a few seconds) the study database in the folder `dir`. */
export async function openEmbeddedStore(dir: string): Promise<StudyStore> {
  await mkdir(dirname(dir), { recursive: true }).catch(() => undefined); // PGlite makes `dir` itself, not its parents; a failure shows below
  const unlock = await holdLock(`${dir}.lock`, `the study database ${dir}`);
  let client: SqlClient;
  try {
    client = await openPglite(dir);
  } catch (e) {
    await unlock();
    throw e;
  }
  return SqlStore.open('embedded', client, dir, unlock);
}

async function openPglite(dir: string): Promise<SqlClient> {
  // Loaded here, not at the top: `svhn --help` and the PostgreSQL store never pay for the wasm module.
  const { PGlite } = await import('@electric-sql/pglite');
  let db: InstanceType<typeof PGlite>;
  try {
    db = await PGlite.create(dir);
  } catch (e) {
    throw new SvhnError('IO', `cannot open the study database ${dir}: ${firstLine(e)}`, { cause: e });
  }
  // PGlite runs one statement or transaction at a time; concurrent calls queue (its own mutex).
  const queryable = (q: Pick<InstanceType<typeof PGlite>, 'query'>): SqlQueryable => ({
    query: async <Row>(text: string, params?: unknown[]) => ({ rows: (await q.query<Row>(text, params)).rows }),
  });
  return {
    ...queryable(db),
    transaction: (fn) => db.transaction((tx) => fn(queryable(tx))),
    close: () => db.close(),
  };
}

/**
 * Takes the lock at lockPath and keeps it until the returned function is called. withLock holds
 * a lock for the length of a callback; here that callback waits for the store's close.
 */
function holdLock(lockPath: string, what: string): Promise<() => Promise<void>> {
  return new Promise((held, refused) => {
    let closed!: () => void;
    const whenClosed = new Promise<void>((resolve) => (closed = resolve));
    const released = withLock(
      lockPath,
      what,
      async () => {
        held(async () => {
          closed();
          await released;
        });
        await whenClosed;
      },
      'wait for it to finish; to run several workers on one study, keep it on a PostgreSQL server (--storage postgres://...)',
    );
    released.catch(refused);
  });
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
