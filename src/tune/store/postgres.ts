/**
 * The study store on a PostgreSQL server (--storage postgres://USER:PASSWORD@HOST:PORT/DB),
 * shared by workers on several machines: the same SQL as the embedded store (sql.ts) through
 * node-postgres' pool. Messages name the URL without its password.
 */
import type { Pool, PoolClient } from 'pg';
import { SvhnError } from '../../errors.js';
import type { StudyStore } from '../types.js';
import { SqlStore, type SqlClient, type SqlQueryable } from './sql.js';

/** How long a connection may take before the server counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * A transaction left idle this long is ended by the server, releasing its locks: a worker whose
 * machine vanished while holding the study's row lock (a claim) blocks the others no longer than
 * this. A claim takes milliseconds.
 */
const IDLE_IN_TRANSACTION_MS = 60_000;
/** Connections per worker: its claims, heartbeats and reports seldom overlap. */
const POOL_SIZE = 4;

/** Opens the store on the server at `url`; a failed connection is one BAD_FLAG line. */
export async function openPostgresStore(url: string): Promise<StudyStore> {
  const label = `--storage ${redactUrl(url)}`;
  // Loaded here, not at the top: `svhn --help` and the embedded store never load the driver.
  const pg = (await import('pg')).default;
  let pool: Pool;
  try {
    pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: 'svhn tune',
      options: `-c idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`,
      keepAlive: true,
    });
  } catch (e) {
    throw new SvhnError('BAD_FLAG', `${label}: not a PostgreSQL URL (${scrub(firstLine(e), url)})`, { suggestion: 'expected postgres://USER:PASSWORD@HOST:PORT/DATABASE' });
  }
  // An idle connection the server dropped (a restart): the pool discards it and the next query
  // reconnects. Without a listener the error would end the process.
  pool.on('error', () => undefined);
  try {
    (await pool.connect()).release();
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new SvhnError('BAD_FLAG', `${label}: could not connect (${scrub(connectReason(e), url)})`, {
      cause: e,
      suggestion: 'check that the server runs and that the URL\'s host, port, user, password and database are right',
    });
  }
  return SqlStore.open('postgres', poolClient(pool, label, url), label);
}

function poolClient(pool: Pool, label: string, url: string): SqlClient {
  // Errors of the connection itself (the server went away) become one line; SQL errors stay as they are (bugs).
  const lost = (e: unknown): never => {
    if (isConnectionError(e)) throw new SvhnError('NETWORK', `${label}: lost the connection to the server (${scrub(connectReason(e), url)})`, { cause: e });
    throw e;
  };
  const queryable = (q: Pool | PoolClient): SqlQueryable => ({
    query: async <Row>(text: string, params?: unknown[]) => {
      const result = await q.query(text, params).catch(lost);
      return { rows: result.rows as Row[] };
    },
  });
  return {
    ...queryable(pool),
    async transaction(fn) {
      const connection = await pool.connect().catch(lost);
      let broken: Error | undefined; // a connection that cannot even roll back is discarded, not reused
      try {
        await connection.query('BEGIN').catch(lost);
        const result = await fn(queryable(connection));
        await connection.query('COMMIT').catch(lost);
        return result;
      } catch (e) {
        await connection.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        throw e;
      } finally {
        connection.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** SQLSTATE classes 08 (connection exception) and 57P (operator intervention: a shutdown), and Node's socket errors. */
function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P') || SOCKET_ERRORS.has(code))) return true;
  const message = e instanceof Error ? e.message : '';
  return /Connection terminated|timeout expired|Client has encountered a connection error/i.test(message);
}

const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** Why a connection failed, briefly: a socket error's code, or the server's own words (wrong password, no such database). */
function connectReason(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && SOCKET_ERRORS.has(code)) return code;
  const message = firstLine(e);
  if (/timeout expired|connection timeout/i.test(message)) return `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`;
  if (/client password must be a string/i.test(message)) return 'the server asks for a password and the URL has none';
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `${message} [${code}]` : message;
}

/** The URL as it may be printed: no password, in the user part or in the query (password=, sslpassword=). */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const user = userinfo.includes(':') ? userinfo.slice(0, userinfo.indexOf(':')) : userinfo;
  const host = at >= 0 ? `${user}@${authority.slice(at + 1)}` : authority;
  const q = rest.indexOf('?');
  if (q < 0) return scheme + host + rest;
  const hash = rest.indexOf('#', q);
  const query = rest.slice(q + 1, hash < 0 ? undefined : hash);
  const kept = query.split('&').filter((pair) => !/password/i.test(decodeSafely(pair.split('=')[0] ?? '')));
  return scheme + host + rest.slice(0, q) + (kept.length ? `?${kept.join('&')}` : '') + (hash < 0 ? '' : rest.slice(hash));
}

/** A message with the URL's password taken out, should a driver ever quote it. */
function scrub(text: string, url: string): string {
  const password = /^[a-z][a-z0-9+.-]*:\/\/[^/?#:@]*:([^/?#]*)@/is.exec(url)?.[1];
  if (!password) return text;
  let out = text;
  for (const p of new Set([password, decodeSafely(password)])) if (p) out = out.split(p).join('***');
  return out;
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
