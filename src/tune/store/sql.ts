/**
 * The study store's one code path: PostgreSQL's SQL over a tiny client, run by the embedded
 * store (PGlite, PostgreSQL compiled to wasm) and by a PostgreSQL server alike.
 *
 * Tables live in their own schema, `svhn`, so a database shared with other tools (an Optuna
 * study has its own `studies` and `trials`) is left alone:
 *
 *   svhn.schema_version(version)                     one row: SCHEMA_VERSION
 *   svhn.studies(id, name unique, model, spec json, created_at)
 *   svhn.trials(id, study_id, number, state, params json, value, worker, heartbeat,
 *               started_at, finished_at, unique(study_id, number))
 *   svhn.intermediates(trial_id, step, value, primary key(trial_id, step))
 *
 * Who holds a trial: `worker` (NULL once released) and `heartbeat`, both written by the holder
 * and read under row locks. Every time comes from the database's clock (clock_timestamp()),
 * never from a worker's, so machines whose clocks disagree still agree on who is stale.
 */
import { SvhnError } from '../../errors.js';
import type { ClaimedTrial, ParamSpec, Params, StudySpec, StudyStore, TrialRecord, TrialState } from '../types.js';

/** What runs a statement: a pool, a connection, or a transaction's own. */
export interface SqlQueryable {
  query<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

/** The driver underneath: statements, transactions (BEGIN ... COMMIT, ROLLBACK when fn throws) and the end. */
export interface SqlClient extends SqlQueryable {
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The tables' layout; a database written by a newer svhn is refused rather than misread. */
export const SCHEMA_VERSION = 1;

/** Any constant: the advisory lock that serialises two workers creating the tables at once. */
const SCHEMA_LOCK = 7_415_036;

const CREATE_TABLES = [
  `CREATE TABLE svhn.schema_version (version integer NOT NULL)`,
  `CREATE TABLE svhn.studies (
     id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     name text NOT NULL UNIQUE,
     model text NOT NULL,
     spec json NOT NULL,
     created_at timestamptz NOT NULL DEFAULT clock_timestamp()
   )`,
  `CREATE TABLE svhn.trials (
     id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     study_id integer NOT NULL REFERENCES svhn.studies(id) ON DELETE CASCADE,
     number integer NOT NULL,
     state text NOT NULL CHECK (state IN ('running', 'complete', 'pruned', 'failed')),
     params json NOT NULL,
     value double precision,
     worker text,
     heartbeat timestamptz,
     started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
     finished_at timestamptz,
     UNIQUE (study_id, number)
   )`,
  `CREATE INDEX trials_running ON svhn.trials (study_id, number) WHERE state = 'running'`,
  `CREATE TABLE svhn.intermediates (
     trial_id integer NOT NULL REFERENCES svhn.trials(id) ON DELETE CASCADE,
     step integer NOT NULL,
     value double precision NOT NULL,
     PRIMARY KEY (trial_id, step)
   )`,
];

/**
 * Creates the tables where they are missing, and checks the version of those that exist.
 * `label` names the storage in messages (--storage without its password, or the folder).
 */
async function ensureSchema(db: SqlClient, label: string): Promise<void> {
  await db.transaction(async (tx) => {
    // Looked up before any CREATE: a user allowed to use the tables need not be allowed to make them.
    const { rows } = await tx.query<{ exists: boolean }>(`SELECT to_regclass('svhn.schema_version') IS NOT NULL AS exists`);
    if (!rows[0]?.exists) {
      await tx.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS svhn`);
      const again = await tx.query<{ exists: boolean }>(`SELECT to_regclass('svhn.schema_version') IS NOT NULL AS exists`);
      if (!again.rows[0]?.exists) {
        for (const statement of CREATE_TABLES) await tx.query(statement);
        await tx.query(`INSERT INTO svhn.schema_version (version) VALUES ($1)`, [SCHEMA_VERSION]);
      }
    }
    const version = (await tx.query<{ version: number }>(`SELECT max(version) AS version FROM svhn.schema_version`)).rows[0]?.version;
    if (version !== SCHEMA_VERSION) {
      throw new SvhnError('BAD_FLAG', `${label}: its svhn tables are version ${version ?? 'unknown'}; this svhn reads version ${SCHEMA_VERSION}`, {
        suggestion: version !== null && version !== undefined && version > SCHEMA_VERSION ? 'upgrade svhn' : 'use another database or folder for this study',
      });
    }
  });
}

interface TrialRow {
  id: number;
  number: number;
  state: TrialState;
  params: Params;
  value: number | null;
}

/** Every trial of a study with its intermediates, by number (inside whatever transaction `q` is). */
async function readTrials(q: SqlQueryable, studyId: number): Promise<TrialRecord[]> {
  const trials = (
    await q.query<TrialRow>(`SELECT id, number, state, params, value FROM svhn.trials WHERE study_id = $1 ORDER BY number`, [studyId])
  ).rows;
  const steps = (
    await q.query<{ trial_id: number; step: number; value: number }>(
      `SELECT i.trial_id, i.step, i.value FROM svhn.intermediates i JOIN svhn.trials t ON t.id = i.trial_id
        WHERE t.study_id = $1 ORDER BY i.trial_id, i.step`,
      [studyId],
    )
  ).rows;
  const byTrial = new Map<number, Array<[number, number]>>();
  for (const s of steps) {
    const list = byTrial.get(s.trial_id) ?? [];
    list.push([s.step, s.value]);
    byTrial.set(s.trial_id, list);
  }
  return trials.map((t) => ({ number: t.number, state: t.state, params: t.params, value: t.value, intermediates: byTrial.get(t.id) ?? [] }));
}

/** A StudyStore over any SqlClient speaking PostgreSQL. Open with SqlStore.open, which makes the tables. */
export class SqlStore implements StudyStore {
  private constructor(
    readonly kind: StudyStore['kind'],
    private readonly db: SqlClient,
    private readonly label: string,
    private readonly onClose: () => Promise<void>,
  ) {}

  /**
   * `label` names the storage in messages; `onClose` runs after the client closes (the
   * embedded store's lock). The client is closed here if the tables cannot be made or read.
   */
  static async open(kind: StudyStore['kind'], db: SqlClient, label: string, onClose: () => Promise<void> = async () => undefined): Promise<SqlStore> {
    try {
      await ensureSchema(db, label);
    } catch (e) {
      await db.close().catch(() => undefined);
      await onClose();
      if (e instanceof SvhnError) throw e;
      // A user who may not create them (PostgreSQL 15 grants CREATE on a database to its owner only), a damaged database.
      const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      throw new SvhnError(kind === 'postgres' ? 'BAD_FLAG' : 'IO', `${label}: cannot set up the study tables (${reason})`, {
        cause: e,
        suggestion: kind === 'postgres' ? 'ask the database\'s owner to run the first `svhn tune` on it, or to grant you CREATE on it' : undefined,
      });
    }
    return new SqlStore(kind, db, label, onClose);
  }

  /**
   * Model, space and fixed flags must match an existing study's (describeDifference); the
   * `spec` returned is the one the study was made with, whose sampler, pruner, seed and trial
   * target this run may have changed (each claim is given its own target).
   */
  async openStudy(spec: StudySpec): Promise<{ id: number; created: boolean; spec: StudySpec }> {
    return this.db.transaction(async (tx) => {
      // ON CONFLICT: two workers creating the same study at once both end up opening one.
      const inserted = await tx.query<{ id: number }>(
        `INSERT INTO svhn.studies (name, model, spec) VALUES ($1, $2, $3::text::json) ON CONFLICT (name) DO NOTHING RETURNING id`,
        [spec.name, spec.model, JSON.stringify(spec)],
      );
      if (inserted.rows[0]) return { id: inserted.rows[0].id, created: true, spec };
      const existing = (await tx.query<{ id: number; spec: StudySpec }>(`SELECT id, spec FROM svhn.studies WHERE name = $1`, [spec.name])).rows[0];
      if (!existing) throw new SvhnError('IO', `${this.label}: study '${spec.name}' vanished while it was being opened`);
      const difference = describeDifference(existing.spec, spec);
      if (difference) {
        throw new SvhnError('BAD_FLAG', `study '${spec.name}' ${difference}`, {
          suggestion: 'give this search another study name, or run it with the study\'s own model, space and flags',
        });
      }
      return { id: existing.id, created: false, spec: existing.spec };
    });
  }

  async trials(studyId: number): Promise<TrialRecord[]> {
    return this.db.transaction((tx) => readTrials(tx, studyId)); // one snapshot for trials and their steps
  }

  async claimTrial(
    studyId: number,
    worker: string,
    target: number,
    propose: (trials: TrialRecord[], number: number) => Params,
    staleMs: number,
  ): Promise<ClaimedTrial | undefined> {
    return this.db.transaction(async (tx) => {
      // The study's row lock: one claim at a time per study, on every machine. Each statement
      // below then sees every trial the claims before it committed (read committed).
      const study = await tx.query(`SELECT id FROM svhn.studies WHERE id = $1 FOR UPDATE`, [studyId]);
      if (study.rows.length === 0) throw new SvhnError('IO', `${this.label}: no study with id ${studyId}`);

      // A released trial (no worker), or one whose holder went quiet: taken over, number and params kept.
      // SKIP LOCKED: a row its holder is updating right now (a heartbeat, its finish) is not stale.
      const staleSeconds = Number.isFinite(staleMs) ? Math.max(0, staleMs) / 1000 : null;
      const stale = (
        await tx.query<{ id: number; number: number; params: Params }>(
          `SELECT id, number, params FROM svhn.trials
            WHERE study_id = $1 AND state = 'running'
              AND (worker IS NULL OR ($2::float8 IS NOT NULL AND heartbeat < clock_timestamp() - make_interval(secs => $2::float8)))
            ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED`,
          [studyId, staleSeconds],
        )
      ).rows[0];
      if (stale) {
        await tx.query(`UPDATE svhn.trials SET worker = $2, heartbeat = clock_timestamp() WHERE id = $1`, [stale.id, worker]);
        return { id: stale.id, number: stale.number, params: stale.params, reclaimed: true };
      }

      const { counted, last } = (
        await tx.query<{ counted: number; last: number }>(
          `SELECT (count(*) FILTER (WHERE state IN ('complete', 'pruned', 'running')))::int AS counted,
                  coalesce(max(number), -1)::int AS last
             FROM svhn.trials WHERE study_id = $1`,
          [studyId],
        )
      ).rows[0]!;
      if (counted >= target) return undefined;

      const number = last + 1;
      const params = propose(await readTrials(tx, studyId), number);
      const created = await tx.query<{ id: number }>(
        `INSERT INTO svhn.trials (study_id, number, state, params, worker, heartbeat)
         VALUES ($1, $2, 'running', $3::text::json, $4, clock_timestamp()) RETURNING id`,
        [studyId, number, JSON.stringify(params), worker],
      );
      return { id: created.rows[0]!.id, number, params, reclaimed: false };
    });
  }

  async heartbeat(trialId: number, worker: string): Promise<boolean> {
    const { rows } = await this.db.query(
      `UPDATE svhn.trials SET heartbeat = clock_timestamp() WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id`,
      [trialId, worker],
    );
    return rows.length === 1;
  }

  async report(trialId: number, worker: string, step: number, value: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // The holder check locks the row: a takeover or a finish waits for this report, or this report sees it.
      const held = await tx.query(
        `UPDATE svhn.trials SET heartbeat = clock_timestamp() WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id`,
        [trialId, worker],
      );
      if (held.rows.length === 0) return false;
      // The same step again (a resumed run repeating an epoch): the latest value stands, still one row.
      await tx.query(
        `INSERT INTO svhn.intermediates (trial_id, step, value) VALUES ($1, $2, $3)
         ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value`,
        [trialId, step, value],
      );
      return true;
    });
  }

  async finish(trialId: number, worker: string, state: Exclude<TrialState, 'running'>, value: number | null): Promise<boolean> {
    // state = 'running' in the condition: a trial is finished once; its holder keeps its name as who ran it.
    const { rows } = await this.db.query(
      `UPDATE svhn.trials SET state = $3, value = $4, finished_at = clock_timestamp(), heartbeat = clock_timestamp()
        WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING id`,
      [trialId, worker, state, value],
    );
    return rows.length === 1;
  }

  async release(trialId: number, worker: string): Promise<void> {
    await this.db.query(`UPDATE svhn.trials SET worker = NULL, heartbeat = NULL WHERE id = $1 AND worker = $2 AND state = 'running'`, [trialId, worker]);
  }

  async releaseAll(studyId: number): Promise<number> {
    const { rows } = await this.db.query(
      `UPDATE svhn.trials SET worker = NULL, heartbeat = NULL WHERE study_id = $1 AND state = 'running' RETURNING id`,
      [studyId],
    );
    return rows.length;
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      await this.onClose();
    }
  }
}

/**
 * What makes an existing study another search than the one asked for, as the end of a sentence
 * after "study 'x' ", or undefined when they are the same. Model, space (its order too: samplers
 * draw in that order) and fixed flags must match; sampler, pruner, seed and the trial target
 * are this run's own and may change.
 */
export function describeDifference(made: StudySpec, asked: StudySpec): string | undefined {
  if (made.model !== asked.model) return `was made for --model ${made.model}; this run asks for ${asked.model}`;
  const space = describeSpaceDifference(made.space, asked.space);
  if (space) return `was made with another search space: ${space}`;
  const keys = [...new Set([...Object.keys(made.fixed), ...Object.keys(asked.fixed)])].sort();
  for (const key of keys) {
    const a = made.fixed[key];
    const b = asked.fixed[key];
    if (a === b) continue;
    if (a === undefined) return `was made without --${key}; this run asks for --${key} ${b}`;
    if (b === undefined) return `was made with --${key} ${a}; this run leaves it out`;
    return `was made with --${key} ${a}; this run asks for --${key} ${b}`;
  }
  return undefined;
}

function describeSpaceDifference(made: readonly ParamSpec[], asked: readonly ParamSpec[]): string | undefined {
  const madeByName = new Map(made.map((p) => [p.name, p]));
  const askedByName = new Map(asked.map((p) => [p.name, p]));
  for (const p of asked) if (!madeByName.has(p.name)) return `it does not search ${p.name}; this run does`;
  for (const p of made) if (!askedByName.has(p.name)) return `it searches ${p.name}; this run does not`;
  for (const p of made) {
    const q = askedByName.get(p.name)!;
    if (canonical(p) !== canonical(q)) return `${p.name} is ${describeParam(p)} there, ${describeParam(q)} here`;
  }
  const order = (s: readonly ParamSpec[]) => s.map((p) => p.name).join(', ');
  if (order(made) !== order(asked)) return `its parameters come in another order (${order(made)}; this run: ${order(asked)})`;
  return undefined;
}

function describeParam(p: ParamSpec): string {
  switch (p.kind) {
    case 'choice':
      return `choice of ${p.choices.join(', ')}`;
    case 'log-float':
      return `log-float ${p.low}..${p.high}`;
    default:
      return `${p.kind} ${p.low}..${p.high}${p.step !== undefined ? ` step ${p.step}` : ''}`;
  }
}

/** JSON with sorted keys and no undefined members: equal for equal values, whatever order they were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
