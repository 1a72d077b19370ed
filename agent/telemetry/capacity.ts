// Capacity and eviction: how many bytes the buffer's file may use (telemetry.maxBytes, or a
// share of the filesystem when that has less room), and which records go when it is over
// (lowest priority first, oldest first, never a record out in a lease; or past its ttl or
// telemetry.maxAgeSeconds). Eviction runs inside the caller's write transaction.
import { statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { setMaxBytes, sizeWal, usedBytes, type DB, type Statements } from './store.js';
import { ROW_OVERHEAD, type StreamTable } from './streams.js';
import type { EvictReason, TelemetryConfig } from './types.js';

/** Budget eviction starts above this share of maxBytes and goes down to LOW_WATER. */
const HIGH_WATER = 0.7;
export const LOW_WATER = 0.6;
/**
 * Of the room on the filesystem (free space plus what the buffer's files hold) the buffer
 * takes this share at most: the WAL (a quarter of the budget plus one transaction), the
 * checkpoint and the agent's other files need the rest.
 */
const DISK_SHARE = 0.4;
/** The budget never goes below this, however little room the disk has (the schema's minimum). */
const MIN_CAPACITY = 64 * 1024;

export class Capacity {
  readonly #config: TelemetryConfig;
  readonly #file: string;
  readonly #pageCapBytes: number;
  readonly #log: Logger | undefined;
  /** The budget in force: config.maxBytes, or less when the filesystem has less room. */
  #bytes = 0;

  constructor(config: TelemetryConfig, file: string, pageCapBytes: number, log: Logger | undefined) {
    this.#config = config;
    this.#file = file;
    this.#pageCapBytes = pageCapBytes;
    this.#log = log;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** A fresh database: the next sizeToDisk() sets the limits whatever the budget was. */
  reset(): void {
    this.#bytes = 0;
  }

  /**
   * The budget the file may really use: telemetry.maxBytes, or DISK_SHARE of the room on its
   * filesystem when that is less. Without this the WAL of a flood fills a small disk before
   * its first checkpoint, and then nothing (not even the DELETE of an ack or an eviction) can
   * be written again. Checked at open and once a second.
   */
  sizeToDisk(db: DB): void {
    let room = Infinity;
    try {
      const fs = statfsSync(path.dirname(this.#file));
      const own = fileSize(this.#file) + fileSize(`${this.#file}-wal`) + fileSize(`${this.#file}-shm`);
      room = (fs.bavail * fs.bsize + own) * DISK_SHARE;
    } catch {
      // no statfs here: the configured budget alone
    }
    // In steps of 16 KB, so the pragmas are not rewritten for every page the WAL grows.
    const capacity = Math.max(MIN_CAPACITY, Math.min(this.#config.maxBytes, Math.floor(room / 16384) * 16384));
    if (capacity !== this.#bytes) this.#resize(db, capacity);
  }

  #resize(db: DB, capacity: number): void {
    const first = this.#bytes === 0;
    this.#bytes = capacity;
    try {
      setMaxBytes(db, Math.min(this.#pageCapBytes, capacity));
      sizeWal(db, capacity);
    } catch (err) {
      this.#log?.warn({ err: describe(err) }, 'could not resize the telemetry database limits');
    }
    if (capacity < this.#config.maxBytes) {
      this.#log?.[first ? 'warn' : 'debug']({ capacity, maxBytes: this.#config.maxBytes }, 'the filesystem has less room than telemetry.maxBytes; the buffer keeps to a share of it');
    }
  }

  /** The page cap in force after the file was evicted down to the budget (at open). */
  get pageCapBytes(): number {
    return Math.min(this.#pageCapBytes, this.#bytes);
  }

  /** Eviction to stay within the budget counts as "full" when the disk, not maxBytes, set it. */
  budgetReason(): EvictReason {
    return this.#bytes < this.#config.maxBytes ? 'full' : 'budget';
  }

  /**
   * A SQLITE_FULL came from the filesystem (little free space left on it), not from the
   * file's page cap. A failed transaction is rolled back, so page_count cannot tell.
   */
  filesystemFull(): boolean {
    try {
      const fs = statfsSync(path.dirname(this.#file));
      return fs.bavail * fs.bsize < Math.max(64 * 1024, this.#bytes / 8);
    } catch {
      return false;
    }
  }

  /** What one eviction after SQLITE_FULL frees: a twentieth of what the file may hold (the page cap can be below the budget). */
  roomTarget(): number {
    return Math.max(Math.min(this.#bytes, this.#pageCapBytes) * 0.05, 8 * 1024);
  }

  /** A transaction's pages all go to the WAL: keep it an eighth of the budget. */
  get txnBytes(): number {
    return this.#bytes / 8;
  }

  /** Bytes to evict after an insert (budgetExcess against the budget in force). */
  excess(queued: number, usedBytes: number): number {
    return budgetExcess(this.#bytes, queued, usedBytes);
  }
}

/**
 * Bytes to evict after an insert, given the budget, the rows' estimated bytes (queued) and the
 * bytes of the pages the file uses. Two measures of "full": the rows' estimated bytes against
 * the budget, and the pages the file really uses against what it may hold (rows share pages
 * unevenly after deletes). Either above HIGH_WATER evicts down to LOW_WATER.
 */
export function budgetExcess(capacity: number, queued: number, usedBytes: number): number {
  let excess = Math.max(0, queued - capacity * LOW_WATER);
  if (queued <= capacity * HIGH_WATER) excess = 0;
  if (usedBytes > capacity * HIGH_WATER) {
    excess = Math.max(excess, (usedBytes - capacity * LOW_WATER) * (queued / usedBytes));
  }
  return excess;
}

/** Evicts lowest priority first, oldest first, skipping records out in a lease. Returns bytes freed. */
export function evictBytes(st: Statements, streams: StreamTable, bytes: number, reason: EvictReason): number {
  if (bytes <= 0) return 0;
  let freed = 0;
  const perStream = new Map<string, number>();
  const victims: number[] = [];
  for (const row of st.evictionOrder.iterate() as IterableIterator<{ seq: number; stream: string; bytes: number }>) {
    const l = streams.get(row.stream)?.lease;
    if (l && row.seq >= l.first && row.seq <= l.last) continue;
    victims.push(row.seq);
    freed += row.bytes + ROW_OVERHEAD;
    perStream.set(row.stream, (perStream.get(row.stream) ?? 0) + 1);
    const s = streams.get(row.stream)!;
    s.depth--;
    s.bytes -= row.bytes + ROW_OVERHEAD;
    if (freed >= bytes) break;
  }
  for (const seq of victims) st.deleteOne.run(seq);
  countEvictions(st, streams, perStream, reason);
  return freed;
}

function countEvictions(st: Statements, streams: StreamTable, perStream: Map<string, number>, reason: EvictReason): void {
  for (const [stream, n] of perStream) {
    st.addCounter.run(stream, `evicted_${reason}`, n);
    streams.countEvicted(stream, reason, n);
  }
}

/** Evicts records past their ttl or maxAgeSeconds (0: no age limit). Returns how many. */
export function evictExpired(st: Statements, streams: StreamTable, now: number, maxAgeSeconds: number): number {
  let n = 0;
  const drop = (rows: { seq: number; stream: string; bytes: number }[], reason: EvictReason) => {
    const per = new Map<string, number>();
    for (const row of rows) {
      const s = streams.get(row.stream)!;
      if (s.lease && row.seq >= s.lease.first && row.seq <= s.lease.last) continue;
      st.deleteOne.run(row.seq);
      s.depth--;
      s.bytes -= row.bytes + ROW_OVERHEAD;
      per.set(row.stream, (per.get(row.stream) ?? 0) + 1);
      n++;
    }
    countEvictions(st, streams, per, reason);
  };
  drop(st.expired.all(now) as { seq: number; stream: string; bytes: number }[], 'ttl');
  if (maxAgeSeconds > 0) {
    const cutoff = now - maxAgeSeconds * 1000;
    for (const [name, s] of streams.entries()) {
      if (s.depth === 0) continue;
      // Sequence order is record() order, so the old records are at the head of a stream.
      const old: { seq: number; stream: string; bytes: number }[] = [];
      for (const row of st.headAged.iterate(name) as IterableIterator<{ seq: number; ts: number; bytes: number }>) {
        if (row.ts >= cutoff) break;
        old.push({ seq: row.seq, stream: name, bytes: row.bytes });
      }
      drop(old, 'age');
    }
  }
  return n;
}

/**
 * A file larger than the budget (the budget was lowered): evict down by the pages really in
 * use, then give the freed pages back to the file system. Each eviction is one call of
 * write, the buffer's write transaction.
 */
export function shrinkToCapacity(
  db: DB, st: Statements, pageSize: number, capacity: Capacity, streams: StreamTable,
  write: (fn: () => unknown) => unknown, log: Logger | undefined,
): void {
  if ((st.pageCount.get() as number) * pageSize <= capacity.bytes) return;
  const target = capacity.bytes * LOW_WATER;
  for (let i = 0; i < 50; i++) {
    const used = usedBytes(st, pageSize);
    const queued = streams.queuedBytes();
    if (used <= target || queued === 0) break;
    write(() => evictBytes(st, streams, Math.max((used - target) * (queued / used), 4096), capacity.budgetReason()));
  }
  try {
    db.pragma('incremental_vacuum');
    db.pragma('wal_checkpoint(TRUNCATE)');
    setMaxBytes(db, capacity.pageCapBytes);
  } catch (err) {
    log?.warn({ err: describe(err) }, 'could not shrink the telemetry database');
  }
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * A buffer that throws away a good part of what it accepts is a state an operator must see
 * (on /readyz's warnings and the status page), not only a counter: at least 1 in 10 records
 * evicted since the agent started.
 */
export function evictionWarning(accepted: number, evicted: number, capacityBytes: number): string | undefined {
  if (evicted === 0 || evicted * 10 < accepted) return undefined;
  return `evicting records: ${evicted} of ${accepted} accepted were dropped to stay within ${Math.round(capacityBytes / 1024)} KB ` +
    '(raise telemetry.maxBytes, or check why the fleet link does not drain: broker, controller, drain rate)';
}
