// Opening the buffer's SQLite file: WAL, schema migrations by user_version, an integrity check,
// and moving a corrupt file aside. The schema only ever moves forward; each migration runs in
// its own transaction together with the user_version bump. The buffer's statements are
// prepared here too (prepare()), beside the schema they query.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

export type DB = Database.Database;

const MIGRATIONS: ((db: DB) => void)[] = [
  // 1: records, quarantine, counters, meta.
  (db) => {
    db.exec(`
      CREATE TABLE records (
        seq      INTEGER PRIMARY KEY,   -- per-device sequence number (the rowid: appends are cheap)
        stream   TEXT    NOT NULL,
        priority INTEGER NOT NULL,
        ts       INTEGER NOT NULL,      -- ms since the epoch, at record()
        expires  INTEGER,               -- ms since the epoch, from ttlSeconds
        bytes    INTEGER NOT NULL,      -- UTF-8 length of payload
        payload  TEXT    NOT NULL       -- JSON text
      );
      CREATE INDEX records_by_stream ON records(stream, seq);
      CREATE INDEX records_by_priority ON records(priority, seq);
      CREATE INDEX records_by_expiry ON records(expires) WHERE expires IS NOT NULL;
      CREATE TABLE quarantine (
        seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, ts INTEGER NOT NULL,
        payload TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL
      );
      CREATE TABLE counters (
        stream TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
        PRIMARY KEY (stream, name)
      ) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('db_id', randomBytes(8).toString('hex'));
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('created_at', String(Date.now()));
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Every statement the buffer runs, prepared once per open database. */
export function prepare(db: DB) {
  return {
    insert: db.prepare('INSERT INTO records (seq, stream, priority, ts, expires, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    head: db.prepare('SELECT seq, ts, bytes, payload FROM records WHERE stream = ? ORDER BY seq'),
    headAged: db.prepare('SELECT seq, ts, bytes FROM records WHERE stream = ? ORDER BY seq'),
    headTs: db.prepare('SELECT ts FROM records WHERE stream = ? ORDER BY seq LIMIT 1'),
    rangeSize: db.prepare('SELECT count(*) AS n, sum(bytes) AS b FROM records WHERE stream = ? AND seq BETWEEN ? AND ?'),
    rangeSeqs: db.prepare('SELECT seq FROM records WHERE stream = ? AND seq BETWEEN ? AND ? ORDER BY seq'),
    deleteRange: db.prepare('DELETE FROM records WHERE stream = ? AND seq BETWEEN ? AND ?'),
    deleteOne: db.prepare('DELETE FROM records WHERE seq = ?'),
    getRecord: db.prepare('SELECT stream, bytes FROM records WHERE seq = ?'),
    evictionOrder: db.prepare('SELECT seq, stream, bytes FROM records ORDER BY priority, seq'),
    expired: db.prepare('SELECT seq, stream, bytes FROM records WHERE expires IS NOT NULL AND expires <= ?'),
    toQuarantine: db.prepare('INSERT OR REPLACE INTO quarantine (seq, stream, ts, payload, reason, at) SELECT seq, stream, ts, payload, ?, ? FROM records WHERE seq = ?'),
    trimQuarantine: db.prepare('DELETE FROM quarantine WHERE seq NOT IN (SELECT seq FROM quarantine ORDER BY seq DESC LIMIT ?)'),
    listQuarantine: db.prepare('SELECT seq, stream, ts, payload, reason, at FROM quarantine ORDER BY seq DESC LIMIT ?'),
    addCounter: db.prepare('INSERT INTO counters (stream, name, value) VALUES (?, ?, ?) ON CONFLICT (stream, name) DO UPDATE SET value = value + excluded.value'),
    setCounter: db.prepare('INSERT INTO counters (stream, name, value) VALUES (?, ?, ?) ON CONFLICT (stream, name) DO UPDATE SET value = excluded.value'),
    pageCount: db.prepare('PRAGMA page_count').pluck(),
    freelistCount: db.prepare('PRAGMA freelist_count').pluck(),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}

export type Statements = ReturnType<typeof prepare>;

/** The next free sequence number of an open database: above every row it holds or has held. */
export function nextFreeSeq(db: DB, st: Statements): number {
  const metaSeq = Number(metaValue(st, 'next_seq') ?? 1);
  const maxSeq = (db.prepare('SELECT max(seq) AS m FROM records').get() as { m: number | null }).m ?? 0;
  const maxQ = (db.prepare('SELECT max(seq) AS m FROM quarantine').get() as { m: number | null }).m ?? 0;
  return Math.max(metaSeq, maxSeq + 1, maxQ + 1, 1);
}

export function metaValue(st: Statements, key: string): string | undefined {
  return (st.getMeta.get(key) as { value: string } | undefined)?.value;
}

/** Records queued per stream: how many and their payload bytes. */
export function queuedByStream(db: DB): { stream: string; n: number; b: number }[] {
  return db.prepare('SELECT stream, count(*) AS n, sum(bytes) AS b FROM records GROUP BY stream').all() as { stream: string; n: number; b: number }[];
}

/** The persisted per-stream counters (accepted, delivered, quarantined, evicted_<reason>, sent_today). */
export function allCounters(db: DB): { stream: string; name: string; value: number }[] {
  return db.prepare('SELECT stream, name, value FROM counters').all() as { stream: string; name: string; value: number }[];
}

export function sentToday(db: DB, stream: string): number {
  return (db.prepare("SELECT value FROM counters WHERE stream = ? AND name = 'sent_today'").get(stream) as { value: number } | undefined)?.value ?? 0;
}

/** Pages of the file in use (not on the free list), in bytes. */
export function usedBytes(st: Statements, pageSize: number): number {
  return ((st.pageCount.get() as number) - (st.freelistCount.get() as number)) * pageSize;
}

/** A database that failed its integrity check or is not a database at all. */
export class CorruptDatabaseError extends Error {
  readonly code = 'SQLITE_CORRUPT';
}

const CORRUPT_CODES = /^SQLITE_(CORRUPT|NOTADB)/;

export function isCorruption(err: unknown): boolean {
  if (err instanceof CorruptDatabaseError) return true;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && CORRUPT_CODES.test(code);
}

export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_FULL';
}

export interface OpenOptions {
  synchronous: 'normal' | 'full';
  maxBytes: number;
}

/** Opens (creating or migrating) the database; throws CorruptDatabaseError when it is damaged. */
export function openStore(file: string, opts: OpenOptions): DB {
  const db = new Database(file);
  try {
    db.pragma('auto_vacuum = INCREMENTAL'); // takes effect only on a new, empty file
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`cannot switch ${file} to WAL (journal_mode is ${String(mode)})`);
    db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    sizeWal(db, opts.maxBytes);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new CorruptDatabaseError(`quick_check: ${String(check)}`);
    migrate(db);
    setMaxBytes(db, opts.maxBytes);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: DB): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`the telemetry database has schema ${version}, newer than this agent knows (${SCHEMA_VERSION}); upgrade the agent or move the file away`);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      MIGRATIONS[v](db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Keeps the WAL in proportion to the budget: checkpoint every quarter of it (at most SQLite's
 * default of 1000 pages) and truncate the WAL back to that size afterwards. The WAL keeps
 * that much space allocated, so deletes (acks, evictions) still find room on a full disk.
 */
export function sizeWal(db: DB, maxBytes: number): void {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const walPages = Math.max(16, Math.min(1000, Math.floor(maxBytes / 4 / pageSize)));
  db.pragma(`wal_autocheckpoint = ${walPages}`);
  db.pragma(`journal_size_limit = ${walPages * pageSize}`);
}

/**
 * Caps the file with max_page_count so it can never outgrow the budget: an insert beyond it
 * fails with SQLITE_FULL, which the buffer answers by evicting. SQLite keeps the current size
 * when the file is already larger (the buffer then evicts and vacuums it down).
 */
export function setMaxBytes(db: DB, maxBytes: number): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  return db.pragma(`max_page_count = ${Math.max(16, Math.floor(maxBytes / pageSize))}`, { simple: true }) as number;
}

/**
 * Moves a damaged database (and its WAL and shared-memory files) aside as
 * <file>.corrupt-<time>, keeping only the newest such copy so a flapping disk cannot fill
 * the card with them. Returns the new path.
 */
export function moveAside(file: string, now = Date.now()): string {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  const target = `${file}.corrupt-${stamp}`;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(`${base}.corrupt-`)) rmSync(path.join(dir, name), { force: true });
  }
  renameSync(file, target);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, target + suffix);
  }
  return target;
}

/**
 * Best effort: what a damaged database still shows — its next sequence number and how many
 * records were queued in it (0 where unreadable).
 */
export function salvage(file: string): { nextSeq: number; queued: number } {
  let db: DB | undefined;
  const out = { nextSeq: 0, queued: 0 };
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    for (const sql of [
      "SELECT CAST(value AS INTEGER) AS v FROM meta WHERE key = 'next_seq'",
      'SELECT max(seq) + 1 AS v FROM records',
      'SELECT max(seq) + 1 AS v FROM quarantine',
    ]) {
      try {
        const row = db.prepare(sql).get() as { v: number | null } | undefined;
        if (row?.v && Number.isSafeInteger(row.v)) out.nextSeq = Math.max(out.nextSeq, row.v);
      } catch {
        // that part of the file is unreadable; try the next
      }
    }
    try {
      out.queued = (db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
    } catch {
      // unreadable
    }
    return out;
  } catch {
    return out;
  } finally {
    db?.close();
  }
}
