/**
 * Where a study is kept, from --storage: nothing, the study's own embedded database in its
 * folder (one process at a time); postgres:// or postgresql://, a server that workers on
 * several machines share. Both are the same SQL (sql.ts) and pass the same tests.
 */
import { join } from 'node:path';
import { SvhnError } from '../../errors.js';
import { EMBEDDED_STORE_DIR as EMBEDDED_DIR } from '../layout.js';
import type { StudyStore } from '../types.js';
import { openEmbeddedStore } from './embedded.js';
import { openPostgresStore, redactUrl } from './postgres.js';

export { openEmbeddedStore } from './embedded.js';
export { openPostgresStore, redactUrl } from './postgres.js';

/** Opens the store `storage` names (undefined: `<studyDir>/study.pglite`). */
export async function openStore(storage: string | undefined, studyDir: string): Promise<StudyStore> {
  checkStorage(storage, studyDir);
  return storage === undefined ? openEmbeddedStore(join(studyDir, EMBEDDED_DIR)) : openPostgresStore(storage);
}

/** Refuses a --storage that names no store, before anything is made. */
export function checkStorage(storage: string | undefined, studyDir: string): void {
  if (storage === undefined || /^postgres(ql)?:\/\//i.test(storage)) return;
  throw new SvhnError('BAD_FLAG', `--storage ${redactUrl(storage)}: expected a PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE`, {
    suggestion: `or leave --storage out to keep the study in ${join(studyDir, EMBEDDED_DIR)}`,
  });
}
