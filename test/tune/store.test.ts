/**
 * The study store on both backends: the shared suite (store.suite.ts) on the embedded store
 * (always) and on a PostgreSQL server (where SVHN_TEST_POSTGRES_URL names one:
 * scripts/pg-test-server.sh starts a throwaway one), then what only one backend has: the
 * embedded store's lock, a server's connection errors, and two worker processes sharing a
 * study on a server while one of them is killed.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatError } from '../../src/errors.js';
import { openEmbeddedStore } from '../../src/tune/store/embedded.js';
import { openStore, redactUrl } from '../../src/tune/store/index.js';
import { openPostgresStore } from '../../src/tune/store/postgres.js';
import { SCHEMA_VERSION } from '../../src/tune/store/sql.js';
import { rejection } from '../helpers.js';
import { storeSuite, studySpec } from './store.suite.js';

const POSTGRES_URL = process.env.SVHN_TEST_POSTGRES_URL || undefined;
const NO_POSTGRES = POSTGRES_URL ? undefined : 'no PostgreSQL server: set SVHN_TEST_POSTGRES_URL (scripts/pg-test-server.sh start prints one)';

const tmp = mkdtempSync(join(tmpdir(), 'svhn-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const embeddedDir = join(tmp, 'study', 'study.pglite');

storeSuite('embedded (PGlite)', () => openEmbeddedStore(embeddedDir));

storeSuite('PostgreSQL', () => openPostgresStore(POSTGRES_URL!), {
  openPeer: () => openPostgresStore(POSTGRES_URL!), // its own pool: another machine
  skip: NO_POSTGRES,
});

describe('the embedded store', () => {
  it('is one process\'s at a time: a second open of the folder is one line naming the holder, and works once the first closes', async () => {
    const store = await openEmbeddedStore(embeddedDir);
    try {
      const e = await rejection(openEmbeddedStore(embeddedDir));
      const dir = embeddedDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(e.message).toMatch(new RegExp(`^the study database ${dir}: another svhn run \\(pid ${process.pid}, since .*\\) is writing it; its lock is ${dir}\\.lock$`));
      expect(e.suggestion).toMatch(/--storage postgres:/);
    } finally {
      await store.close();
    }
    const again = await openEmbeddedStore(embeddedDir);
    expect(again.kind).toBe('embedded');
    await again.close();
  });

  it('refuses a database whose tables another svhn version wrote, and leaves it alone', async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create(embeddedDir);
    await db.query('UPDATE svhn.schema_version SET version = $1', [SCHEMA_VERSION + 1]);
    await db.close();
    const e = await rejection(openEmbeddedStore(embeddedDir));
    expect(e.message).toBe(`${embeddedDir}: its svhn tables are version ${SCHEMA_VERSION + 1}; this svhn reads version ${SCHEMA_VERSION}`);
    expect(e.suggestion).toBe('upgrade svhn');
    const restore = await PGlite.create(embeddedDir); // the refusal released the lock and closed the database
    await restore.query('UPDATE svhn.schema_version SET version = $1', [SCHEMA_VERSION]);
    await restore.close();
  });
});

describe('openStore: --storage', () => {
  it('nothing: the embedded store in <study>/study.pglite', async () => {
    const studyDir = join(tmp, 'by-open-store');
    const store = await openStore(undefined, studyDir);
    try {
      expect(store.kind).toBe('embedded');
      const e = await rejection(openEmbeddedStore(join(studyDir, 'study.pglite'))); // that very folder, locked
      expect(e.message).toContain(join(studyDir, 'study.pglite'));
    } finally {
      await store.close();
    }
  });

  it.for(['sqlite:///tmp/x.db', 'mysql://me:hunter2@db/x', '/tmp/study', 'postgres:/no-slashes'])('%s: one BAD_FLAG line naming --storage and what it expects, no password', async (storage) => {
    const e = await rejection(openStore(storage, tmp));
    expect(e.code).toBe('BAD_FLAG');
    expect(e.message).toMatch(/^--storage .*: expected a PostgreSQL URL, postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE$/);
    expect(e.message).not.toContain('hunter2');
  });

  it('a server that does not answer: one BAD_FLAG line, the password removed', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const e = await rejection(openStore('postgresql://svhn:hunter2@127.0.0.1:1/studies?sslmode=disable&password=hunter2', tmp));
    expect(e.code).toBe('BAD_FLAG');
    expect(e.message).toBe('--storage postgresql://svhn@127.0.0.1:1/studies?sslmode=disable: could not connect (ECONNREFUSED)');
    expect(formatError(e)).not.toContain('hunter2');
  });

  it.for([
    ['postgres://me:s3cret@host:5432/db', 'postgres://me@host:5432/db'],
    ['postgres://me:p%40ss@host/db', 'postgres://me@host/db'],
    ['postgres://me:p@ss@host/db', 'postgres://me@host/db'],
    ['postgres://me@host/db', 'postgres://me@host/db'],
    ['postgres://host/db?password=x&application_name=a', 'postgres://host/db?application_name=a'],
    ['postgres://host/db?sslpassword=x', 'postgres://host/db'],
  ])('redactUrl(%s) = %s', ([url, printed]) => {
    expect(redactUrl(url!)).toBe(printed);
  });
});

describe('a PostgreSQL server', () => {
  const withUrl = (change: (u: URL) => void) => {
    const u = new URL(POSTGRES_URL!);
    change(u);
    return u.toString();
  };

  it('a wrong password or a missing database: one BAD_FLAG line, no password', async (ctx) => {
    if (NO_POSTGRES) ctx.skip(NO_POSTGRES);
    const wrong = await rejection(openPostgresStore(withUrl((u) => (u.password = 'not-the-password'))));
    expect(wrong.code).toBe('BAD_FLAG');
    expect(wrong.message).toMatch(/^--storage postgresql:\/\/\w+@127\.0\.0\.1:\d+\/\w+: could not connect \(password authentication failed for user "\w+" \[28P01\]\)$/);
    expect(wrong.message).not.toContain('not-the-password');
    const missing = await rejection(openPostgresStore(withUrl((u) => (u.pathname = '/no_such_database'))));
    expect(missing.message).toMatch(/^--storage postgresql:\/\/\w+@[^ ]+\/no_such_database: could not connect \(database "no_such_database" does not exist \[3D000\]\)$/);
    expect(missing.message).not.toContain(new URL(POSTGRES_URL!).password);
  });

  it('two worker processes share a study; one is killed (SIGKILL) holding a trial: none lost, none run twice, exactly the target', async (ctx) => {
    if (NO_POSTGRES) ctx.skip(NO_POSTGRES);
    const target = 10;
    const staleMs = 2500; // heartbeats every 625 ms: a busy machine does not make a live worker look stale
    const study = `killed-${randomUUID().slice(0, 8)}`;
    const worker = join(import.meta.dirname, 'fixtures', 'store-worker.mjs');
    const dist = pathToFileURL(join(import.meta.dirname, '../../dist/tune/store/postgres.js')).href;
    const start = (name: string) => {
      const child = spawn(process.execPath, [worker, dist, POSTGRES_URL!, study, String(target), String(staleMs), '150', name], { stdio: ['ignore', 'pipe', 'pipe'] });
      const events: Array<{ worker: string; event: string; number?: number; reclaimed?: boolean; params?: unknown }> = [];
      let buffered = '';
      let stderr = '';
      const listeners: Array<() => void> = [];
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) events.push(JSON.parse(line));
        for (const l of listeners) l();
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
      const when = (test: () => boolean) =>
        new Promise<void>((done) => {
          const check = () => test() && done();
          listeners.push(check);
          check();
        });
      return { child, events, exited, when, stderr: () => stderr };
    };
    const a = start('a');
    const b = start('b');
    const killer = setTimeout(() => [a, b].forEach((w) => w.child.kill('SIGKILL')), 60_000);
    try {
      // a is killed as it starts its second trial: one done before, one held.
      await Promise.race([
        a.when(() => a.events.filter((e) => e.event === 'claimed').length === 2),
        a.exited.then(() => Promise.reject(new Error(`worker a ended before its second trial: ${a.stderr()}`))),
      ]);
      a.child.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
      const bExit = await b.exited;
      expect(bExit.code, b.stderr()).toBe(0);
    } finally {
      clearTimeout(killer);
    }
    const held = a.events.filter((e) => e.event === 'claimed').at(-1)!;
    const doneByA = a.events.filter((e) => e.event === 'done').map((e) => e.number!);
    const doneByB = b.events.filter((e) => e.event === 'done').map((e) => e.number!);
    expect(doneByA).not.toContain(held.number);
    expect([...doneByA, ...doneByB].sort((x, y) => x - y)).toEqual(Array.from({ length: target }, (_, i) => i)); // each exactly once
    expect(b.events.filter((e) => e.event === 'lost')).toEqual([]);
    // b took the killed one's trial over, with its params; it claimed nothing a finished.
    expect(b.events.filter((e) => e.event === 'claimed' && e.reclaimed)).toEqual([{ worker: 'b', event: 'claimed', number: held.number, reclaimed: true, params: held.params }]);
    const claimedByB = b.events.filter((e) => e.event === 'claimed').map((e) => e.number!);
    for (const n of doneByA) expect(claimedByB).not.toContain(n);

    const store = await openPostgresStore(POSTGRES_URL!);
    try {
      const { id } = await store.openStudy({ ...studySpec(), name: study, model: 'optimized', space: [{ name: 'lr', kind: 'log-float', low: 1e-4, high: 0.1 }], fixed: { epochs: 3 } });
      const trials = await store.trials(id);
      expect(trials).toHaveLength(target);
      for (const t of trials) expect(t).toMatchObject({ state: 'complete', value: t.number / 100, params: { lr: 0.001 * (t.number + 1) } });
    } finally {
      await store.close();
    }
  });
});
